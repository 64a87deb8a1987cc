"""Noticing key changes other processes make in Postgres, before the next lookup (storage layer).

Every change to `api_keys` (a server's or the keys CLI's) notifies the
channel `arbiter_api_keys` from a trigger, sent when the change commits. The
server keeps a connection that listens on it and, before each lookup, looks
without waiting at what has arrived on that connection's socket; only when a
notification is there are the keys read again (one query), so a key the CLI
has created or revoked is honoured by the next call, as on SQLite. A lost
listening connection is replaced by a thread, which reads every key again
once it is back (notifications sent meanwhile are lost). A key id not in
memory costs one query before it is refused: its notification may still be
on its way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from psycopg import Notify

from ..sql.key_store import VersionedKeys, key_version, read_keys
from .connection import PostgresConnection

log = logging.getLogger(__name__)

CHANNEL = "arbiter_api_keys"
RECONNECT_SECONDS = 0.5


class KeyListener:
    """A `SqlKeyStore` refresh for Postgres; `refresh` runs on the event loop."""

    def __init__(self, connect: Callable[[], PostgresConnection]) -> None:
        self._connect = connect
        self._latest: VersionedKeys | None = None
        self._changed = False
        self._version = -1  # of the keys last read
        self._closed = threading.Event()
        self._reconnecting: threading.Thread | None = None
        self._conn: PostgresConnection | None = self._listen()  # the first keys are read before serving

    def _listen(self) -> PostgresConnection:
        conn = self._connect()
        conn.raw.add_notify_handler(self._noticed)  # what psycopg reads while it runs a query
        conn.execute(f"LISTEN {CHANNEL}")  # before reading: no change can fall between the two
        self._latest = self._read(conn)
        return conn

    def _noticed(self, _: Notify) -> None:
        self._changed = True

    def refresh(self) -> VersionedKeys | None:
        """The keys read since the last call, if any; reads them first if a change was announced."""
        conn = self._conn
        if conn is not None:
            try:
                pgconn = conn.raw.pgconn
                pgconn.consume_input()  # what has arrived on the socket; never waits
                while pgconn.notifies() is not None:
                    self._changed = True
                if self._changed:
                    self._changed = False
                    self._latest = self._read(conn)  # a query on the loop, only when the keys changed
            except Exception as exc:
                self._lost(conn, exc)
        latest, self._latest = self._latest, None
        return latest

    def confirm_unknown(self) -> VersionedKeys | None:
        """Before a key id is refused as unknown: whether the keys moved in the database (one query).

        A key created elsewhere a moment ago is then honoured even when its notification is still on
        its way (the keys CLI's next call can be quicker than that).
        """
        conn = self._conn
        if conn is not None:
            try:
                if key_version(conn) != self._version:
                    self._latest = self._read(conn)
            except Exception as exc:
                self._lost(conn, exc)
        latest, self._latest = self._latest, None
        return latest

    def _lost(self, conn: PostgresConnection, exc: Exception) -> None:
        log.warning("the connection listening for key changes was lost (%s); connecting again", exc)
        self._conn = None
        conn.close()
        if self._reconnecting is None or not self._reconnecting.is_alive():
            self._reconnecting = threading.Thread(target=self._reconnect, name="arbiter-key-listener", daemon=True)
            self._reconnecting.start()

    def _reconnect(self) -> None:
        while not self._closed.wait(RECONNECT_SECONDS):
            try:
                self._conn = self._listen()
                return
            except Exception as exc:  # the listener must outlive any outage
                log.debug("listening for key changes failed again: %s", exc)

    def _read(self, conn: PostgresConnection) -> VersionedKeys:
        conn.begin()  # the version and the keys from one snapshot
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            keys = key_version(conn), read_keys(conn)
        finally:
            if not conn.broken:
                conn.commit()
        self._version = keys[0]
        return keys

    def close(self) -> None:
        self._closed.set()
        if self._reconnecting is not None:
            self._reconnecting.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
