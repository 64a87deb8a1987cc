"""In-memory fakes of every store, for fast unit tests of the use cases and the funnel."""
