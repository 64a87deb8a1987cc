"""The embedded backend: SQLite files through sqlite-utils, a writer thread, in-process counters and histories."""
