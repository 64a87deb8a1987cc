"""Whether a store on another server answers, asked on the event loop twice a second (storage layer).

Health must say NOT_SERVING while a store the server needs is away even when
no call happens to need it, and SERVING again once it is back, without a
restart. A probe asks its store a trivial question (Postgres `SELECT 1`,
Redis `PING`); an answer that takes longer than `ANSWER_SECONDS` (a server
that hangs rather than goes away) counts as no answer. The probe is
asynchronous, so it costs the loop nothing while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_SECONDS = 0.5
ANSWER_SECONDS = 2.0


class Probe:
    """The `Reachability` of one store: `ask` raises when it does not answer; watchers hear every change."""

    def __init__(self, what: str, ask: Callable[[], Awaitable[None]], forget: Callable[[], Awaitable[None]]) -> None:
        """`what` names the store in logs; `forget` drops what `ask` keeps (a connection) after a failure."""
        self._what = what
        self._ask = ask
        self._forget = forget
        self._reachable = True  # the store was just used to start: it answered
        self._watchers: list[Callable[[bool], None]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def reachable(self) -> bool:
        return self._reachable

    def watch(self, on_change: Callable[[bool], None]) -> None:
        self._watchers.append(on_change)

    def start(self) -> None:
        """Begin probing (on the serving loop)."""
        self._task = asyncio.get_running_loop().create_task(self._probe_forever(), name=f"arbiter-probe-{self._what}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._forget()

    async def _probe_forever(self) -> None:
        while True:
            try:
                await in_time(self._ask())
                self._set(True, "")
            except Exception as exc:  # whatever the client raises, the store did not answer
                self._set(False, _first_line(exc) or "no answer in time")
                await self._forget()
            await asyncio.sleep(PROBE_SECONDS)

    def _set(self, reachable: bool, why: str) -> None:
        if reachable == self._reachable:
            return
        self._reachable = reachable
        if reachable:
            log.warning("%s answers again", self._what)
        else:
            log.warning("%s cannot be reached (%s): health is NOT_SERVING until it answers", self._what, why)
        for watcher in self._watchers:
            watcher(reachable)


class AllReachable:
    """The `Reachability` of several stores: reachable while every one is."""

    def __init__(self, parts: Sequence[Probe]) -> None:
        self._parts = list(parts)

    @property
    def reachable(self) -> bool:
        return all(part.reachable for part in self._parts)

    def watch(self, on_change: Callable[[bool], None]) -> None:
        for part in self._parts:
            part.watch(lambda _: on_change(self.reachable))


async def in_time(work: Awaitable[T]) -> T:
    """`work`'s result, or TimeoutError after ANSWER_SECONDS without waiting for `work` to wind down.

    (psycopg answers a cancelled query by asking the server to cancel it, which a hung server never does.)
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait([task], timeout=ANSWER_SECONDS)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # its end is of no interest
        raise TimeoutError
    return task.result()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
