"""Storage layer: SQLite (via sqlite-utils), the writer thread and in-memory caches."""
