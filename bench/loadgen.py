"""A grpc.aio load generator for calls whose bodies must differ: outcomes with unique idempotency keys.

h2load sends one fixed body, so every RecordOutcome after the first would be
a duplicate. This generator sends a different, pre-serialised body per call
and measures its own ceiling the same way (mode "health": the empty
Health/Check), so its numbers can be read against what it can drive at all.

It runs a warm-up with bodies built on the fly (to estimate the rate), then
builds enough bodies for the measured part before it starts, so building
costs nothing while measuring. Every call it makes, warm-up included, is in
`calls` and `codes`, so a caller can compare them with the server's own
count of answers.

Run as `python -m bench.loadgen --target HOST:PORT --mode outcome ...` (the
benchmark pins it to a core with taskset); it prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2

from arbiter.v1 import decisions_pb2
from bench.server_process import process_cpu_seconds

MODES = ("health", "outcome", "outcomes")
METHODS = {
    "health": "/grpc.health.v1.Health/Check",
    "outcome": "/arbiter.v1.DecisionService/RecordOutcome",
    "outcomes": "/arbiter.v1.DecisionService/RecordOutcomes",
}
# Mostly impressions, as in production traffic; clicks and conversions make
# the server look for an earlier impression (the adaptive model's positives).
OUTCOME_TYPES = (
    decisions_pb2.OUTCOME_TYPE_IMPRESSION,
    decisions_pb2.OUTCOME_TYPE_CLICK,
    decisions_pb2.OUTCOME_TYPE_CONVERSION,
    decisions_pb2.OUTCOME_TYPE_DISMISS,
)
OUTCOME_WEIGHTS = (80, 12, 3, 5)
CALL_TIMEOUT = 60.0


@dataclass(frozen=True)
class LoadConfig:
    """What to send, how hard and for how long."""

    target: str
    mode: str
    api_key: str = ""
    duration: float = 8.0
    warmup: float = 2.0
    concurrency: int = 64
    channels: int = 4
    batch: int = 1_000
    offer_ids: tuple[str, ...] = ()
    customers: int = 100_000
    key_prefix: str = "lg"
    seed: int = 11
    server_pid: int | None = None  # to report the server's CPU use while measuring


@dataclass
class PhaseStats:
    """Calls of one phase (warm-up or measured)."""

    calls: int = 0
    ok: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class LoadResult:
    """What the generator did and saw; printed as JSON."""

    mode: str
    method: str
    concurrency: int
    channels: int
    items_per_call: int
    calls: int  # every call, warm-up included
    codes: dict[str, int]
    duplicates: int  # outcomes the server answered DUPLICATE (keys are unique: must be 0)
    not_serving: int  # health answers other than SERVING
    warmup_calls: int
    measured_calls: int
    measured_ok: int
    measured_s: float
    calls_per_s: float
    items_per_s: float
    p50_ms: float
    p99_ms: float
    prebuilt: int
    prebuilt_exhausted: bool
    server_cpu_util: float | None  # server CPU seconds per second while measuring (1.0 = a saturated core)

    @property
    def non_ok(self) -> int:
        return sum(n for code, n in self.codes.items() if code != "OK")


class BodyFactory:
    """Serialised request bodies, each with its own idempotency keys."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._serial = itertools.count()
        if config.mode != "health" and not config.offer_ids:
            raise ValueError(f"mode {config.mode} needs offer ids")

    def make(self) -> bytes:
        mode = self.config.mode
        if mode == "health":
            return health_pb2.HealthCheckRequest().SerializeToString()
        if mode == "outcome":
            request = decisions_pb2.RecordOutcomeRequest()
            self._fill(request.outcome, next(self._serial))
            return request.SerializeToString()
        bulk = decisions_pb2.RecordOutcomesRequest()
        call = next(self._serial)
        for j in range(self.config.batch):
            self._fill(bulk.outcomes.add(), call * self.config.batch + j)
        return bulk.SerializeToString()

    def _fill(self, outcome: decisions_pb2.Outcome, serial: int) -> None:
        rng = self._rng
        outcome.customer_id = f"lg-cust-{rng.randrange(self.config.customers):07d}"
        outcome.offer_id = rng.choice(self.config.offer_ids)
        outcome.type = rng.choices(OUTCOME_TYPES, OUTCOME_WEIGHTS)[0]
        outcome.channel = "web"
        outcome.idempotency_key = f"{self.config.key_prefix}-{serial}"


def _response_checker(mode: str) -> Callable[[bytes], tuple[int, int]]:
    """Parses a response: (duplicates, not-serving answers). Cheap next to a call."""
    if mode == "health":

        def check_health(raw: bytes) -> tuple[int, int]:
            status = health_pb2.HealthCheckResponse.FromString(raw).status
            return 0, int(status != health_pb2.HealthCheckResponse.SERVING)

        return check_health
    if mode == "outcome":

        def check_one(raw: bytes) -> tuple[int, int]:
            result = decisions_pb2.RecordOutcomeResponse.FromString(raw).result
            return int(result.status == decisions_pb2.OUTCOME_STATUS_DUPLICATE), 0

        return check_one

    def check_many(raw: bytes) -> tuple[int, int]:
        results = decisions_pb2.RecordOutcomesResponse.FromString(raw).results
        return sum(r.status == decisions_pb2.OUTCOME_STATUS_DUPLICATE for r in results), 0

    return check_many


