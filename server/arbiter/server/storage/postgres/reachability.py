"""Whether Postgres answers, asked on the event loop twice a second (storage layer).

Health must say NOT_SERVING while the system of record is away even when no
call happens to need it, and SERVING again once it is back, without a
restart. A probe on a connection of its own asks `SELECT 1`; an answer that
takes longer than `ANSWER_SECONDS` (a server that is stopped, not gone)
counts as no answer. The probe is asynchronous so it costs the loop nothing
while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg

from .connection import first_line

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_SECONDS = 0.5
ANSWER_SECONDS = 2.0


class PostgresProbe:
    """The `Reachability` of a Postgres server: watchers hear every change, on the event loop."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._reachable = True  # the server was just used to start: it answered
        self._watchers: list[Callable[[bool], None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        return self._reachable

    def watch(self, on_change: Callable[[bool], None]) -> None:
        self._watchers.append(on_change)

    def start(self) -> None:
        """Begin probing (on the serving loop)."""
        self._task = asyncio.get_running_loop().create_task(self._probe_forever(), name="arbiter-postgres-probe")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _probe_forever(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                try:
                    if conn is None:
                        conn = await _in_time(self._connect())
                    await _in_time(conn.execute("SELECT 1"))
                    self._set(True, "")
                except (psycopg.Error, TimeoutError, OSError) as exc:
                    self._set(False, first_line(exc) if str(exc) else "no answer in time")
                    if conn is not None:
                        await _discard(conn)
                        conn = None
                await asyncio.sleep(PROBE_SECONDS)
        finally:
            if conn is not None:
                await _discard(conn)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=int(ANSWER_SECONDS), application_name="arbiter-probe"
        )

    def _set(self, reachable: bool, why: str) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            log.warning("the database answers again: serving")
        else:
            log.warning("the database cannot be reached (%s): health is NOT_SERVING until it answers", why)
        for watcher in self._watchers:
            watcher(reachable)


async def _in_time(work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError after ANSWER_SECONDS without waiting for `work` to wind down.

    (psycopg answers a cancelled query by asking the server to cancel it, which a stopped server never does.)
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task], timeout=ANSWER_SECONDS)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its end is of no interest
        raise TimeoutError
    return task.result()


async def _discard(conn: psycopg.AsyncConnection[Any]) -> None:
    """Close a connection that may be half dead, without waiting on its server."""
    with contextlib.suppress(Exception):
        conn.pgconn.finish()  # no goodbye round trip: the server may not be there to hear it
    with contextlib.suppress(Exception):
        await conn.close()
