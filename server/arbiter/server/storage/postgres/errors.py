"""The Postgres backend's start-up failure, importable without the driver (storage layer)."""


class PostgresNotUsable(RuntimeError):
    """The server cannot serve on this database; the message says why in one line."""
