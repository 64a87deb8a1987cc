"""Reads off the event loop, on a small pool of threads with a connection each (storage layer)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ...domain.errors import Unavailable
from .connection import SqlConnection

T = TypeVar("T")


class Reader:
    """A small thread pool, each thread with its own read connection, opened on first use.

    `domain_error` says what the driver's errors mean to the caller
    (`WriteConnection.domain_error`); after an UNAVAILABLE one, the thread
    opens a new connection for the next read.
    """

    def __init__(
        self,
        connect: Callable[[], SqlConnection],
        domain_error: Callable[[BaseException], Exception | None] = lambda exc: None,
        workers: int = 2,
    ) -> None:
        self._connect = connect
        self._domain_error = domain_error
        self._local = threading.local()
        self._connections: list[SqlConnection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arbiter-reader")

    def _connection(self) -> SqlConnection:
        conn: SqlConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _query(self, query: Callable[[SqlConnection], T]) -> T:
        try:
            return query(self._connection())
        except Exception as exc:
            explained = self._domain_error(exc)
            if explained is None:
                raise
            if isinstance(explained, Unavailable):
                self._drop_connection()
            raise explained from exc

    def _drop_connection(self) -> None:
        conn: SqlConnection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()

    async def run(self, query: Callable[[SqlConnection], T]) -> T:
        """Run `query` with a read connection on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._query, query)

    def run_now(self, query: Callable[[SqlConnection], T]) -> T:
        """Run `query` on the calling thread (start-up loading, before serving)."""
        conn = self._connect()
        try:
            return query(conn)
        finally:
            conn.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