class LoadGenerator:
    """`concurrency` workers sharing `channels` connections, each call waiting for the last."""

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.factory = BodyFactory(config)
        self.codes: collections.Counter[str] = collections.Counter()
        self.duplicates = 0
        self.not_serving = 0
        self._check = _response_checker(config.mode)
        self._metadata = (("authorization", f"Bearer {config.api_key}"),) if config.api_key else ()

    async def run(self) -> LoadResult:
        config = self.config
        # Distinct channel arguments would be needed for distinct connections;
        # a local subchannel pool per channel gives each its own connection.
        channels = [
            grpc.aio.insecure_channel(config.target, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(config.channels)
        ]
        try:
            # No serialisers: bodies go out as the bytes given and come back as bytes.
            stubs = [channel.unary_unary(METHODS[config.mode]) for channel in channels]
            for channel in channels:
                await asyncio.wait_for(channel.channel_ready(), timeout=10)
            warmup = await self._phase(stubs, None, config.warmup)
            rate = warmup.calls / warmup.elapsed_s if warmup.elapsed_s > 0 else 0.0
            # Enough bodies for the measured part at the warm-up rate and then
            # some: the warm-up is usually slower than steady state.
            count = max(config.concurrency * 4, math.ceil(rate * config.duration * 1.6))
            bodies = [self.factory.make() for _ in range(count)]
            cpu = self._server_cpu()
            measured = await self._phase(stubs, bodies, config.duration)
            if cpu is not None:
                cpu = (self._server_cpu() or 0.0) - cpu
        finally:
            for channel in channels:
                await channel.close()
        items = 1 if config.mode != "outcomes" else config.batch
        latencies = sorted(measured.latencies_ms)
        return LoadResult(
            mode=config.mode,
            method=METHODS[config.mode],
            concurrency=config.concurrency,
            channels=config.channels,
            items_per_call=items,
            calls=warmup.calls + measured.calls,
            codes=dict(self.codes),
            duplicates=self.duplicates,
            not_serving=self.not_serving,
            warmup_calls=warmup.calls,
            measured_calls=measured.calls,
            measured_ok=measured.ok,
            measured_s=measured.elapsed_s,
            calls_per_s=measured.ok / measured.elapsed_s if measured.elapsed_s else 0.0,
            items_per_s=measured.ok * items / measured.elapsed_s if measured.elapsed_s else 0.0,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            prebuilt=count,
            prebuilt_exhausted=measured.calls >= count,
            server_cpu_util=cpu / measured.elapsed_s if cpu is not None and measured.elapsed_s else None,
        )

    def _server_cpu(self) -> float | None:
        pid = self.config.server_pid
        return process_cpu_seconds(pid) if pid is not None else None

    async def _phase(
        self, stubs: Sequence[grpc.aio.UnaryUnaryMultiCallable], bodies: list[bytes] | None, seconds: float
    ) -> PhaseStats:
        """Call until `seconds` pass (or the pre-built bodies run out); wait for calls in flight."""
        stats = PhaseStats()
        if seconds <= 0:
            return stats
        taken = itertools.count()
        start = time.perf_counter()
        deadline = start + seconds

        async def worker(stub: grpc.aio.UnaryUnaryMultiCallable) -> None:
            while time.perf_counter() < deadline:
                if bodies is None:
                    body = self.factory.make()
                else:
                    i = next(taken)
                    if i >= len(bodies):
                        return
                    body = bodies[i]
                sent = time.perf_counter()
                stats.calls += 1
                try:
                    raw = await stub(body, metadata=self._metadata, timeout=CALL_TIMEOUT)
                except grpc.aio.AioRpcError as exc:
                    self.codes[exc.code().name] += 1
                    continue
                stats.latencies_ms.append((time.perf_counter() - sent) * 1000)
                self.codes["OK"] += 1
                stats.ok += 1
                duplicates, not_serving = self._check(raw)
                self.duplicates += duplicates
                self.not_serving += not_serving

        await asyncio.gather(*(worker(stubs[w % len(stubs)]) for w in range(self.config.concurrency)))
        stats.elapsed_s = time.perf_counter() - start
        return stats


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the server")
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--api-key", default="", help="API key to send (authorization: Bearer ...)")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds (bodies built on the fly)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight")
    parser.add_argument("--channels", type=int, default=4, help="connections")
    parser.add_argument("--batch", type=int, default=1_000, help="outcomes per RecordOutcomes call")
    parser.add_argument("--offer-ids", type=Path, help="JSON list of offer ids to record outcomes for")
    parser.add_argument("--customers", type=int, default=100_000, help="distinct customers")
    parser.add_argument("--key-prefix", default="lg", help="idempotency keys are PREFIX-N; make it unique per run")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--server-pid", type=int, help="report this process's CPU use while measuring")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    offer_ids: tuple[str, ...] = ()
    if args.offer_ids is not None:
        offer_ids = tuple(json.loads(args.offer_ids.read_text()))
    config = LoadConfig(
        target=args.target,
        mode=args.mode,
        api_key=args.api_key,
        duration=args.duration,
        warmup=args.warmup,
        concurrency=args.concurrency,
        channels=args.channels,
        batch=args.batch,
        offer_ids=offer_ids,
        customers=args.customers,
        key_prefix=args.key_prefix,
        seed=args.seed,
        server_pid=args.server_pid,
    )
    result = asyncio.run(LoadGenerator(config).run())
    print(json.dumps(asdict(result)))
    return 0 if result.non_ok == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
