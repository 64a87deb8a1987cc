"""Hearing which tenants other processes changed, from Postgres notices (storage layer).

A trigger on every configuration table notifies `arbiter_catalog` with the
tenant when a change commits (migrations.py, v003), so the notice can never
tell of a change that did not happen, nor be lost between a commit and a
publish. A thread of this server listens on a connection of its own; the
notices its own writer caused are skipped (this server applied those
changes as it committed them). The connection starts listening before the
catalogue is loaded, so no change falls between the two. A lost connection
is replaced, and then every tenant is read again: notices sent meanwhile
were not heard.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from .connection import PostgresConnection

log = logging.getLogger(__name__)

CHANNEL = "arbiter_catalog"
RECONNECT_SECONDS = 0.5
POLL_SECONDS = 0.5  # how often the thread looks up from waiting, to see whether the server is closing


class CatalogListener:
    """The Postgres backend's CatalogChanges."""

    def __init__(self, connect: Callable[[], PostgresConnection], own_writer: Callable[[], int | None]) -> None:
        """`own_writer` gives the backend pid of this server's writer connection (its notices are skipped)."""
        self._connect = connect
        self._own_writer = own_writer
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: PostgresConnection | None = self._listen()

    def _listen(self) -> PostgresConnection:
        conn = self._connect()
        conn.execute(f"LISTEN {CHANNEL}")
        return conn

    def follow(self, on_change: Callable[[str | None], None]) -> None:
        loop = asyncio.get_running_loop()

        def tell(tenant: str | None) -> None:
            if not self._closed.is_set():
                loop.call_soon_threadsafe(on_change, tenant)

        self._thread = threading.Thread(target=self._run, args=(tell,), name="arbiter-catalog-listener", daemon=True)
        self._thread.start()

    def _run(self, tell: Callable[[str | None], None]) -> None:
        while not self._closed.is_set():
            conn = self._conn
            try:
                if conn is None:
                    conn = self._conn = self._listen()
                    log.warning("listening for catalogue changes again: reading every tenant again")
                    tell(None)
                for notice in conn.raw.notifies(timeout=POLL_SECONDS):
                    if notice.pid != self._own_writer():
                        tell(notice.payload)
            except Exception as exc:  # the listener must outlive any outage
                if conn is not None:
                    log.warning("the connection listening for catalogue changes was lost (%s)", exc)
                    conn.close()
                self._conn = None
                self._closed.wait(RECONNECT_SECONDS)

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._conn is not None:
            self._conn.close()
