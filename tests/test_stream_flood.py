"""Unfinished request streams and the concurrency limit: health and authenticated callers keep being served."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from serverproc import ServerProcess

from arbiter.client import Client
from arbiter.server.app.core import Core
from arbiter.server.domain.errors import ResourceExhausted
from arbiter.server.domain.timekeeping import ManualClock
from arbiter.server.storage.memory.backend import memory_stores
from arbiter.server.transport.grpc.request_limits import ConcurrencyLimit
from arbiter.server.transport.grpc.server import GrpcFrontDoor, build_grpc_server
from arbiter.v1 import decisions_pb2, offers_pb2

pytest.register_assert_rewrite("auth_helpers")  # before its import, as the security tests do
from auth_helpers import cli_create_key  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.h2load import ensure_h2load, parse_output  # noqa: E402

# A gRPC frame that announces a 1,000-byte message and carries 3 bytes of it: the stream ends
# with the request never complete, so the server can never answer it (the reproduction of issue 16).
INCOMPLETE_FRAME = b"\x00\x00\x00\x03\xe8\x0a\x03abc"
FLOOD_CONNECTIONS = 3
FLOOD_STREAMS_PER_CONNECTION = 100
# h2load closes its connections after this long without an answer; the flood lasts as long.
FLOOD_SECONDS = 4


def _flood(server: ServerProcess, body: Path) -> subprocess.Popen[str]:
    total = FLOOD_CONNECTIONS * FLOOD_STREAMS_PER_CONNECTION
    command = [
        ensure_h2load(),
        "-n",
        str(total),
        "-c",
        str(FLOOD_CONNECTIONS),
        "-m",
        str(FLOOD_STREAMS_PER_CONNECTION),
        "-N",
        str(FLOOD_SECONDS),
        "-d",
        str(body),
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        f"http://{server.target}/arbiter.v1.DecisionService/Decide",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_flood_of_unfinished_streams_without_a_key_does_not_shed_decide_or_health(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    secret = cli_create_key(db, "flood", "admin")
    body = tmp_path / "incomplete.bin"
    body.write_bytes(INCOMPLETE_FRAME)
    # Fewer slots than the flood has streams: before the fix, the flood alone took every one.
    with (
        ServerProcess(db, ["--max-concurrent-rpcs", "100"], auth=True) as server,
        Client(server.target, api_key=secret) as client,
    ):
        client.create_offer({"name": "shown during the flood", "status": "active"})
        flood = _flood(server, body)
        try:
            probes: list[tuple[int, int]] = []
            # Probe for as long as the flood holds its streams open (h2load exits when it gives up).
            while flood.poll() is None and len(probes) < 200:
                decided = client.decide("customer-1", timeout=10)
                status = server.health(timeout=10)
                probes.append((len(decided.offers), status))
                time.sleep(0.05)
            output, _ = flood.communicate(timeout=FLOOD_SECONDS + 30)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait(timeout=10)
    report = parse_output(["h2load"], output)
    assert report.started == FLOOD_CONNECTIONS * FLOOD_STREAMS_PER_CONNECTION  # the whole flood was sent
    assert report.succeeded == 0  # and none of it was ever answered: the streams stayed open
    assert len(probes) >= 5
    assert all(probe == (1, health_pb2.HealthCheckResponse.SERVING) for probe in probes)


class GatedDoor:
    """The real gRPC front door (build_grpc_server) over the core on in-memory stores whose outcome
    commits wait for `release()`: a slow database, so calls stay in progress as long as a test needs."""

    def __init__(self, max_concurrent_rpcs: int) -> None:
        self._limit = max_concurrent_rpcs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gated-door", daemon=True)
        self._door: GrpcFrontDoor | None = None
        self._gate: asyncio.Event | None = None

    def __enter__(self) -> GatedDoor:
        self._thread.start()

        async def start() -> GrpcFrontDoor:
            clock = ManualClock(datetime.now(UTC))
            stores, db = memory_stores(clock)
            self._gate = db.hold_commits()
            core = Core.start(stores, clock, authenticate=False)
            door = await build_grpc_server(
                core,
                address="127.0.0.1:0",
                max_message_bytes=4 * 1024 * 1024,
                max_concurrent_rpcs=self._limit,
                tls=None,
            )
            await door.start()
            await door.serving()
            return door

        self._door = asyncio.run_coroutine_threadsafe(start(), self._loop).result(30)
        return self

    @property
    def target(self) -> str:
        assert self._door is not None
        return f"127.0.0.1:{self._door.port}"

    def release(self) -> None:
        assert self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)

    def __exit__(self, *exc: object) -> None:
        try:
            if self._door is not None:
                self.release()
                asyncio.run_coroutine_threadsafe(self._door.stop(1.0), self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        request = health_pb2.HealthCheckRequest()
        return int(health_pb2_grpc.HealthStub(channel).Check(request, timeout=10).status)


def test_at_the_concurrency_limit_health_is_served_and_further_calls_are_refused() -> None:
    with GatedDoor(max_concurrent_rpcs=2) as door, Client(door.target, tenant="busy") as client:
        offer = client.create_offer({"name": "counted", "status": "active"})
        metadata = (("x-tenant-id", "busy"),)
        # Two outcomes whose commit waits: two calls in progress, both slots taken.
        held = [
            client.decisions.RecordOutcome.future(
                decisions_pb2.RecordOutcomeRequest(
                    outcome=decisions_pb2.Outcome(
                        customer_id="c-1",
                        offer_id=offer.id,
                        type=decisions_pb2.OUTCOME_TYPE_IMPRESSION,
                        idempotency_key=f"held-{i}",
                    )
                ),
                metadata=metadata,
                timeout=30,
            )
            for i in range(2)
        ]
        refused: grpc.RpcError | None = None
        for _ in range(1_000):  # until both held calls have reached the server
            try:
                client.offers.GetOffer(offers_pb2.GetOfferRequest(id=offer.id), metadata=metadata, timeout=10)
            except grpc.RpcError as error:
                refused = error
                break
        assert refused is not None, "a third call was never refused while two were held"
        # Health does not count toward the limit, and is answered while the slots are full.
        assert _health(door.target) == health_pb2.HealthCheckResponse.SERVING
        assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--max-concurrent-rpcs" in (refused.details() or "")
        assert not any(call.done() for call in held)
        door.release()
        assert all(call.result(timeout=30).result.outcome_id.startswith("out_") for call in held)
        # The slots are free again.
        assert client.get_offer(offer.id).id == offer.id


@pytest.mark.parametrize("limit", [1, 5])
def test_the_limit_refuses_only_beyond_its_slots_and_frees_them(limit: int) -> None:
    slots = ConcurrencyLimit(limit)
    for _ in range(limit):
        slots.enter()
    with pytest.raises(ResourceExhausted) as refused:
        slots.enter()
    assert refused.value.reason == "TOO_MANY_CONCURRENT_CALLS"
    slots.leave()
    slots.enter()  # a freed slot can be taken again
    assert slots.active == limit
