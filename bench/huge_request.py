"""Health and a small Decide while another client sends large requests: do they stay fast?

`.venv/bin/python bench/huge_request.py [--seconds 5]`

One server on core 0 (bench/server_process.py) with a small tenant. A prober
on core 1 alternates grpc.health.v1.Health/Check and a small Decide, one call
at a time, and records each latency. It runs alone first, then while a second
client sends, back to back, Decide requests of one kind:

  largest-allowed  attributes at the limits (1,000 values, ~62 KiB as JSON): decided
  over-by-count    20,000 list items in 215 KiB (under the 256 KiB request limit): refused
  over-by-size     3 MB of attributes (over the request limit): refused from its length
  rest-over-by-size  the same as JSON to POST /api/v1/decide: refused before the JSON is parsed
  bulk-over-count  RecordOutcomes with 200,000 tiny outcomes (2 MB): refused from the count

and prints p50/p99 of health and of the small Decide for each phase, with
how many large requests were sent and what they were answered. The large
requests are serialized once, so the sender costs the load core little.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from arbiter.client import Client  # noqa: E402
from arbiter.v1 import decisions_pb2, decisions_pb2_grpc  # noqa: E402
from bench.h2load import LOAD_CORE, percentile  # noqa: E402
from bench.report import Row  # noqa: E402
from bench.server_process import BenchServer  # noqa: E402

TENANT = "huge"
OFFERS = 20
P99_TARGET_MS = 20.0  # issue 16: health and other callers under 20 ms p99 while huge requests arrive
DECIDE = "/arbiter.v1.DecisionService/Decide"
RECORD_OUTCOMES = "/arbiter.v1.DecisionService/RecordOutcomes"


def largest_allowed() -> dict[str, Any]:
    attributes: dict[str, Any] = {f"{i:04d}" + "k" * 40: i for i in range(998)}
    attributes["text"] = ["t" * 10_000]
    return attributes


def over_by_count() -> dict[str, Any]:
    return {"many": list(range(20_000))}


def over_by_size() -> dict[str, Any]:
    return {f"key{i}": f"value number {i}" for i in range(120_000)}


LOADS: dict[str, Callable[[], dict[str, Any]]] = {
    "largest-allowed": largest_allowed,
    "over-by-count": over_by_count,
    "over-by-size": over_by_size,
}
REST_LOADS: dict[str, Callable[[], dict[str, Any]]] = {"rest-over-by-size": over_by_size}
BULK_LOADS = {"bulk-over-count": 200_000}  # RecordOutcomes items, far over the 1,000 a bulk may hold


def bulk_body(count: int) -> bytes:
    request = decisions_pb2.RecordOutcomesRequest()
    for i in range(count):
        request.outcomes.add(
            customer_id="c", offer_id="o", type=decisions_pb2.OUTCOME_TYPE_CLICK, idempotency_key=str(i)
        )
    return request.SerializeToString()


@dataclass
class Phase:
    """One phase's figures."""

    name: str
    health_ms: list[float] = field(default_factory=list)
    decide_ms: list[float] = field(default_factory=list)
    large_sent: int = 0
    large_codes: collections.Counter[str] = field(default_factory=collections.Counter)
    large_bytes: int = 0


def _probe(target: str, metadata: tuple[tuple[str, str], ...], seconds: float, phase: Phase) -> None:
    """Health, then a small Decide, one at a time, for `seconds`."""
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        small = decisions_pb2.DecideRequest(customer_id="probe")
        small.attributes.update({"age": 40, "plan": "gold"})
        health.Check(health_pb2.HealthCheckRequest(), timeout=10)  # connect before measuring
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            phase.health_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            decisions.Decide(small, metadata=metadata, timeout=10)
            phase.decide_ms.append((time.perf_counter() - started) * 1000)


def _send(
    target: str, metadata: tuple[tuple[str, str], ...], method: str, body: bytes, stop: threading.Event, phase: Phase
) -> None:
    """The same large request, back to back, until `stop`; the answers' codes are counted."""
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        while not stop.is_set():
            try:
                call(body, metadata=metadata, timeout=30)
                phase.large_codes["OK"] += 1
            except grpc.RpcError as error:
                phase.large_codes[error.code().name] += 1
            phase.large_sent += 1


