"""The one writer thread: serialised, group-committed writes to the database (storage layer).

Every write of the server is a job run on this thread. Jobs waiting together
commit together: one transaction per batch, a savepoint per job, so one job's
error rolls back only that job. A job's caller is resolved only after its batch
has committed (durable), and the job's `apply` step, which updates in-memory
state, runs on the event loop before that, so in-memory state is only ever
touched from the loop and the next request reads its own write.

Committed batches are applied in commit order by one task that gives the loop
back about every millisecond, between jobs and between the steps of an
`apply` that is a generator (a bulk of 1,000 outcomes), so other callers are
not held up behind a large write.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ...app.ports import NO_TELEMETRY, Telemetry
from ...domain.errors import DomainError, Unavailable
from .connection import WriteConnection, savepoint

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 512
# How long applying committed jobs may hold the event loop before it yields.
APPLY_SLICE_SECONDS = 0.001


# Updates in-memory state once the write is durable; a generator is run step by step, the loop free in between.
Apply = Callable[[T], Iterator[None] | None]


@dataclass(slots=True)
class _Job(Generic[T]):
    work: Callable[[WriteConnection], T]
    apply: Apply[T] | None
    future: asyncio.Future[T]
    on_failure: Callable[[], None] | None = None
    outcome: tuple[bool, Any] = field(default=(False, None))


_STOP = object()


class Writer:
    """Owns the write connection; `run` submits a job and awaits its durable result."""

    def __init__(self, connect: Callable[[], WriteConnection], telemetry: Telemetry = NO_TELEMETRY) -> None:
        """`connect` opens (and migrates) the write connection; it is called again after one is lost."""
        self._connect = connect
        self._telemetry = telemetry
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._refusing = threading.Event()  # set: jobs not yet begun fail instead of running
        self._committed: collections.deque[list[_Job[Any]]] = collections.deque()  # to apply, in commit order
        self._applier: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open (and migrate) the database on the calling thread, then start the writer thread."""
        self._loop = loop
        conn = self._connect()
        self._thread = threading.Thread(target=self._run, args=(conn,), name="arbiter-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        work: Callable[[WriteConnection], T],
        apply: Apply[T] | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> asyncio.Future[T]:
        """Queue a job without awaiting it (callable from the event loop only).

        `apply` runs on the loop after the commit even if the caller has gone
        away; `on_failure` runs on the loop when the job or its commit failed.
        """
        if self._closing or self._loop is None:
            raise Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
        future: asyncio.Future[T] = self._loop.create_future()
        # A caller that stopped waiting (shield, cancellation) must not leave
        # an unretrieved exception behind to be logged at garbage collection.
        future.add_done_callback(_retrieve)
        self._queue.put(_Job(work, apply, future, on_failure))
        return future

    async def run(self, work: Callable[[WriteConnection], T], apply: Apply[T] | None = None) -> T:
        """Run `work` on the writer thread; return its result once durable and applied."""
        return await asyncio.shield(self.submit(work, apply))

    async def refuse_queued(self) -> None:
        """Stop taking jobs and fail the queued ones unwritten; returns once every job is resolved.

        For a shutdown past its grace: each caller still waiting is answered
        (UNAVAILABLE, or its write if that was already being committed) before
        the server cancels what is left, so nothing answered as failed is
        committed after.
        """
        if self._thread is None or self._loop is None or self._refusing.is_set():
            return
        self._closing = True
        self._refusing.set()
        marker: asyncio.Future[None] = self._loop.create_future()
        marker.add_done_callback(_retrieve)
        self._queue.put(_Job(lambda conn: None, None, marker))
        await asyncio.wait([marker])  # FIFO: every job queued before it is resolved by now

    async def close(self) -> None:
        """Stop taking jobs, finish the queued ones, and close the connection."""
        if self._thread is None or not self._thread.is_alive():
            return
        self._closing = True
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        # The thread's last batches are handed to the loop by callbacks
        # already scheduled; let them run, then wait until they are applied.
        await asyncio.sleep(0)
        if self._applier is not None:
            await self._applier

    def _run(self, conn: WriteConnection) -> None:
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < MAX_BATCH:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if job is _STOP:
                        stop = True
                        break
                    batch.append(job)
                conn = self._commit(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _reconnect(self, conn: WriteConnection) -> WriteConnection:
        """The connection to write the next batch on: `conn`, or a new one when it is lost."""
        if not conn.broken:
            return conn
        conn.close()
        return self._connect()

    def _commit(self, conn: WriteConnection, batch: list[_Job[Any]]) -> WriteConnection:
        """Write and commit one batch, resolving its jobs; returns the connection for the next batch."""
        if self._refusing.is_set():
            refused = Unavailable("the server is shutting down", reason="SHUTTING_DOWN")
            for job in batch:
                job.outcome = (False, refused)
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._resolve, batch)
            return conn
        started = time.perf_counter()
        try:
            conn = self._reconnect(conn)
            # The write lock up front (SQLite): when another process holds it,
            # the batch waits the busy timeout once and fails as a whole, retryable.
            conn.begin()
            try:
                for job in batch:
                    try:
                        with savepoint(conn):  # one job's error rolls back only that job
                            job.outcome = (True, job.work(conn))
                    except Exception as exc:
                        if conn.broken:  # the server went away mid-batch: nothing in it will commit
                            raise
                        job.outcome = (False, _explained(conn, exc))
                conn.commit()
            except BaseException:
                if not conn.broken and conn.in_transaction:
                    conn.rollback()
                raise
        except Exception as exc:  # the batch never began or did not commit: nothing in it is durable
            failure = _explained(conn, exc)
            if failure is exc:
                log.exception("write batch of %d jobs failed to commit", len(batch))
            for job in batch:
                job.outcome = (False, failure)
        self._telemetry.writer_batch(len(batch), time.perf_counter() - started)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._resolve, batch)
        return conn

    def _resolve(self, batch: list[_Job[Any]]) -> None:
        """On the loop: queue a finished batch for the applier task, starting it if it is idle."""
        self._committed.append(batch)
        if self._applier is None or self._applier.done():
            assert self._loop is not None
            self._applier = self._loop.create_task(self._apply_committed())

    async def _apply_committed(self) -> None:
        """Apply committed jobs to memory and wake their callers, in commit order, a slice of loop time at a time."""
        slice_started = time.perf_counter()
        while self._committed:
            for job in self._committed.popleft():
                for _ in _settle(job):
                    if time.perf_counter() - slice_started > APPLY_SLICE_SECONDS:
                        await asyncio.sleep(0)
                        slice_started = time.perf_counter()


def _explained(conn: WriteConnection, exc: Exception) -> Exception:
    """What the caller is told: the domain error `exc` stands for (UNAVAILABLE: retry later), else `exc`.

    A commit cut off by a lost server may still have happened: the caller is told to retry, and an
    outcome's idempotency key makes the retry a duplicate rather than a second record."""
    if isinstance(exc, DomainError):
        return exc
    explained = conn.domain_error(exc)
    if isinstance(explained, Unavailable):
        log.warning("a write failed: %s", explained)
    return explained or exc


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(job: _Job[Any]) -> Iterator[None]:
    """Apply one job (step by step when its apply is a generator), then resolve its future."""
    ok, value = job.outcome
    if ok:
        if job.apply is not None:
            try:
                steps = job.apply(value)
                if steps is not None:
                    for _ in steps:
                        yield
            except Exception:
                log.exception("applying a committed write to memory failed")
        if not job.future.done():
            job.future.set_result(value)
    else:
        if job.on_failure is not None:
            try:
                job.on_failure()
            except Exception:
                log.exception("releasing a failed write failed")
        if not job.future.done():
            job.future.set_exception(value)
    yield
