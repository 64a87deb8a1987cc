"""The benchmark scenarios and their order: one server process per catalogue size, phases on it.

Per catalogue size (1,000 and 10,000 offers) one server starts on core 0
with a fresh database; the synthetic tenant is loaded through the real
client; then, on that same process:

1. ceiling     h2load against grpc.health.v1.Health/Check (the aio servicer),
2. decide-*    h2load against Decide with the same settings; ratio to (1),
3. latency     h2load --rps at half of (2)'s maximum, percentiles from its log,
4. outcomes    (1,000-offer process only) bench/loadgen.py: its own ceiling
               against Health/Check, then RecordOutcome and RecordOutcomes.
5. batch-decide (1,000-offer process only) BatchDecide calls of 1,000
               customers, one at a time (bench/batch_decide.py): decisions/s.

Three scenarios have servers of their own, with the same 1,000-offer tenant:

rest       one server with the HTTP listener on: the gRPC ceiling, gRPC
           Decide and REST Decide (h2load, --h1 for REST), then CreateOffer
           over gRPC and REST (bench/offerload.py, unique names) in the
           order gRPC, REST, REST, gRPC, since every create grows the
           catalogue and creates slow down as it grows.
http-idle  two servers, the HTTP listener on (and never called) and off:
           ceiling and Decide on each, alternating A/B over several rounds,
           so that drift and noise hit both.
metrics-cost  the same with metrics on (the default: collected, here not
           served, the HTTP listener being off) and `--metrics-address off`.
huge-request  one server: health and a small Decide alone and beside a
           client sending large Decides (bench/huge_request.py).
noisy      bench/noisy.py: a quiet tenant's Decide alone and while another
           sends RecordOutcomes bulks of 1,000, and a bulk's cost before and
           after 1,000,000 stored outcomes (its own servers, no API keys).

distributed  the distributed backend: a throwaway Postgres and Redis
           (bench/distributed.py) pinned with the server to core 0, a server
           on them with the same 1,000-offer tenant; the ceiling and Decide
           as decide-1k, RecordOutcomes of 1,000 as outcomes; Decide compared
           with the embedded Decide of the same run (decide-1k's, or measured
           in this scenario on a SQLite server of its own when decide-1k did
           not run).
workers    bench/workers.py: on a throwaway Postgres and Redis with the same
           tenant, the ceiling and Decide of a server with `--workers 1` (it,
           Postgres and Redis on core 0, h2load on core 1) and `--workers 2`
           (everything, h2load included, on both cores); the ratio 2 ÷ 1.
           Then two servers on that database: 200 UpdateOffers on one, each
           polled on the other until it shows; 20 keys revoked on one, each
           polled on the other until refused.

Around every phase the server's call counts (SIGUSR1) are read; the
difference must equal the load generator's count of calls, all OK. REST
calls are not in those counts: they are checked by HTTP status (2xx only)
and, for created offers, by the ids answered and the tenant's offer count.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import itertools
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from arbiter.client import Client
from arbiter.v1 import decisions_pb2_grpc
from bench import after_write, batch_decide, h2load, huge_request, machine_load, noisy, workers
from bench.catalogue import SyntheticTenant, load_tenant
from bench.distributed import Services
from bench.report import RESULTS_DIR, Report, Row, machine, reached, table, write
from bench.server_process import SERVER_CORE, BenchServer, CallCounts, counts_delta, non_ok
from bench.workers import Layout

SCENARIOS = (
    "ceiling",
    "decide-1k",
    "decide-10k",
    "latency",
    "outcomes",
    "batch-decide",
    "after-write",
    "distributed",
    "workers",
    "rest",
    "http-idle",
    "metrics-cost",
    "huge-request",
    "noisy",
)
SMALL, LARGE = 1_000, 10_000
BATCH_DECIDE_TARGET = 10_000  # decisions/s on the server's one core, 1,000 offers
REPO = Path(__file__).resolve().parent.parent
HEALTH_PATH = "/grpc.health.v1.Health/Check"
DECIDE_PATH = "/arbiter.v1.DecisionService/Decide"
REST_DECIDE_PATH = "/api/v1/decide"
HTTP_ON = ("--http-address", "127.0.0.1:0")  # the HTTP listener on a free port
CREATE_PROTOCOLS = ("grpc", "rest")  # offerload alternates them in slices: creates slow as the catalogue grows
IDLE_TARGET_PCT = 5.0  # the HTTP listener on but idle: gRPC Decide/empty within 5 % of the listener off
METRICS_TARGET_PCT = 5.0  # metrics on: gRPC Decide/empty within 5 % of metrics off
DECIDE_1K_TARGET, DECIDE_10K_TARGET = 0.7, 0.4
P99_TARGET_MS = 10.0
BULK_TARGET = 50_000.0
DISTRIBUTED_DECIDE_TARGET = 0.6  # distributed Decide/s per server core ≥ 0.6 × embedded, 1,000 offers
POSTGRES_BULK_TARGET = 20_000.0  # RecordOutcomes of 1,000 into Postgres, outcomes/s
SATURATED = 0.9  # server CPU seconds per second above which a throughput run saturated the server's core


@dataclass(frozen=True)
class Side:
    """One of the two server configurations of an A/B comparison."""

    key: str  # "on" / "off": JSON keys, file and tenant names, progress lines
    args: tuple[str, ...]  # the server's extra flags (BenchServer adds --http-address off unless they name it)
    rows: str  # how the table's rows name it
    short: str  # how the progress line names it


@dataclass(frozen=True)
class Comparison:
    """gRPC Decide/empty on two server configurations, judged by the difference of the two ratios."""

    scenario: str  # its --scenarios name
    tag: str  # in server log, database, tenant and body names
    title: str  # the method note's first words
    subject: Side  # the configuration judged: the difference is subject − reference in percent of reference
    reference: Side
    versus: str  # the summary row: "gRPC Decide/empty, {versus}: ±x %"
    versus_short: str  # the summary row's note
    setup: str  # the method note: how the two servers differ
    target_pct: float  # met when |difference| ≤ this
    target: str  # the target column


HTTP_IDLE = Comparison(
    scenario="http-idle",
    tag="idle",
    title="HTTP listener idle",
    subject=Side("on", HTTP_ON, "HTTP listener on and idle", "on (idle)"),
    reference=Side("off", (), "HTTP listener off", "listener off"),
    versus="HTTP listener on and idle vs off",
    versus_short="listener on vs off",
    setup=(
        "one with `--http-address 127.0.0.1:0` (answering one GET of /api/v1/openapi.json before, nothing "
        "during the runs), one with `--http-address off`"
    ),
    target_pct=IDLE_TARGET_PCT,
    target=f"within ±{IDLE_TARGET_PCT:g} %",
)
# Metrics on is the default (`--metrics-address` empty: /metrics on the HTTP listener). The listener is off
# here, so nothing scrapes: what is measured is the collecting, the interceptor and the decisioning metrics.
METRICS_COST = Comparison(
    scenario="metrics-cost",
    tag="metrics",
    title="Metrics cost",
    subject=Side("on", ("--metrics-address", ""), "Metrics on (collected, not served)", "metrics on"),
    reference=Side("off", ("--metrics-address", "off"), "Metrics off", "metrics off"),
    versus="metrics on vs off",
    versus_short="metrics on vs off",
    setup=(
        "both with `--http-address off`, one with `--metrics-address ''` (the default: metrics collected — "
        "the gRPC interceptor on every call, the decisioning metrics on every Decide — and, the HTTP listener "
        "being off, not served, so nothing scrapes), one with `--metrics-address off` (no metrics at all)"
    ),
    target_pct=METRICS_TARGET_PCT,
    target=f"cost under {METRICS_TARGET_PCT:g} % (within ±{METRICS_TARGET_PCT:g} %)",
)


@dataclass(frozen=True)
class Plan:
    """What to run and for how long."""

    scenarios: frozenset[str]
    quick: bool
    h2: h2load.H2loadSettings  # h2load settings, the same for every throughput run
    throughput_s: float
    latency_s: float
    latency_sizes: tuple[int, ...]
    warmup_requests: int
    loadgen_warmup_s: float
    loadgen_s: float
    loadgen_channels: int
    single_concurrency: int
    bulk_concurrency: int
    batch: int
    customers: int
    policies: int
    computed_fields: bool
    create_s: float  # measured create-offer seconds per protocol in "rest"
    create_slices: int  # ... cut into this many slices per protocol, the protocols taking turns
    create_warmup_s: float
    ab_rounds: int  # A/B rounds of "http-idle" and of "metrics-cost"
    ab_s: float  # measured seconds of each h2load run of "http-idle" and of "metrics-cost"
    results_dir: Path  # bench/results with --save; else its git-ignored tmp/ folder

    def sizes(self) -> list[int]:
        """The catalogue sizes that need a server process, small first.

        Latency at 10,000 offers rides on the decide-10k server: it needs
        that run's maximum anyway.
        """
        sizes = []
        if self.scenarios & {"ceiling", "decide-1k", "latency", "outcomes", "batch-decide", "after-write"}:
            sizes.append(SMALL)
        if self.scenarios & {"decide-10k", "after-write"}:
            sizes.append(LARGE)
        return sizes

    @property
    def needs_h2load(self) -> bool:
        return bool(
            self.scenarios
            & {
                "ceiling",
                "decide-1k",
                "decide-10k",
                "latency",
                "distributed",
                "workers",
                "rest",
                "http-idle",
                "metrics-cost",
            }
        )

    def settings(self) -> dict[str, Any]:
        return {
            "quick": self.quick,
            "policies": self.policies,
            "computed_fields": self.computed_fields,
            "scenarios": sorted(self.scenarios),
            "h2load": {
                "args": " ".join(self.h2.args()),
                "in_flight": self.h2.in_flight,
                "warmup_requests": self.warmup_requests,
            },
            "durations": {"throughput_s": self.throughput_s, "latency_s": self.latency_s},
            "latency_sizes": list(self.latency_sizes),
            "loadgen": {
                "warmup_s": self.loadgen_warmup_s,
                "duration_s": self.loadgen_s,
                "channels": self.loadgen_channels,
                "single_concurrency": self.single_concurrency,
                "bulk_concurrency": self.bulk_concurrency,
                "batch": self.batch,
            },
            "customers_with_history": self.customers,
            "rest": {
                "h2load_args": " ".join(["--h1", *self.h2.http1().args()]),
                "create_protocols": list(CREATE_PROTOCOLS),
                "create_s": self.create_s,
                "create_slices": self.create_slices,
                "create_warmup_s": self.create_warmup_s,
                "create_in_flight": self.h2.in_flight,
                "create_grpc_channels": self.h2.clients,
            },
            "http_idle": {"rounds": self.ab_rounds, "seconds": self.ab_s},
            "metrics_cost": {"rounds": self.ab_rounds, "seconds": self.ab_s},
            "cores": {"server": SERVER_CORE, "load": h2load.LOAD_CORE, "distributed_services": SERVER_CORE},
            "workers": {
                "h2load_args": " ".join(workers.h2load_settings(self.h2).args()),
                "timed_s": self.throughput_s,
                "layouts": {
                    layout.workers: {
                        "server_cores": layout.server_cores,
                        "services_cores": sorted(layout.services_cores),
                        "load_cores": layout.load_cores,
                    }
                    for layout in workers.LAYOUTS
                },
                "propagation_writes": workers.PROPAGATION_WRITES,
                "revocations": workers.REVOCATIONS,
                "poll_interval_s": workers.POLL_INTERVAL_S,
            },
        }


class Run:
    """One benchmark run: owns the report and the scratch directory."""

    def __init__(self, plan: Plan, report: Report, scratch: Path, h2load_exe: str | None) -> None:
        self.plan = plan
        self.report = report
        self.scratch = scratch
        self.h2load_exe = h2load_exe
        self.run_id = report.started_at.strftime("%Y%m%d%H%M%S")
        # (ceiling, Decide) req/s of the embedded server per catalogue size, for the distributed comparison.
        self.embedded: dict[int, tuple[float, float]] = {}

    # -- per server process ----------------------------------------------

    def catalogue(self, size: int) -> None:
        """Start a server for `size` offers, load the tenant, and run this size's phases."""
        plan = self.plan
        log = plan.results_dir / f"{self.report.started_at:%Y-%m-%d-%H%M%S}-server-n{size}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with BenchServer(self.scratch / f"arbiter-n{size}.db", log) as server:
            say(f"[n={size:,}] server pid {server.pid} on core {SERVER_CORE}, {server.target}")
            needs_tenant = bool(
                plan.scenarios & {"decide-1k", "decide-10k", "latency", "outcomes", "batch-decide", "after-write"}
            )
            tenant: SyntheticTenant | None = None
            if needs_tenant:
                tenant = self._load(server, size)
            # Every process measures its own ceiling: ratios compare calls on one process.
            ceiling = self.ceiling(server, size) if plan.needs_h2load else 0.0
            decide_max = None
            if tenant is not None and self._wants_decide(size):
                decide_max = self.decide(server, size, tenant, ceiling)
                self.embedded[size] = (ceiling, decide_max)
            if tenant is not None and decide_max and "latency" in plan.scenarios and size in plan.latency_sizes:
                self.latency(server, size, tenant, decide_max)
            if tenant is not None and "outcomes" in plan.scenarios and size == SMALL:
                self.outcomes(server, size, tenant)
            if tenant is not None and "batch-decide" in plan.scenarios and size == SMALL:
                self.batch_decide(server, size, tenant)
            if tenant is not None and "after-write" in plan.scenarios:
                self.after_write(server, size, tenant)
            self.report.phases.append(
                {
                    "phase": "server",
                    "offers": size,
                    "peak_rss_mb": server.peak_rss_mb(),
                    "log": str(log.relative_to(REPO)),
                }
            )

    def _wants_decide(self, size: int) -> bool:
        scenarios = self.plan.scenarios
        if size == SMALL:
            # Latency runs at half the measured maximum, so it needs the maximum.
            return "decide-1k" in scenarios or "latency" in scenarios
        return "decide-10k" in scenarios

    def _load(self, server: BenchServer, size: int, name: str | None = None, *, record: bool = True) -> SyntheticTenant:
        started = time.monotonic()
        before = server.call_counts()
        name = name or f"bench-n{size}"
        tenant = load_tenant(
            server.target,
            name,
            server.api_key(name),
            size,
            customers=self.plan.customers,
            policies=self.plan.policies,
            computed_fields=self.plan.computed_fields,
        )
        elapsed = time.monotonic() - started
        delta = counts_delta(before, server.call_counts())
        self._check_non_ok(f"catalogue {name}", delta)
        info = {
            "tenant": tenant.tenant,
            "offers": len(tenant.offer_ids),
            "create_s": elapsed,
            "outcomes_recorded": tenant.outcomes_recorded,
            "customers": tenant.customers,
            "policies": self.plan.policies,
            "decide_body": tenant.decide_body(),
            "server_counts": delta,
        }
        if record:  # the report lists each kind of catalogue once
            self.report.catalogues.append(info)
        else:
            self.report.phases.append({"phase": f"catalogue {name}", **info})
        say(
            f"[{name}] catalogue: {size:,} offers (8 categories "
            f"{'with' if self.plan.computed_fields else 'without'} computed fields, "
            f"{self.plan.policies} contact policies) and {tenant.outcomes_recorded:,} outcomes "
            f"of {tenant.customers:,} customers in {elapsed:.1f} s"
        )
        return tenant

    # -- h2load phases ---------------------------------------------------------

    def _body(self, name: str, message: Any) -> Path:
        path = self.scratch / f"{name}.bin"
        path.write_bytes(h2load.grpc_frame(message))
        return path

    def ceiling(self, server: BenchServer, size: int) -> float:
        call = h2load.GrpcCall(
            f"http://{server.target}{HEALTH_PATH}", self._body("health", health_pb2.HealthCheckRequest())
        )
        phase = self._throughput(server, f"ceiling n={size}", call, method=None)
        self.report.rows.append(
            Row(
                scenario=f"Ceiling: Health/Check, h2load (server of the {size:,}-offer run)",
                offers=None,
                throughput=phase["req_per_s"],
                unit="req/s",
                ratio=1.0,
                non_ok=phase["non_ok"],
                note=_saturation_note(phase),
            )
        )
        rate: float = phase["req_per_s"]
        return rate

    def decide(self, server: BenchServer, size: int, tenant: SyntheticTenant, ceiling: float) -> float:
        call = h2load.GrpcCall(
            f"http://{server.target}{DECIDE_PATH}",
            self._body(f"decide-{size}", tenant.decide_request()),
            tenant.api_key,
        )
        phase = self._throughput(server, f"decide n={size}", call, method="Decide")
        rate: float = phase["req_per_s"]
        ratio = rate / ceiling if ceiling else 0.0
        note = _saturation_note(phase)
        target = DECIDE_1K_TARGET if size == SMALL else DECIDE_10K_TARGET
        self.report.rows.append(
            Row(
                scenario="Decide throughput, h2load",
                offers=size,
                throughput=rate,
                unit="req/s",
                ratio=ratio,
                non_ok=phase["non_ok"],
                target=f"≥ {target}× ceiling",
                met=ratio >= target and phase["non_ok"] == 0,
                note=note,
            )
        )
        return rate

    def latency(self, server: BenchServer, size: int, tenant: SyntheticTenant, decide_max: float) -> None:
        plan = self.plan
        rate = decide_max / 2
        call = h2load.GrpcCall(
            f"http://{server.target}{DECIDE_PATH}",
            self._body(f"decide-{size}", tenant.decide_request()),
            tenant.api_key,
        )
        # Paced settings, not the throughput ones: h2load's pacing sends bursts otherwise.
        paced = h2load.H2loadSettings.paced(rate)
        requests = max(paced.clients, round(rate * plan.latency_s))
        log_file = self.scratch / f"latency-{size}.log"
        before = server.call_counts()
        cpu = server.cpu_seconds()
        result = h2load.run(
            self._exe(),
            call,
            paced,
            requests=requests,
            rps_total=rate,
            log_file=log_file,
            timeout=plan.latency_s * 3 + 60,
        )
        cpu = server.cpu_seconds() - cpu
        delta = counts_delta(before, server.call_counts())
        bad = self._verify(f"latency n={size}", "Decide", result.total, delta, result.problems)
        lat = result.latencies_ms
        p50, p99 = h2load.percentile(lat, 50), h2load.percentile(lat, 99)
        gaps = _interarrival(log_file)
        note = ""
        if gaps["p50"] < 0.25 * 1e6 / rate:
            # Calls came in bursts after all: h2load itself was held up (a busy load core?).
            note = (
                f"pacing did not hold: median gap between calls {gaps['p50']:.0f} µs, "
                f"expected {1e6 / rate:.0f} µs (is something else running on core {h2load.LOAD_CORE}?)"
            )
            say(f"!!! latency n={size}: {note}")
        self.report.phases.append(
            {
                "phase": f"latency n={size}",
                "command": shlex.join(result.command),
                "target_rps": rate,
                "h2load_args": " ".join(paced.args()),
                "achieved_rps": result.req_per_s,
                "requests": result.total,
                "samples": len(lat),
                "p50_ms": p50,
                "p90_ms": h2load.percentile(lat, 90),
                "p99_ms": p99,
                "p999_ms": h2load.percentile(lat, 99.9),
                "max_ms": max(lat, default=0.0),
                "interarrival_us": gaps,
                "server_cpu_util": cpu / result.elapsed_s if result.elapsed_s else None,
                "server_counts": delta,
                "non_ok": bad,
            }
        )
        say(
            f"[n={size:,}] Decide latency at {rate:,.0f} req/s (half of max): p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            f"over {len(lat):,} calls (achieved {result.req_per_s:,.0f} req/s, server CPU "
            f"{_pct(cpu, result.elapsed_s)})"
        )
        self.report.rows.append(
            Row(
                scenario=f"Decide latency at {rate:,.0f} req/s (½ max), h2load --rps",
                offers=size,
                throughput=result.req_per_s,
                unit="req/s",
                p50_ms=p50,
                p99_ms=p99,
                non_ok=bad,
                target=f"p99 ≤ {P99_TARGET_MS:g} ms",
                met=p99 <= P99_TARGET_MS and bad == 0,
                note=note,
            )
        )

    def batch_decide(self, server: BenchServer, size: int, tenant: SyntheticTenant) -> None:
        """Decisions per second through BatchDecide, 1,000 customers a call, one call at a time."""
        before = server.call_counts()
        run = batch_decide.measure(server.target, tenant, calls=3 if self.plan.quick else 10)
        delta = counts_delta(before, server.call_counts())
        bad = self._check_non_ok(f"batch-decide n={size}", delta)
        rate = run.decisions_per_second
        self.report.phases.append(
            {
                "phase": f"batch-decide n={size}",
                "batch": run.batch,
                "calls": run.calls,
                "seconds": run.seconds,
                "decisions_per_s": rate,
                "server_counts": delta,
                "non_ok": bad,
            }
        )
        say(f"[n={size:,}] BatchDecide of {run.batch:,}: {rate:,.0f} decisions/s over {run.calls} calls")
        self.report.rows.append(
            Row(
                scenario=f"BatchDecide, {run.batch:,} customers a call, one call at a time",
                offers=size,
                throughput=rate,
                unit="decisions/s",
                target=f"≥ {BATCH_DECIDE_TARGET:,} decisions/s",
                met=rate >= BATCH_DECIDE_TARGET,
                non_ok=bad,
            )
        )

    def after_write(self, server: BenchServer, size: int, tenant: SyntheticTenant) -> None:
        """Latency of an offer update, of the Decide right after it, and of a Decide with no write before."""
        rounds = 50 if self.plan.quick else 200
        before = server.call_counts()
        measured = after_write.measure(server.target, tenant, rounds)
        delta = counts_delta(before, server.call_counts())
        bad = self._check_non_ok(f"after-write n={size}", delta)
        summary = measured.summary()
        self.report.phases.append(
            {"phase": f"after-write n={size}", "rounds": rounds, **summary, "server_counts": delta, "non_ok": bad}
        )
        say(
            f"[n={size:,}] one call at a time: UpdateOffer p50 {summary['write_p50_ms']:.2f} ms, "
            f"Decide right after it p50 {summary['decide_after_write_p50_ms']:.2f} ms / p99 "
            f"{summary['decide_after_write_p99_ms']:.2f} ms, Decide alone p50 {summary['decide_alone_p50_ms']:.2f} ms"
        )
        for scenario, key in (
            ("UpdateOffer (one offer, acknowledged once the view holds it), one at a time", "write"),
            ("Decide right after an UpdateOffer, one at a time", "decide_after_write"),
            ("Decide with no write before it, one at a time", "decide_alone"),
        ):
            self.report.rows.append(
                Row(
                    scenario=scenario,
                    offers=size,
                    throughput=None,
                    unit="",
                    p50_ms=summary[f"{key}_p50_ms"],
                    p99_ms=summary[f"{key}_p99_ms"],
                    non_ok=bad,
                )
            )

    def _throughput(
        self,
        server: BenchServer,
        name: str,
        call: h2load.Call,
        method: str | None,
        *,
        settings: h2load.H2loadSettings | None = None,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """A warm-up, then exactly rate × duration requests; the server's counts must match both.

        `method` None: the server does not count these calls (Health/Check,
        REST), so h2load's HTTP status counts are the check.
        """
        plan = self.plan
        settings = settings or plan.h2
        seconds = seconds or plan.throughput_s
        before = server.call_counts()
        warm = h2load.run(self._exe(), call, settings, requests=plan.warmup_requests, timeout=120)
        requests = max(settings.in_flight * 4, round(warm.req_per_s * seconds))
        cpu = server.cpu_seconds()
        main = h2load.run(self._exe(), call, settings, requests=requests, timeout=seconds * 4 + 60)
        cpu = server.cpu_seconds() - cpu
        delta = counts_delta(before, server.call_counts())
        bad = self._verify(name, method, warm.total + main.total, delta, warm.problems + main.problems)
        phase = {
            "phase": name,
            "command": shlex.join(main.command),
            "warmup_requests": warm.total,
            "warmup_req_per_s": warm.req_per_s,
            "requests": main.total,
            "elapsed_s": main.elapsed_s,
            "req_per_s": main.req_per_s,
            "server_cpu_util": cpu / main.elapsed_s if main.elapsed_s else None,
            "server_counts": delta,
            "non_ok": bad,
            "h2load_output": main.output,
        }
        self.report.phases.append(phase)
        say(
            f"[{name}] {main.req_per_s:,.0f} req/s over {main.total:,} calls in {main.elapsed_s:.1f} s "
            f"(server CPU {_pct(cpu, main.elapsed_s)}, non-OK {bad})"
        )
        return phase

    def _verify(self, name: str, method: str | None, sent: int, delta: CallCounts, problems: int) -> int:
        """Calls of a phase not confirmed OK: non-OK answers, non-2xx responses, or calls the server missed."""
        bad = self._check_non_ok(name, delta) + problems
        if problems:
            self.report.failures.append(f"{name}: {problems} requests were not HTTP 2xx answers (h2load)")
        if method is not None:
            ok = delta.get(method, {}).get("OK", 0)
            if ok != sent:
                self.report.failures.append(f"{name}: sent {sent:,} {method} calls but the server answered {ok:,} OK")
                bad = max(bad, sent - ok)
        return bad

    def _check_non_ok(self, name: str, delta: CallCounts) -> int:
        bad = non_ok(delta)
        count = sum(n for codes in bad.values() for n in codes.values())
        if count:
            self.report.failures.append(f"{name}: the server answered non-OK statuses {json.dumps(bad)}")
            say(f"!!! {name}: NON-OK ANSWERS {json.dumps(bad)}")
        return count

    def _exe(self) -> str:
        assert self.h2load_exe is not None, "h2load is needed for this scenario"
        return self.h2load_exe

    # -- the outcome generator -----------------------------------------------------

    def outcomes(self, server: BenchServer, size: int, tenant: SyntheticTenant) -> None:
        plan = self.plan
        offer_file = self.scratch / f"offers-{size}.json"
        offer_file.write_text(json.dumps(tenant.offer_ids))
        ceiling = self._loadgen(server, tenant, offer_file, "health", plan.single_concurrency, method=None)
        self.report.rows.append(
            Row(
                scenario="Ceiling: Health/Check, bench/loadgen.py",
                offers=None,
                throughput=ceiling["calls_per_s"],
                unit="calls/s",
                ratio=1.0,
                non_ok=ceiling["non_ok"],
            )
        )
        single = self._loadgen(server, tenant, offer_file, "outcome", plan.single_concurrency, method="RecordOutcome")
        self.report.rows.append(
            Row(
                scenario="RecordOutcome (1 per call), bench/loadgen.py",
                offers=size,
                throughput=single["items_per_s"],
                unit="outcomes/s",
                ratio=single["calls_per_s"] / ceiling["calls_per_s"] if ceiling["calls_per_s"] else None,
                non_ok=single["non_ok"],
            )
        )
        bulk = self._loadgen(server, tenant, offer_file, "outcomes", plan.bulk_concurrency, method="RecordOutcomes")
        rate = bulk["items_per_s"]
        self.report.rows.append(
            Row(
                scenario=f"RecordOutcomes ({plan.batch:,} per call), bench/loadgen.py",
                offers=size,
                throughput=rate,
                unit="outcomes/s",
                non_ok=bulk["non_ok"],
                target=f"≥ {BULK_TARGET:,.0f} outcomes/s",
                met=rate >= BULK_TARGET and bulk["non_ok"] == 0,
                note=f"{bulk['calls_per_s']:.1f} calls/s, call p50 {bulk['p50_ms']:.0f} ms",
            )
        )

    def _loadgen(
        self,
        server: BenchServer,
        tenant: SyntheticTenant,
        offer_file: Path,
        mode: str,
        concurrency: int,
        method: str | None,
        label: str | None = None,
    ) -> dict[str, Any]:
        plan = self.plan
        command = [
            "taskset",
            "-c",
            h2load.LOAD_CORE,
            sys.executable,
            "-m",
            "bench.loadgen",
            "--target",
            server.target,
            "--api-key",
            tenant.api_key,
            "--mode",
            mode,
            "--duration",
            f"{plan.loadgen_s:g}",
            "--warmup",
            f"{plan.loadgen_warmup_s:g}",
            "--concurrency",
            str(concurrency),
            "--channels",
            str(plan.loadgen_channels),
            "--batch",
            str(plan.batch),
            "--offer-ids",
            str(offer_file),
            # Unique per run and mode: a repeated key would be a duplicate, not a new outcome.
            "--key-prefix",
            f"bench-{self.run_id}-{mode}",
            "--server-pid",
            str(server.pid),
        ]
        name = label or f"loadgen {mode} n={len(tenant.offer_ids)}"
        before = server.call_counts()
        timeout = plan.loadgen_warmup_s + plan.loadgen_s + 180
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
        delta = counts_delta(before, server.call_counts())
        if not done.stdout.strip():
            raise RuntimeError(f"{name} printed nothing (exit {done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        client_bad = sum(n for code, n in result["codes"].items() if code != "OK")
        if client_bad:
            self.report.failures.append(f"{name}: the generator saw non-OK statuses {json.dumps(result['codes'])}")
            say(f"!!! {name}: NON-OK ANSWERS {json.dumps(result['codes'])}")
        if result["duplicates"]:
            self.report.failures.append(f"{name}: {result['duplicates']} outcomes answered DUPLICATE (keys are unique)")
        if result["not_serving"]:
            self.report.failures.append(f"{name}: {result['not_serving']} health answers were not SERVING")
        server_bad = self._check_non_ok(name, delta)
        missed = 0
        if method is not None:
            ok = delta.get(method, {}).get("OK", 0)
            missed = abs(result["calls"] - ok)
            if missed:
                self.report.failures.append(
                    f"{name}: the generator made {result['calls']:,} calls, the server answered {ok:,} OK"
                )
        result["non_ok"] = max(client_bad, server_bad, missed) + result["duplicates"] + result["not_serving"]
        result["server_counts"] = delta
        result["command"] = shlex.join(command)
        self.report.phases.append({"phase": name, **result})
        say(
            f"[{name}] {result['items_per_s']:,.0f} {'outcomes' if mode != 'health' else 'calls'}/s "
            f"({result['calls_per_s']:,.1f} calls/s, call p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, server CPU {result['server_cpu_util'] or 0:.0%}, "
            f"non-OK {result['non_ok']})"
        )
        return result

    # -- the distributed backend ---------------------------------------------------

    def distributed(self) -> None:
        """Decide and RecordOutcomes on Postgres + Redis (pinned with the server to its core) beside embedded."""
        plan = self.plan
        size = SMALL
        if size in self.embedded:
            (embedded_ceiling, embedded_decide), source = self.embedded[size], "the decide-1k phase of this run"
        else:
            (embedded_ceiling, embedded_decide), source = self._embedded_twin(size), "measured in this scenario"
        folder = self.scratch / "distributed"
        core = int(SERVER_CORE)
        with Services(folder, core) as services:
            say(
                f"[distributed] Postgres pid {services.postmaster} on 127.0.0.1:{services.postgres.port}, "
                f"Redis pid {services.redis_pid} on 127.0.0.1:{services.redis.port}, pinned to core {core}"
            )
            with BenchServer(
                services.database_url,
                self._server_log("distributed"),
                redis=services.redis_url,
                services_cpu=services.cpu_seconds,
            ) as server:
                say(f"[distributed] server pid {server.pid} on core {SERVER_CORE}, {server.target}")
                tenant = self._load(server, size, name="bench-distributed", record=False)
                ceiling = self._throughput(server, "distributed: ceiling", self._health_call(server), None)
                decide = self._throughput(
                    server, "distributed: decide", self._decide_call(server, tenant, "decide-distributed"), "Decide"
                )
                offer_file = self.scratch / "offers-distributed.json"
                offer_file.write_text(json.dumps(tenant.offer_ids))
                services_cpu, started = services.cpu_seconds(), time.monotonic()
                bulk = self._loadgen(
                    server,
                    tenant,
                    offer_file,
                    "outcomes",
                    plan.bulk_concurrency,
                    method="RecordOutcomes",
                    label=f"distributed: loadgen outcomes n={size}",
                )
                services_cpu, elapsed = services.cpu_seconds() - services_cpu, time.monotonic() - started
                unpinned = services.off_core()
                processes = len(services.pids())
                described = services.describe()
                peak_rss = server.peak_rss_mb()
        if unpinned:
            self.report.warnings.append(
                f"distributed: service processes not pinned to core {core} alone (pid: cores): {unpinned}; "
                "the distributed figures are not comparable"
            )
        dist_ceiling: float = ceiling["req_per_s"]
        dist_decide: float = decide["req_per_s"]
        bad = ceiling["non_ok"] + decide["non_ok"]
        self.report.phases.append(
            {
                "phase": "distributed summary",
                "offers": size,
                "embedded": {"ceiling": embedded_ceiling, "decide": embedded_decide, "source": source},
                "distributed": {"ceiling": dist_ceiling, "decide": dist_decide, "outcomes_per_s": bulk["items_per_s"]},
                "decide_vs_embedded": dist_decide / embedded_decide if embedded_decide else None,
                # Postgres's and Redis's CPU over the whole bench/loadgen.py run (start, warm-up, measured part):
                # the generator reports the server process's own for the measured part only.
                "outcomes_services_cpu_s": services_cpu,
                "outcomes_services_cpu_util_whole_loadgen_run": services_cpu / elapsed if elapsed else None,
                "services": described,
                "service_processes_at_end": processes,
                "off_core": unpinned,
                "server_command": shlex.join(server.command),
                "server_peak_rss_mb": peak_rss,
            }
        )
        say(
            f"[distributed] Decide {dist_decide:,.0f} req/s vs embedded {embedded_decide:,.0f} ({source}): "
            f"{dist_decide / embedded_decide if embedded_decide else math.nan:.2f}×; "
            f"RecordOutcomes {bulk['items_per_s']:,.0f} outcomes/s into Postgres"
        )
        self.report.rows += [
            Row(
                scenario="Distributed (Postgres + Redis on the server core): ceiling, Health/Check, h2load",
                offers=None,
                throughput=dist_ceiling,
                unit="req/s",
                ratio=1.0,
                non_ok=ceiling["non_ok"],
                note=_saturation_note(ceiling),
            ),
            Row(
                scenario="Distributed: Decide throughput, h2load",
                offers=size,
                throughput=dist_decide,
                unit="req/s",
                ratio=dist_decide / dist_ceiling if dist_ceiling else None,
                non_ok=decide["non_ok"],
                note=_join(
                    f"embedded Decide/empty {embedded_decide / embedded_ceiling:.2f}" if embedded_ceiling else "",
                    _saturation_note(decide),
                ),
            ),
            decide_versus_embedded(dist_decide, embedded_decide, size, non_ok=bad, source=source),
            postgres_bulk_row(bulk, plan.batch, size),
        ]
        postgres, redis = described["postgres"], described["redis"]
        settings = ", ".join(f"{name} {value}" for name, value in postgres["settings"].items())
        self.report.method_notes.append(
            f"Distributed: a server on `--db postgresql://… --redis redis://…` with a throwaway PostgreSQL "
            f"{postgres['version']} and Redis {redis['version']} on free loopback ports (scripts/local_services.py). "
            f"Postgres, Redis and the server share core {core}, the load stays on core {h2load.LOAD_CORE}: every "
            "thread of the postmaster and of the processes it had forked, and of redis-server, is pinned right "
            "after start, before any connection, and the backends forked later inherit it "
            f"({processes} service processes on core {core} alone at the end"
            + (f", but not {sorted(unpinned)}" if unpinned else "")
            + f"). Postgres runs with its defaults ({settings}; data on {postgres['data_filesystem']}); "
            "the only settings given are local_services' listen_addresses, port, socket folder and "
            "max_connections=200, as a deployment gives them. Redis: "
            + ", ".join(f"{key} {value!r}" for key, value in redis["config"].items())
            + " (no persistence: Arbiter's Redis is a cache of Postgres). The "
            f"{size:,}-offer tenant is decide-1k's (same seed, same loading code); ceiling and Decide by h2load "
            "with the throughput settings, RecordOutcomes of 1,000 by bench/loadgen.py as in outcomes; Server "
            "CPU of these h2load phases counts Arbiter, Postgres and Redis (the JSON). The embedded Decide it is "
            f"compared with is {source}."
        )

    def _embedded_twin(self, size: int) -> tuple[float, float]:
        """Ceiling and Decide on a SQLite server of the distributed scenario's own, when decide-1k did not run."""
        with BenchServer(
            self.scratch / f"arbiter-embedded-n{size}.db", self._server_log("distributed-embedded")
        ) as server:
            say(f"[distributed] embedded server pid {server.pid} on core {SERVER_CORE}, {server.target}")
            tenant = self._load(server, size, name="bench-embedded", record=False)
            ceiling = self._throughput(server, "distributed: embedded ceiling", self._health_call(server), None)
            decide = self._throughput(
                server, "distributed: embedded decide", self._decide_call(server, tenant, "decide-embedded"), "Decide"
            )
        rates: tuple[float, float] = (ceiling["req_per_s"], decide["req_per_s"])
        self.report.rows += [
            Row(
                scenario="Distributed's embedded twin (SQLite): ceiling, Health/Check, h2load",
                offers=None,
                throughput=rates[0],
                unit="req/s",
                ratio=1.0,
                non_ok=ceiling["non_ok"],
                note=_saturation_note(ceiling),
            ),
            Row(
                scenario="Distributed's embedded twin (SQLite): Decide throughput, h2load",
                offers=size,
                throughput=rates[1],
                unit="req/s",
                ratio=rates[1] / rates[0] if rates[0] else None,
                non_ok=decide["non_ok"],
                note=_saturation_note(decide),
            ),
        ]
        return rates

    # -- the distributed backend with several workers, and servers following each other ---------------

    def workers(self) -> None:
        """Decide with --workers 1 and 2 on one Postgres + Redis; then propagation between two servers on it."""
        plan = self.plan
        size = SMALL
        settings = workers.h2load_settings(plan.h2)
        core = int(SERVER_CORE)
        tenant: SyntheticTenant | None = None
        measured: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
        with Services(self.scratch / "workers", core) as services:
            say(
                f"[workers] Postgres pid {services.postmaster} on 127.0.0.1:{services.postgres.port}, "
                f"Redis pid {services.redis_pid} on 127.0.0.1:{services.redis.port}"
            )
            for layout in workers.LAYOUTS:
                services.pin_to(layout.services_cores)
                with BenchServer(
                    services.database_url,
                    self._server_log(f"workers-{layout.workers}"),
                    ("--workers", str(layout.workers)),
                    redis=services.redis_url,
                    services_cpu=services.cpu_seconds,
                    cores=layout.server_cores,
                ) as server:
                    say(
                        f"[workers {layout.workers}] server pid {server.pid} (workers {server.worker_pids()}) on "
                        f"cores {layout.server_cores}, Postgres and Redis on {sorted(layout.services_cores)}, "
                        f"h2load on {layout.load_cores}, {server.target}"
                    )
                    if tenant is None:  # in Postgres from then on: every later server serves it
                        tenant = self._load(server, size, name="bench-workers", record=False)
                    phases = []
                    for label, call, method in (
                        ("ceiling", self._health_call(server), None),
                        ("decide", self._decide_call(server, tenant, "decide-workers"), "Decide"),
                    ):
                        phase = workers.throughput(
                            server,
                            self._exe(),
                            call,
                            method,
                            settings,
                            layout,
                            name=f"workers {layout.workers}: {label}",
                            warmup_requests=plan.warmup_requests,
                            seconds=plan.throughput_s,
                        )
                        self._record_workers_phase(phase, layout)
                        phases.append(phase)
                    unpinned = services.off_core()
                    if unpinned:
                        self.report.warnings.append(
                            f"workers {layout.workers}: service processes not on cores "
                            f"{sorted(layout.services_cores)} alone (pid: cores): {unpinned}"
                        )
                    self.report.phases.append(
                        {
                            "phase": f"workers {layout.workers}: server",
                            "server_command": shlex.join(server.command),
                            "worker_pids": server.worker_pids(),
                            "supervisor_peak_rss_mb": server.peak_rss_mb(),
                        }
                    )
                measured[layout.workers] = (phases[0], phases[1])
            assert tenant is not None
            self._workers_rows(measured, size)
            services.pin_to({core})
            self._propagation(services, tenant)
            described = services.describe()
        postgres, redis = described["postgres"], described["redis"]
        one, two = workers.LAYOUTS
        self.report.method_notes.append(
            f"Workers: one throwaway PostgreSQL {postgres['version']} and Redis {redis['version']} for the scenario "
            f"(as in Distributed) and the {size:,}-offer tenant, loaded once; a server with `--workers 1`, then one "
            f"with `--workers 2`, on that database. Cores: {one.label}; {two.label} — a 2-core machine cannot "
            "keep two workers on core 0 alone, so the 2-worker figure is two cores shared by the server, its "
            "services and the load generator, against one core for the server side and one for the load. "
            f"Ceiling and Decide by h2load {' '.join(settings.args())} (the throughput runs' "
            f"{settings.in_flight} calls in flight over at least {workers.MIN_CONNECTIONS} connections, since "
            "SO_REUSEPORT spreads connections, not calls, over the workers): the warm-up as in decide-1k, then a "
            f"timed run (-D {plan.throughput_s:g} s) instead of a fixed count, since h2load gives each "
            "connection an equal share of a count and a worker with fewer connections would finish early. "
            "Checked: every answer h2load saw was a 2xx, the server's OK count (every worker's, SIGUSR1 to each) "
            "grew by at least the calls h2load saw answered and at most the calls it started, no status but OK "
            "(and CANCELLED for the calls in flight when the timed run stopped); each worker's CPU time and "
            "calls are in the JSON, and a worker under "
            f"{workers.BUSY_SHARE:.0%} of a core during a run is a warning. Propagation: two servers (one "
            "process each, on core 0 with Postgres and Redis; the polling client on core 1) on that database; "
            f"{workers.PROPAGATION_WRITES} UpdateOffers of one offer's short description on A, one at a time, "
            f"each followed by GetOffer on B every {workers.POLL_INTERVAL_S * 1000:g} ms until B's answer (from "
            "its in-memory view) shows it, timed from A's answer to B's first answer showing it; then "
            f"{workers.REVOCATIONS} keys (decide role) made by the keys CLI, each used on B, revoked on A with "
            "RevokeApiKey and polled on B until UNAUTHENTICATED. Both servers' counts must equal the calls made."
        )

    def _record_workers_phase(self, phase: dict[str, Any], layout: Layout) -> None:
        name = phase["phase"]
        self.report.failures.extend(phase["problems"])
        for problem in phase["problems"]:
            say(f"!!! {problem}")
        if phase["idle_workers"]:
            warning = (
                f"{name}: worker(s) {phase['idle_workers']} used under {workers.BUSY_SHARE:.0%} of a core "
                f"(CPU s per worker {phase['worker_cpu_s']}, calls {phase['worker_calls']}): the load did not "
                "reach every worker, so this run measured fewer of them"
            )
            self.report.warnings.append(warning)
            say(f"!!! {warning}")
        self.report.phases.append(phase)
        cpu = ", ".join(f"{float(s):.1f}" for s in phase["worker_cpu_s"].values())
        calls = f", calls {', '.join(map(str, phase['worker_calls'].values()))}" if phase["worker_calls"] else ""
        say(
            f"[{name}] {phase['req_per_s']:,.0f} req/s over {phase['requests']:,} calls in {phase['elapsed_s']:.1f} s "
            f"(server + services {phase['server_cores_busy'] or 0:.2f} of {layout.cores_for_server} cores, h2load "
            f"{phase['h2load_cores_busy'] or 0:.2f}; per worker CPU s {cpu}{calls}; non-OK {phase['non_ok']})"
        )

    def _propagation(self, services: Services, tenant: SyntheticTenant) -> None:
        """Two servers on one database: writes on A seen on B, keys revoked on A refused by B."""
        with (
            BenchServer(
                services.database_url,
                self._server_log("workers-a"),
                redis=services.redis_url,
                services_cpu=services.cpu_seconds,
            ) as a,
            BenchServer(
                services.database_url,
                self._server_log("workers-b"),
                redis=services.redis_url,
                services_cpu=services.cpu_seconds,
            ) as b,
        ):
            say(f"[propagation] server A pid {a.pid} ({a.target}), B pid {b.pid} ({b.target}), core {SERVER_CORE}")
            before_a, before_b = a.call_counts(), b.call_counts()
            writes = workers.propagation(
                a.target, b.target, tenant.api_key, tenant.offer_ids, workers.PROPAGATION_WRITES
            )
            keys = workers.revocations(
                a.target,
                b.target,
                tenant.api_key,
                tenant.offer_ids[0],
                lambda name: b.create_key(tenant.tenant, role="decide", name=name),
                workers.REVOCATIONS,
            )
            delta_a, delta_b = counts_delta(before_a, a.call_counts()), counts_delta(before_b, b.call_counts())
        on_a, on_b = workers.expected_counts(workers.PROPAGATION_WRITES, workers.REVOCATIONS, writes, keys)
        problems = workers.count_mismatches("propagation, server A", on_a, delta_a)
        problems += workers.count_mismatches("propagation, server B", on_b, delta_b)
        for problem in problems:
            say(f"!!! {problem}")
        self.report.failures.extend(problems)
        for kind, delays in (("changes", writes), ("keys", keys)):
            if delays.lost:
                problem = f"propagation: {delays.lost} {kind} not seen on B within {workers.POLL_TIMEOUT_S:g} s"
                self.report.failures.append(problem)
                say(f"!!! {problem}")
        self.report.phases.append(
            {
                "phase": "workers: propagation",
                "writes": writes.summary(),
                "write_delays_ms": [d * 1000 for d in writes.seconds],
                "revocations": keys.summary(),
                "revocation_delays_ms": [d * 1000 for d in keys.seconds],
                "server_counts": {"a": delta_a, "b": delta_b},
                "expected_counts": {"a": on_a, "b": on_b},
            }
        )
        w, k = writes.summary(), keys.summary()
        say(
            f"[propagation] write on A → seen on B: p50 {w['p50_ms']:.1f} ms, p99 {w['p99_ms']:.1f} ms, "
            f"max {w['max_ms']:.1f} ms over {w['count']:.0f}; revocation on A → refused by B: p50 "
            f"{k['p50_ms']:.1f} ms, max {k['max_ms']:.1f} ms over {k['count']:.0f}"
        )
        bad = len(problems)
        self.report.rows += [workers.propagation_row(writes, non_ok=bad), workers.revocation_row(keys, non_ok=bad)]

    def _workers_rows(self, measured: dict[int, tuple[dict[str, Any], dict[str, Any]]], size: int) -> None:
        """Ceiling and Decide of each configuration, then the ratio 2 ÷ 1 workers (the target)."""
        for layout in workers.LAYOUTS:
            if layout.workers not in measured:
                continue
            ceiling, decide = measured[layout.workers]
            self.report.rows += [
                Row(
                    scenario=f"Workers, {layout.label}: ceiling, Health/Check, h2load",
                    offers=None,
                    throughput=ceiling["req_per_s"],
                    unit="req/s",
                    ratio=1.0,
                    non_ok=ceiling["non_ok"],
                    note=workers.cores_note(ceiling, layout, _saturation_note(ceiling)),
                ),
                Row(
                    scenario=f"Workers, {layout.label}: Decide throughput, h2load",
                    offers=size,
                    throughput=decide["req_per_s"],
                    unit="req/s",
                    ratio=decide["req_per_s"] / ceiling["req_per_s"] if ceiling["req_per_s"] else None,
                    non_ok=decide["non_ok"],
                    note=workers.cores_note(decide, layout, _saturation_note(decide)),
                ),
            ]
        if len(measured) == 2:
            (ceiling_one, decide_one), (ceiling_two, decide_two) = measured[1], measured[2]
            self.report.rows.append(
                workers.scaling_row(
                    decide_one["req_per_s"],
                    decide_two["req_per_s"],
                    non_ok=decide_one["non_ok"] + decide_two["non_ok"],
                    ceiling_one=ceiling_one["req_per_s"],
                    ceiling_two=ceiling_two["req_per_s"],
                )
            )

    # -- the REST API -------------------------------------------------------------

    def _server_log(self, label: str) -> Path:
        log = self.plan.results_dir / f"{self.report.started_at:%Y-%m-%d-%H%M%S}-server-{label}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        return log

    def _health_call(self, server: BenchServer) -> h2load.GrpcCall:
        return h2load.GrpcCall(
            f"http://{server.target}{HEALTH_PATH}", self._body("health", health_pb2.HealthCheckRequest())
        )

    def _decide_call(self, server: BenchServer, tenant: SyntheticTenant, name: str) -> h2load.GrpcCall:
        return h2load.GrpcCall(
            f"http://{server.target}{DECIDE_PATH}", self._body(name, tenant.decide_request()), tenant.api_key
        )

    def noisy(self) -> None:
        """A quiet tenant's Decide alone and under another's outcome bulks; a bulk after 1M stored outcomes."""
        quick = self.plan.quick
        flood = noisy.flood(self.scratch, calls=200 if quick else 1_000, flooders=1)
        history = noisy.history(self.scratch, total=100_000 if quick else 1_000_000, rounds=3 if quick else 10)
        self.report.phases.append({"phase": "noisy", "flood": flood, "history": history})
        alone, under = flood["quiet_alone"], flood["quiet_under_flood"]
        say(
            f"[noisy] quiet Decide p99 {alone['p99_ms']:.2f} ms alone, {under['p99_ms']:.2f} ms under bulks; "
            f"click bulk {history['before']['click_bulk_median_ms']:.0f} ms before, "
            f"{history['after']['click_bulk_median_ms']:.0f} ms after {history['stored_outcomes']:,} outcomes"
        )
        self.report.rows.append(
            Row(
                scenario="Quiet tenant's Decide, one at a time, alone",
                offers=noisy.QUIET_OFFERS,
                throughput=None,
                unit="",
                p50_ms=alone["p50_ms"],
                p99_ms=alone["p99_ms"],
            )
        )
        self.report.rows.append(
            Row(
                scenario="Quiet tenant's Decide while another sends RecordOutcomes bulks of 1,000 back to back",
                offers=noisy.QUIET_OFFERS,
                throughput=None,
                unit="",
                ratio=flood["p99_ratio"],
                p50_ms=under["p50_ms"],
                p99_ms=under["p99_ms"],
                target=f"p99 ≤ {noisy.FLOOD_P99_TARGET:g}× alone",
                met=flood["p99_ratio"] <= noisy.FLOOD_P99_TARGET,
            )
        )
        self.report.rows.append(
            Row(
                scenario=f"RecordOutcomes bulk of 1,000 clicks after {history['stored_outcomes']:,} stored outcomes "
                "vs none",
                offers=noisy.NOISY_OFFERS,
                throughput=None,
                unit="",
                ratio=history["click_ratio"],
                p50_ms=history["after"]["click_bulk_median_ms"],
                target=f"≤ {noisy.HISTORY_TARGET:g}× the bulk before",
                met=history["click_ratio"] <= noisy.HISTORY_TARGET,
                note="p50 is the median bulk after",
            )
        )

    def rest(self) -> None:
        """REST Decide and create-offer beside gRPC's and the gRPC ceiling, on one server with the listener on."""
        plan = self.plan
        size = SMALL
        log = self._server_log("rest")
        with BenchServer(self.scratch / "arbiter-rest.db", log, HTTP_ON) as server:
            say(
                f"[rest] server pid {server.pid} on core {SERVER_CORE}, gRPC {server.target}, "
                f"HTTP {server.http_address}"
            )
            tenant = self._load(server, size, name="bench-rest")
            ceiling_phase = self._throughput(server, "rest: grpc ceiling", self._health_call(server), None)
            ceiling: float = ceiling_phase["req_per_s"]
            decide_phase = self._throughput(
                server, "rest: grpc decide", self._decide_call(server, tenant, "decide-rest"), "Decide"
            )
            self._check_rest_decide(server, tenant)
            body = self.scratch / "decide-rest.json"
            body.write_text(json.dumps(tenant.decide_body()))
            rest_call = h2load.RestCall(f"{server.http_url}{REST_DECIDE_PATH}", body, tenant.api_key)
            rest_phase = self._throughput(server, "rest: rest decide", rest_call, None, settings=plan.h2.http1())
            creates = self._creates(server, tenant)
            self.report.phases.append(
                {"phase": "server", "offers": size, "scenario": "rest", "peak_rss_mb": server.peak_rss_mb()}
            )

        def ratio(rate: float) -> float | None:
            return rate / ceiling if ceiling else None

        grpc_decide: float = decide_phase["req_per_s"]
        rest_decide: float = rest_phase["req_per_s"]
        grpc_create, rest_create = creates["grpc"], creates["rest"]
        grown = (
            f"the catalogue grew from {size:,} to {creates['offers_after']:,} offers while creating, "
            "the protocols taking turns"
        )
        rows = [
            Row(
                scenario="REST run: ceiling, gRPC Health/Check, h2load (HTTP listener on)",
                offers=None,
                throughput=ceiling,
                unit="calls/s",
                ratio=1.0,
                non_ok=ceiling_phase["non_ok"],
                note=_saturation_note(ceiling_phase),
            ),
            Row(
                scenario="REST run: gRPC Decide, h2load",
                offers=size,
                throughput=grpc_decide,
                unit="calls/s",
                ratio=ratio(grpc_decide),
                non_ok=decide_phase["non_ok"],
                note=_saturation_note(decide_phase),
            ),
            Row(
                scenario=f"REST run: REST Decide (POST {REST_DECIDE_PATH}), h2load --h1",
                offers=size,
                throughput=rest_decide,
                unit="calls/s",
                ratio=ratio(rest_decide),
                non_ok=rest_phase["non_ok"],
                note=_join(
                    f"{rest_decide / grpc_decide:.2f}× gRPC Decide" if grpc_decide else "",
                    _saturation_note(rest_phase),
                ),
            ),
            Row(
                scenario="REST run: gRPC CreateOffer (unique names), bench/offerload.py",
                offers=size,
                throughput=grpc_create["calls_per_s"],
                unit="calls/s",
                ratio=ratio(grpc_create["calls_per_s"]),
                non_ok=grpc_create["non_ok"],
                note=_join(grown, _saturation_note(grpc_create)),
            ),
            Row(
                scenario="REST run: REST create offer (POST /api/v1/actions, unique names), bench/offerload.py",
                offers=size,
                throughput=rest_create["calls_per_s"],
                unit="calls/s",
                ratio=ratio(rest_create["calls_per_s"]),
                non_ok=rest_create["non_ok"],
                note=_join(
                    f"{rest_create['calls_per_s'] / grpc_create['calls_per_s']:.2f}× gRPC CreateOffer"
                    if grpc_create["calls_per_s"]
                    else "",
                    _saturation_note(rest_create),
                ),
            ),
        ]
        self.report.rows.extend(rows)
        self.report.method_notes.append(
            f"REST run: its own server with the HTTP listener on (`--http-address 127.0.0.1:0`) and the "
            f"{size:,}-offer tenant; REST Decide by h2load --h1 {' '.join(plan.h2.http1().args())} (the same "
            f"{plan.h2.in_flight} calls in flight as gRPC's -c{plan.h2.clients} -m{plan.h2.streams}, one per "
            "HTTP/1.1 connection, no pipelining), checked by h2load's 2xx count and one REST answer compared "
            "with gRPC's; CreateOffer by bench/offerload.py (realistic active offers, each with its own name, "
            f"{plan.h2.in_flight} calls in flight; gRPC over {plan.h2.clients} channels, REST over "
            f"{plan.h2.in_flight} keep-alive connections), {plan.create_warmup_s:g} s warm-up + "
            f"{plan.create_s:g} s measured per protocol in {plan.create_slices} slices each, the protocols "
            "taking turns (gRPC, REST, REST, gRPC, …) since creates slow down as the catalogue grows; created "
            "offers checked by status (OK / 201), distinct ids, the server's CreateOffer count (gRPC) and the "
            "tenant's offer count before and after."
        )

    def _check_rest_decide(self, server: BenchServer, tenant: SyntheticTenant) -> None:
        """One REST Decide and one gRPC Decide with the same body: a 200 with the same number of offers."""
        rest_ids: list[str] = []
        status = 0
        request = urllib.request.Request(
            f"{server.http_url}{REST_DECIDE_PATH}",
            data=json.dumps(tenant.decide_body()).encode(),
            headers={"Authorization": f"Bearer {tenant.api_key}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status = answer.status
                rest_ids = [offer["offerId"] for offer in json.load(answer).get("offers", [])]
        except urllib.error.HTTPError as exc:
            status = exc.code
        with grpc.insecure_channel(server.target) as channel:
            stub = decisions_pb2_grpc.DecisionServiceStub(channel)
            answer = stub.Decide(
                tenant.decide_request(), metadata=(("authorization", f"Bearer {tenant.api_key}"),), timeout=10
            )
        grpc_ids = [offer.offer_id for offer in answer.offers]
        self.report.phases.append(
            {"phase": "rest: decide answers", "rest_status": status, "rest_offers": rest_ids, "grpc_offers": grpc_ids}
        )
        if status != 200 or not rest_ids or len(rest_ids) != len(grpc_ids):
            problem = (
                f"rest decide: one REST Decide answered HTTP {status} with {len(rest_ids)} offers, "
                f"gRPC with {len(grpc_ids)}"
            )
            self.report.failures.append(problem)
            say(f"!!! {problem}")

    def _creates(self, server: BenchServer, tenant: SyntheticTenant) -> dict[str, Any]:
        """CreateOffer over gRPC and REST, taking turns in slices (bench/offerload.py); every create checked."""
        plan = self.plan
        command = [
            "taskset",
            "-c",
            h2load.LOAD_CORE,
            sys.executable,
            "-m",
            "bench.offerload",
            "--grpc-target",
            server.target,
            "--http-target",
            server.http_address,
            "--protocols",
            ",".join(CREATE_PROTOCOLS),
            "--api-key",
            tenant.api_key,
            "--duration",
            f"{plan.create_s:g}",
            "--slices",
            str(plan.create_slices),
            "--warmup",
            f"{plan.create_warmup_s:g}",
            "--concurrency",
            str(plan.h2.in_flight),
            "--channels",
            str(plan.h2.clients),
            # Names are unique per tenant: unique per run (and per protocol, which offerload adds).
            "--name-prefix",
            f"bench-{self.run_id}",
            "--server-pid",
            str(server.pid),
        ]
        name = "rest: create offers"
        offers_before = _offer_count(server, tenant)
        before = server.call_counts()
        timeout = (plan.create_warmup_s + plan.create_s) * len(CREATE_PROTOCOLS) + 180
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False)
        delta = counts_delta(before, server.call_counts())
        offers_after = _offer_count(server, tenant)
        if not done.stdout.strip():
            raise RuntimeError(f"{name} printed nothing (exit {done.returncode}):\n{done.stderr[-3000:]}")
        output: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        server_bad = self._check_non_ok(name, delta)
        results: dict[str, Any] = output["protocols"]
        for protocol, result in results.items():
            label = f"{name} over {protocol}"
            client_bad = result["non_ok"]
            if client_bad:
                self.report.failures.append(
                    f"{label}: answers other than {result['ok_code']}: {json.dumps(result['codes'])}"
                )
                say(f"!!! {label}: NON-OK ANSWERS {json.dumps(result['codes'])}")
            succeeded = result["calls"] - client_bad
            missing_ids = abs(succeeded - result["created_ids"])
            if missing_ids:
                self.report.failures.append(
                    f"{label}: {succeeded:,} successful creates but {result['created_ids']:,} distinct ids"
                )
            missed = 0
            if protocol == "grpc":
                ok = delta.get("CreateOffer", {}).get("OK", 0)
                missed = abs(result["calls"] - ok)
                if missed:
                    self.report.failures.append(
                        f"{label}: the generator made {result['calls']:,} calls, the server answered {ok:,} OK"
                    )
            result["non_ok"] = max(client_bad, server_bad, missed) + missing_ids
            say(
                f"[{label}] {result['calls_per_s']:,.0f} calls/s over {len(result['slice_rates'])} slices "
                f"(slices {', '.join(f'{r:,.0f}' for r in result['slice_rates'])}; p50 {result['p50_ms']:.1f} ms, "
                f"server CPU {result['server_cpu_util'] or 0:.0%}, generator CPU {result['client_cpu_util']:.0%}, "
                f"non-OK {result['non_ok']})"
            )
        sent = sum(result["calls"] for result in results.values())
        if offers_after - offers_before != sent:
            problem = (
                f"{name}: {sent:,} create calls, but the tenant's offers went from {offers_before:,} to "
                f"{offers_after:,}"
            )
            self.report.failures.append(problem)
            say(f"!!! {problem}")
        self.report.phases.append(
            {
                "phase": name,
                "command": shlex.join(command),
                "offers_before": offers_before,
                "offers_after": offers_after,
                "server_counts": delta,
                **output,
            }
        )
        return {**results, "offers_after": offers_after}

    # -- two server configurations side by side: http-idle, metrics-cost -------------

    def huge_request(self) -> None:
        """Health and a small Decide alone and beside large requests (bench/huge_request.py), on a server of its own."""
        say("huge-request: health and a small Decide, alone and beside large requests")
        self.report.rows.extend(huge_request.rows(huge_request.measure(self.plan.throughput_s, self.scratch)))
        self.report.method_notes.append(
            "huge-request: one server with 20 offers; a prober alternates Health/Check and a small Decide, "
            "one call at a time, alone and then while a second client sends Decides with attributes at the "
            "limits, over the value count, and over the request size, the last also as JSON over REST, "
            "and RecordOutcomes far over 1,000 items (bench/huge_request.py)."
        )

    def compare(self, comparison: Comparison) -> None:
        """gRPC Decide/empty on two server configurations: fresh pairs of servers, alternating A/B rounds."""
        plan = self.plan
        size = SMALL
        name = comparison.scenario
        subject, reference = comparison.subject, comparison.reference
        keys = (subject.key, reference.key)
        rounds: dict[str, list[tuple[float, float]]] = {key: [] for key in keys}
        bad = dict.fromkeys(keys, 0)
        commands: dict[str, list[str]] = {}
        for number in range(plan.ab_rounds):
            # A fresh pair every round: two processes of the same build differ by a few percent on
            # their own (hash seeds, memory layout), so the rounds sample that too.
            with contextlib.ExitStack() as stack:
                servers: dict[str, tuple[BenchServer, SyntheticTenant]] = {}
                for side in (subject, reference):
                    tag = f"{comparison.tag}-{side.key}-{number + 1}"
                    server = BenchServer(self.scratch / f"arbiter-{tag}.db", self._server_log(tag), side.args)
                    commands[side.key] = server.command
                    stack.enter_context(server)
                    say(f"[{name} {side.key} round {number + 1}] server pid {server.pid} on core {SERVER_CORE}")
                    servers[side.key] = (server, self._load(server, size, name=f"bench-{tag}", record=number == 0))
                    if server.http_enabled:
                        self._check_listener(server)
                for key in ab_order(number, keys):
                    server, tenant = servers[key]
                    tag = f"{name} {key} round {number + 1}"
                    ceiling = self._throughput(
                        server, f"{tag}: ceiling", self._health_call(server), None, seconds=plan.ab_s
                    )
                    decide = self._throughput(
                        server,
                        f"{tag}: decide",
                        self._decide_call(server, tenant, f"decide-{comparison.tag}-{key}"),
                        "Decide",
                        seconds=plan.ab_s,
                    )
                    bad[key] += ceiling["non_ok"] + decide["non_ok"]
                    rounds[key].append((ceiling["req_per_s"], decide["req_per_s"]))
        summaries = {key: ab_summary(rounds[key]) for key in keys}
        test, ref = summaries[subject.key], summaries[reference.key]
        diff = percent_difference(test["ratio"], ref["ratio"])
        ceiling_diff = percent_difference(test["ceiling"], ref["ceiling"])
        decide_diff = percent_difference(test["decide"], ref["decide"])
        self.report.phases.append(
            {
                "phase": f"{name} summary",
                **summaries,
                "ratio_difference_pct": diff,
                "ceiling_difference_pct": ceiling_diff,
                "decide_difference_pct": decide_diff,
                "non_ok": bad,
                "server_commands": {key: shlex.join(command) for key, command in commands.items()},
            }
        )
        say(
            f"[{name}] Decide/empty: {reference.short} {ref['ratio']:.3f}, {subject.short} {test['ratio']:.3f}: "
            f"{diff:+.1f} % (ceiling {ceiling_diff:+.1f} %, Decide {decide_diff:+.1f} %)"
        )
        n = plan.ab_rounds
        for side in (reference, subject):
            summary = summaries[side.key]
            spread = ", ".join(f"{r:.3f}" for r in summary["ratios"])
            self.report.rows += [
                Row(
                    scenario=f"{side.rows}: ceiling, gRPC Health/Check, h2load (median of {n} rounds)",
                    offers=None,
                    throughput=summary["ceiling"],
                    unit="calls/s",
                    ratio=1.0,
                    non_ok=bad[side.key],
                ),
                Row(
                    scenario=f"{side.rows}: gRPC Decide, h2load (median of {n} rounds)",
                    offers=size,
                    throughput=summary["decide"],
                    unit="calls/s",
                    ratio=summary["ratio"],
                    non_ok=bad[side.key],
                    note=f"Decide/empty per round {spread}",
                ),
            ]
        self.report.rows.append(
            Row(
                scenario=f"gRPC Decide/empty, {comparison.versus}: {diff:+.1f} %",
                offers=size,
                throughput=None,
                unit="",
                non_ok=sum(bad.values()),
                target=comparison.target,
                met=abs(diff) <= comparison.target_pct and not any(bad.values()),
                measured=f"{diff:+.1f} %",
                note=f"{comparison.versus_short}: ceiling {ceiling_diff:+.1f} %, Decide {decide_diff:+.1f} %",
            )
        )
        first, second = keys
        self.report.method_notes.append(
            f"{comparison.title}: {n} rounds, each on a fresh pair of servers with the {size:,}-offer tenant, "
            f"{comparison.setup}; per round ceiling then Decide (h2load, the throughput settings, {plan.ab_s:g} s "
            f"each) on each server, the order alternating ({first}, {second} / {second}, {first}); each side's "
            "ratio is the median of its per-round Decide/ceiling ratios (the JSON has every round, the means "
            "and the servers' command lines)."
        )

    def _check_listener(self, server: BenchServer) -> None:
        """The HTTP listener is really there: one GET that does not reach the core's loop."""
        try:
            with urllib.request.urlopen(f"{server.http_url}/api/v1/openapi.json", timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status != 200:
            raise RuntimeError(f"the idle HTTP listener at {server.http_address} answered {status}")


def decide_versus_embedded(distributed: float, embedded: float, offers: int, *, non_ok: int, source: str) -> Row:
    """The distributed target's row: distributed Decide/s over embedded Decide/s, each on one server core."""
    ratio = distributed / embedded if embedded else 0.0
    return Row(
        scenario=f"Distributed Decide ÷ embedded Decide (per server core): {ratio:.2f}×",
        offers=offers,
        throughput=None,
        unit="",
        non_ok=non_ok,
        target=f"≥ {DISTRIBUTED_DECIDE_TARGET:g}× embedded",
        met=ratio >= DISTRIBUTED_DECIDE_TARGET and non_ok == 0,
        measured=f"{ratio:.2f}× ({distributed:,.0f} vs {embedded:,.0f} req/s)",
        note=f"embedded Decide {embedded:,.0f} req/s, {source}",
    )


def postgres_bulk_row(bulk: dict[str, Any], batch: int, offers: int) -> Row:
    """The distributed outcome target's row, from bench/loadgen.py's result for RecordOutcomes."""
    rate: float = bulk["items_per_s"]
    return Row(
        scenario=f"Distributed: RecordOutcomes ({batch:,} per call) into Postgres, bench/loadgen.py",
        offers=offers,
        throughput=rate,
        unit="outcomes/s",
        non_ok=bulk["non_ok"],
        target=f"≥ {POSTGRES_BULK_TARGET:,.0f} outcomes/s",
        met=rate >= POSTGRES_BULK_TARGET and bulk["non_ok"] == 0,
        note=f"{bulk['calls_per_s']:.1f} calls/s, call p50 {bulk['p50_ms']:.0f} ms",
    )


def _interarrival(log_file: Path) -> dict[str, float]:
    """Percentiles of the gaps between request starts: evidence of how evenly h2load paced the calls."""
    starts = sorted(int(line.split("\t", 1)[0]) for line in log_file.read_text().splitlines() if line)
    gaps = [float(b - a) for a, b in itertools.pairwise(starts)]
    return {f"p{p}": h2load.percentile(gaps, p) for p in (10, 50, 90)}


def _offer_count(server: BenchServer, tenant: SyntheticTenant) -> int:
    """Every offer of the tenant, by listing them over gRPC."""
    with Client(server.target, api_key=tenant.api_key, timeout=60) as client:
        return sum(1 for _ in client.iter_offers(page_size=1_000))


def ab_order(number: int, pair: tuple[str, str]) -> tuple[str, str]:
    """A then B in even rounds, B then A in odd ones: a drift over the run weighs on both sides alike."""
    return pair if number % 2 == 0 else (pair[1], pair[0])


def ab_summary(rounds: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Of (ceiling, Decide) pairs: the medians of the ceilings, of the Decide rates and of the per-round ratios.

    Medians, because one server process can be several percent slower than
    its twin for no reason of ours, and a mean of a few rounds follows it.
    """
    ratios = [decide / ceiling if ceiling else 0.0 for ceiling, decide in rounds]
    return {
        "ceiling": statistics.median(c for c, _ in rounds) if rounds else 0.0,
        "decide": statistics.median(d for _, d in rounds) if rounds else 0.0,
        "ratio": statistics.median(ratios) if ratios else 0.0,
        "ratio_mean": _mean(ratios),
        "ratios": ratios,
        "rounds": [list(r) for r in rounds],
    }


def percent_difference(value: float, reference: float) -> float:
    """How far `value` is from `reference`, in percent of the reference (negative: below it)."""
    return (value / reference - 1.0) * 100.0 if reference else math.nan


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def _saturation_note(phase: dict[str, Any]) -> str:
    """A warning when the server's core was not busy all the time: then the load, not the server, was the limit."""
    util = phase.get("server_cpu_util")
    if util is None or util >= SATURATED:
        return ""
    return f"server CPU only {util:.0%} busy: the load generator or the machine limited this run"


def _pct(cpu: float, elapsed: float) -> str:
    return f"{cpu / elapsed:.0%}" if elapsed else "?"


def say(message: str) -> None:
    print(message, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=(
            "Arbiter's benchmark: empty-RPC ceiling, Decide throughput and latency, outcome throughput, "
            "the REST API beside gRPC, the cost of an idle HTTP listener and of metrics, the distributed "
            "backend (Postgres + Redis) beside the embedded one, and its servers with 1 and 2 workers."
        ),
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test; numbers are rough)")
    parser.add_argument("--duration", type=float, help="seconds per measured throughput run (default 10, quick 3)")
    parser.add_argument("--clients", type=int, default=4, help="h2load -c (default %(default)s)")
    parser.add_argument("--streams", type=int, default=16, help="h2load -m (default %(default)s)")
    parser.add_argument("--keep-temp", action="store_true", help="keep the databases and h2load logs")
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the results to bench/results (to be committed); else to the git-ignored bench/results/tmp",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed, not only on failures")
    parser.add_argument(
        "--policies",
        type=int,
        default=20,
        help="active contact policies of mixed types in the tenant (default %(default)s; 0 for none)",
    )
    parser.add_argument(
        "--no-computed-fields", action="store_true", help="categories without computed fields (for comparisons)"
    )
    return parser


def make_plan(args: argparse.Namespace) -> Plan:
    scenarios = frozenset(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = scenarios - set(SCENARIOS)
    if unknown or not scenarios:
        raise SystemExit(f"bench/run.py: unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    quick = bool(args.quick)
    duration = args.duration or (3.0 if quick else 10.0)
    return Plan(
        scenarios=scenarios,
        quick=quick,
        h2=h2load.H2loadSettings(clients=args.clients, streams=args.streams),
        throughput_s=duration,
        latency_s=duration,
        # At 10,000 offers too when there is time for it.
        latency_sizes=(SMALL,) if quick else (SMALL, LARGE),
        warmup_requests=500 if quick else 1_500,
        loadgen_warmup_s=1.0 if quick else 2.0,
        loadgen_s=duration if quick else 8.0,
        loadgen_channels=4,
        single_concurrency=64,
        bulk_concurrency=8,
        batch=1_000,
        customers=1_000 if quick else 5_000,
        policies=args.policies,
        computed_fields=not args.no_computed_fields,
        create_s=duration,
        create_slices=3 if quick else 5,
        create_warmup_s=0.5 if quick else 1.0,
        ab_rounds=2 if quick else 4,
        ab_s=duration / 2,
        results_dir=RESULTS_DIR if args.save else RESULTS_DIR / "tmp",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = make_plan(args)
    if (os.cpu_count() or 1) < 2:
        print("bench/run.py: needs at least 2 cores (server on core 0, load on core 1)", file=sys.stderr)
        return 2
    # This process (catalogue loading, SIGUSR1 bookkeeping) and every child
    # it starts without taskset stay off the server's core.
    os.sched_setaffinity(0, {int(h2load.LOAD_CORE)})
    h2load_exe = None
    if plan.needs_h2load:
        try:
            h2load_exe = h2load.ensure_h2load()
        except h2load.H2loadError as exc:
            print(f"bench/run.py: {exc}", file=sys.stderr)
            return 2
    started = datetime.now(UTC)
    command = shlex.join([".venv/bin/python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])])
    report = Report(started_at=started, command=command, settings=plan.settings())
    say(f"Arbiter benchmark: {report.settings['scenarios']} on {_machine_line()}")
    clock = time.monotonic()
    other_load = machine_load.OtherLoad()
    scratch = Path(tempfile.mkdtemp(prefix="arbiter-bench-"))
    try:
        run = Run(plan, report, scratch, h2load_exe)
        for size in plan.sizes():
            _guard(report, f"n={size}", functools.partial(run.catalogue, size))
        if "distributed" in plan.scenarios:
            _guard(report, "distributed", run.distributed)
        if "workers" in plan.scenarios:
            _guard(report, "workers", run.workers)
        if "rest" in plan.scenarios:
            _guard(report, "rest", run.rest)
        if "noisy" in plan.scenarios:
            _guard(report, "noisy", run.noisy)
        for comparison in (HTTP_IDLE, METRICS_COST):
            if comparison.scenario in plan.scenarios:
                _guard(report, comparison.scenario, functools.partial(run.compare, comparison))
        if "huge-request" in plan.scenarios:
            _guard(report, "huge-request", run.huge_request)
    finally:
        if args.keep_temp:
            say(f"scratch files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    report.finished_at = datetime.now(UTC)
    report.settings["elapsed_s"] = round(time.monotonic() - clock, 1)
    report.settings["other_processes_cores"] = round(other_load.cores(), 2)
    noise = machine_load.warning(report.settings["other_processes_cores"])
    if noise is not None:
        report.warnings.append(noise)
    raw, latest = write(report, plan.results_dir)
    print()
    print(table(report.rows))
    print()
    for row in report.missed():
        say(f"target missed: {row.scenario} (n={row.offers}): reached {reached(row)}, target {row.target}")
    if report.failures:
        say("")
        say("!!! FAILED CALLS OR COUNT MISMATCHES — the numbers above are not valid:")
        for failure in report.failures:
            say(f"!!!   {failure}")
    for warning in report.warnings:
        say(f"WARNING: {warning}")
    say(f"\nwrote {raw.relative_to(REPO)} and {latest.relative_to(REPO)} in {report.settings['elapsed_s']:.0f} s")
    return exit_code(report, strict=args.strict)


def exit_code(report: Report, *, strict: bool) -> int:
    """1 when a call failed or a count did not match; a missed target too, but only with --strict."""
    if not report.ok:
        return 1
    return 1 if strict and report.missed() else 0


def _guard(report: Report, name: str, step: Callable[[], None]) -> None:
    """Run one server's phases; a crash there is reported and fails the run, the rest still runs."""
    try:
        step()
    except Exception as exc:
        report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        say(f"!!! {name} failed: {type(exc).__name__}: {exc}")


def _machine_line() -> str:
    info = machine()
    return f"{info['cpu']}, {info['cores']} cores"
