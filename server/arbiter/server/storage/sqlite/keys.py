"""API keys in a SQLite file: noticing the keys CLI's changes (storage layer)."""

from __future__ import annotations

from collections.abc import Callable

from ..sql.key_store import VersionedKeys, key_version, read_keys
from .database import SqliteConnection


def key_changes(watch: SqliteConnection) -> Callable[[], VersionedKeys | None]:
    """A `SqlKeyStore` refresh that reads through `watch`, a connection used only on the event loop.

    PRAGMA data_version is an in-memory counter that moves when another
    connection commits; only then is the keys' own version (bumped by
    triggers) read, and only when that moved are the keys read again.
    """
    seen: dict[str, int | None] = {"data": None, "keys": None}

    def refresh() -> VersionedKeys | None:
        data_version = watch.execute("PRAGMA data_version").fetchone()[0]
        if data_version == seen["data"]:
            return None
        seen["data"] = data_version
        version = key_version(watch)
        if version == seen["keys"]:
            return None
        seen["keys"] = version
        return version, read_keys(watch)

    return refresh
