"""The Redis start-up failure, importable without the driver (storage layer)."""


class RedisNotUsable(RuntimeError):
    """The server cannot keep its shared state in this Redis; the message says why in one line."""
