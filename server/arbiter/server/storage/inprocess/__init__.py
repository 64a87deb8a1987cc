"""State held in this process for the embedded backend (and the in-memory fakes): live counters and histories."""
