"""Redis as the distributed backend's shared hot state: live counters and reservations (storage layer)."""
