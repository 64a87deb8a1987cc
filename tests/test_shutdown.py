"""SIGTERM under load: a drain with health NOT_SERVING while serving, every call answered, nothing failed kept."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import backends
import grpc
import pytest
from decide_helpers import make_offer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serverproc import ServerProcess

from arbiter.client import ArbiterError, Client
from arbiter.server.config import ConfigError, load_config
from arbiter.server.domain.errors import Unavailable
from arbiter.server.storage.sql.connection import SqlConnection
from arbiter.server.storage.sql.writer import Writer
from arbiter.server.storage.sqlite.database import Durability, open_writer

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING
BOUND = 60.0  # upper bound on every wait: the test never depends on how long anything takes
POLL_SECONDS = 0.005


@dataclass
class Load:
    """Threads calling one RPC in a loop, as clients behind a load balancer: they stop once it moves away."""

    call: Callable[[Client, str], int]  # returns how many impressions an OK answer recorded
    away: threading.Event  # the balancer saw NOT_SERVING
    answers: list[tuple[str, grpc.StatusCode, int]] = field(default_factory=list)

    def run(self, target: str, tenant: str) -> None:
        with Client(target, tenant=tenant) as client:
            while not self.away.is_set():
                self.one(client)

    def one(self, client: Client) -> None:
        key = uuid.uuid4().hex
        try:
            recorded = self.call(client, key)
        except ArbiterError as exc:
            self.answers.append((key, exc.code, 0))
        else:
            self.answers.append((key, grpc.StatusCode.OK, recorded))

    def ok_count(self) -> int:
        return sum(code == grpc.StatusCode.OK for _, code, _ in self.answers)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until `condition` holds; a hang guard, not a measurement: the test asserts nothing about time."""
    for _ in range(int(BOUND / POLL_SECONDS)):
        if condition():
            return
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"{what} did not happen: the server is stuck")


def test_sigterm_drains_answers_every_call_and_keeps_only_what_was_answered_ok(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    # A drain far longer than the test needs; the second SIGTERM ends it.
    server = ServerProcess(db, ["--drain-seconds", "600"]).start()
    assert server.process is not None
    away = threading.Event()
    with Client(server.target, tenant="outcomes") as admin:
        offer = make_offer(admin)
    with Client(server.target, tenant="decide") as admin:
        make_offer(admin)

    def record(client: Client, key: str) -> int:
        client.record_outcome("c-1", offer, "click", key, timeout=BOUND)
        return 0

    outcomes = Load(record, away)
    decisions = Load(lambda c, key: len(c.decide(key, record_impressions=True, timeout=BOUND).offers), away)
    threads = [
        threading.Thread(target=load.run, args=(server.target, tenant), daemon=True)
        for load, tenant in ((outcomes, "outcomes"), (decisions, "decide"))
        for _ in range(4)
    ]
    watch_statuses: list[int] = []
    watch_end: list[grpc.StatusCode] = []

    def watch() -> None:
        with grpc.insecure_channel(server.target) as channel:
            stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=BOUND * 4)
            try:
                watch_statuses.extend(response.status for response in stream)
                watch_end.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                watch_end.append(exc.code())

    def balancer() -> None:
        _wait_for(lambda: server.health() == NOT_SERVING, "health to say NOT_SERVING")
        away.set()

    watcher = threading.Thread(target=watch, daemon=True)
    poller = threading.Thread(target=balancer, daemon=True)
    try:
        watcher.start()
        _wait_for(lambda: watch_statuses == [SERVING], "the Watch stream to say SERVING")
        for thread in [*threads, poller]:
            thread.start()
        _wait_for(lambda: outcomes.ok_count() >= 20 and decisions.ok_count() >= 20, "load to be served")

        server.process.send_signal(signal.SIGTERM)
        poller.join(BOUND)
        assert away.is_set()
        for thread in threads:
            thread.join(BOUND)
        # The drain: the Watch stream has ended (it holds nothing up), and calls are still served.
        watcher.join(BOUND)
        assert watch_end == [grpc.StatusCode.OK] and watch_statuses == [SERVING, NOT_SERVING]
        with Client(server.target, tenant="outcomes") as late, Client(server.target, tenant="decide") as late_decide:
            outcomes.one(late)
            decisions.one(late_decide)
        assert outcomes.answers[-1][1] == decisions.answers[-1][1] == grpc.StatusCode.OK
        assert server.process.poll() is None

        server.process.send_signal(signal.SIGTERM)  # ends the drain: no new calls, the rest answered
        assert server.process.wait(timeout=BOUND) == 0
    finally:
        away.set()
        if server.process.poll() is None:
            server.kill()

    # Every call made while the server was up was answered, and served: the drain refused nothing.
    for load in (outcomes, decisions):
        assert {code for _, code, _ in load.answers} == {grpc.StatusCode.OK}
    keys = {row[0] for row in backends.query(db, "SELECT idempotency_key FROM outcomes WHERE tenant = 'outcomes'")}
    impressions = backends.query(db, "SELECT COUNT(*) FROM outcomes WHERE tenant = 'decide'")[0][0]
    assert keys == {key for key, _, _ in outcomes.answers}
    assert impressions == sum(recorded for _, _, recorded in decisions.answers)


def test_the_drain_is_set_by_flag_or_environment_and_checked() -> None:
    assert load_config([], env={}).drain_seconds == 5.0
    assert load_config([], env={"ARBITER_DRAIN_SECONDS": "0"}).drain_seconds == 0.0
    assert load_config(["--drain-seconds", "2.5"], env={"ARBITER_DRAIN_SECONDS": "9"}).drain_seconds == 2.5
    with pytest.raises(ConfigError, match="--drain-seconds must be between 0 and 3600"):
        load_config(["--drain-seconds", "-1"], env={})


def test_past_the_grace_queued_writes_are_refused_unwritten_and_the_one_being_written_commits(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        writer = Writer(lambda: open_writer(tmp_path / "a.db", Durability.PROCESS))
        writer.start(asyncio.get_running_loop())
        try:
            started, writer_free = threading.Event(), threading.Event()

            def being_written(db: SqlConnection) -> None:
                started.set()
                writer_free.wait(BOUND)  # holds the writer thread, as a slow batch would
                db.execute("CREATE TABLE written (job TEXT)")
                db.execute("INSERT INTO written VALUES ('first')")

            def queued_write(db: SqlConnection) -> None:
                db.execute("INSERT INTO written VALUES ('queued')")

            first = writer.submit(being_written)
            await asyncio.to_thread(started.wait, BOUND)
            queued = [writer.submit(queued_write) for _ in range(3)]
            refusing = asyncio.ensure_future(writer.refuse_queued())
            await asyncio.sleep(0)  # refuse_queued has run up to its wait
            writer_free.set()
            await asyncio.wait_for(refusing, BOUND)

            await first  # the write under way when the grace ran out is committed and answered OK
            for job in queued:
                with pytest.raises(Unavailable) as refused:
                    await job
                assert refused.value.reason == "SHUTTING_DOWN"
            with pytest.raises(Unavailable):
                writer.submit(lambda db: None)
        finally:
            await writer.close()
        rows = sqlite3.connect(tmp_path / "a.db").execute("SELECT job FROM written").fetchall()
        assert rows == [("first",)]

    asyncio.run(scenario())
