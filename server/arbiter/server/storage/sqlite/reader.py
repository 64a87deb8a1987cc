"""Read-only SQLite access off the event loop (storage layer)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from .database import open_reader

T = TypeVar("T")


class Reader:
    """A small thread pool, each thread with its own read-only connection."""

    def __init__(self, path: Path, workers: int = 2) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arbiter-reader")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_reader(self._path)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    async def run(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` with a read connection on a pool thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: query(self._connection()))

    def run_now(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` on the calling thread (start-up loading, before serving)."""
        conn = open_reader(self._path)
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