def _send_rest(url: str, key: str, body: bytes, stop: threading.Event, phase: Phase) -> None:
    """The same large JSON Decide to the REST door, back to back, until `stop`; HTTP statuses are counted."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    while not stop.is_set():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=30) as answer:
                phase.large_codes[str(answer.status)] += 1
        except urllib.error.HTTPError as error:
            phase.large_codes[str(error.code)] += 1
        phase.large_sent += 1


def run_phase(server: BenchServer, key: str, name: str, seconds: float) -> Phase:
    phase = Phase(name)
    metadata = (("authorization", f"Bearer {key}"),)
    stop = threading.Event()
    sender = None
    if name in LOADS:
        request = decisions_pb2.DecideRequest(customer_id="large")
        request.attributes.update(LOADS[name]())
        body = request.SerializeToString()
        phase.large_bytes = len(body)
        sender = threading.Thread(target=_send, args=(server.target, metadata, DECIDE, body, stop, phase), daemon=True)
    elif name in BULK_LOADS:
        body = bulk_body(BULK_LOADS[name])
        phase.large_bytes = len(body)
        args = (server.target, metadata, RECORD_OUTCOMES, body, stop, phase)
        sender = threading.Thread(target=_send, args=args, daemon=True)
    elif name in REST_LOADS:
        body = json.dumps({"customerId": "large", "attributes": REST_LOADS[name]()}).encode()
        phase.large_bytes = len(body)
        url = f"{server.http_url}/api/v1/decide"
        sender = threading.Thread(target=_send_rest, args=(url, key, body, stop, phase), daemon=True)
    if sender is not None:
        sender.start()
        time.sleep(0.5)  # the large requests are flowing before the probe starts
    try:
        _probe(server.target, metadata, seconds, phase)
    finally:
        stop.set()
        if sender is not None:
            sender.join(timeout=60)
    return phase


def _row(phase: Phase) -> str:
    def figures(values: list[float]) -> str:
        return f"{percentile(values, 50):7.2f} {percentile(values, 99):7.2f}"

    large = (
        f"{phase.large_sent:6d} x {phase.large_bytes / 1024:7.0f} KiB  {dict(phase.large_codes)}"
        if phase.large_sent
        else "-"
    )
    return f"{phase.name:18s} {figures(phase.health_ms)}   {figures(phase.decide_ms)}   {large}"


def measure(seconds: float, scratch: Path) -> list[Phase]:
    """Every phase, on one fresh server whose files go in `scratch`."""
    http = ("--http-address", "127.0.0.1:0")
    with BenchServer(scratch / "huge.db", scratch / "huge-server.log", http) as server:
        key = server.api_key(TENANT)
        with Client(server.target, api_key=key) as client:
            for i in range(OFFERS):
                client.create_offer({"name": f"offer {i}", "status": "active"})
        return [run_phase(server, key, name, seconds) for name in ("alone", *LOADS, *REST_LOADS, *BULK_LOADS)]


def rows(phases: list[Phase]) -> list[Row]:
    """The report's rows (bench/run.py --scenarios huge-request): health and small-Decide latency per phase."""
    out = []
    for phase in phases:
        during = "alone" if phase.name == "alone" else f"beside {phase.name} requests ({phase.large_bytes // 1024} KiB)"
        note = f"{phase.large_sent} large sent, answered {dict(phase.large_codes)}" if phase.large_sent else ""
        for what, values in (("Health/Check", phase.health_ms), ("small Decide", phase.decide_ms)):
            p99 = percentile(values, 99)
            out.append(
                Row(
                    scenario=f"huge requests: {what}, {during}",
                    offers=OFFERS,
                    throughput=None,
                    unit="",
                    p50_ms=percentile(values, 50),
                    p99_ms=p99,
                    target=f"p99 ≤ {P99_TARGET_MS:.0f} ms",
                    met=p99 <= P99_TARGET_MS,
                    note=note,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/huge_request.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per phase (default 5)")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CORE)})  # the server has core 0 to itself
    scratch = Path(tempfile.mkdtemp(prefix="arbiter-huge-"))
    try:
        phases = measure(args.seconds, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(f"{'phase':18s} {'health p50/p99 ms':>15s}   {'Decide p50/p99 ms':>15s}   large requests (answers)")
    for phase in phases:
        print(_row(phase))
    return 0


if __name__ == "__main__":
    sys.exit(main())
