"""Application layer: the use cases every front door calls, and the interfaces they need from storage."""
