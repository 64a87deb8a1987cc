"""The workers scenario's measurements: Decide with `--workers 1` and `2`, and how fast servers follow each other.

Scaling. One throwaway Postgres + Redis (bench/distributed.py) and the
1,000-offer tenant of decide-1k; a server with `--workers 1`, then one with
`--workers 2`, on that same database. Each gets the empty-RPC ceiling
(Health/Check) and Decide by h2load. A 2-core machine cannot keep the
2-worker server on core 0 alone, so each configuration says where its
processes may run (`Layout`):

- 1 worker: the server, Postgres and Redis on core 0, h2load on core 1 (as
  the `distributed` scenario);
- 2 workers: the supervisor, both workers, Postgres, Redis and h2load all
  share cores 0 and 1.

So the 2-worker configuration has twice the cores but also carries the load
generator: the ratio 2 ÷ 1 workers on this machine is not the gain of a
second core for the server alone.

h2load runs as decide-1k runs it (same calls in flight, a warm-up of a fixed
number of calls first) with two differences, both for the workers. It opens
at least `MIN_CONNECTIONS` connections (the same number of calls in flight,
fewer streams each): SO_REUSEPORT spreads connections, not calls, over the
workers, so a few connections could all land on one. And the measured part
is timed (`-D`), not a fixed number of calls: h2load gives every connection
the same share of a fixed number, so the worker that got fewer connections
would finish early and the end of the run would be measured on one worker.
A timed run stops with calls in flight, so its check is a range: the
server's OK count grows by at least the calls h2load saw answered and, with
the calls it cancelled at the end (CANCELLED, if the server saw them), by at
most the calls it started; no other status may appear. Each worker's CPU
time (/proc/PID/stat of the supervisor's children) and calls are read
around every phase: a worker that took no real part is a warning.

Propagation. Two separate servers A and B (one process each) on the same
database and Redis: `writes` UpdateOffers on A, one at a time, each
followed by GetOffer polls on B (which answers from its in-memory view)
until B shows the change; the delay runs from A's answer to B's first answer
with the change. Then `count` keys made by the keys CLI, each used on B,
revoked on A through the API (RevokeApiKey), and polled on B until B
refuses it (UNAUTHENTICATED).
"""

from __future__ import annotations

import math
import resource
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from arbiter.client import Client, UnauthenticatedError
from arbiter.v1 import offers_pb2
from bench import h2load
from bench.report import Row
from bench.server_process import (
    SERVER_CORE,
    BenchServer,
    CallCounts,
    add_counts,
    counts_delta,
    process_cpu_seconds,
)

MIN_CONNECTIONS = 16  # h2load connections in the workers runs: enough that the kernel gives each worker some
SCALING_TARGET = 1.3  # Decide/s with 2 workers ≥ 1.3 × with 1 worker
PROPAGATION_WRITES = 200
PROPAGATION_TARGET_S = 1.0  # p99 of write on A → seen on B
REVOCATIONS = 20
POLL_INTERVAL_S = 0.001  # between two polls of B: a millisecond of resolution, and B's core not flooded
POLL_TIMEOUT_S = 10.0  # a change B has not shown after this long counts as lost
SATURATED_SHARE = 0.9  # of the cores shared by everything, busy for a run to have saturated them
BUSY_SHARE = 0.1  # a worker using less than this share of a core during a throughput run did not take load
ALLOWED_CANCELLED = "CANCELLED"  # what a timed h2load run's last calls may get when it closes its connections


@dataclass(frozen=True)
class Layout:
    """Where one configuration's processes may run."""

    workers: int
    server_cores: str  # taskset list of the server (the supervisor and its workers)
    services_cores: frozenset[int]  # Postgres and Redis
    load_cores: str  # taskset list of h2load
    label: str  # how the rows name it

    @property
    def cores_for_server(self) -> int:
        """How many cores the server side may use (for how busy it was)."""
        return len(self.server_cores.split(","))


LAYOUTS = (
    Layout(
        workers=1,
        server_cores=SERVER_CORE,
        services_cores=frozenset({int(SERVER_CORE)}),
        load_cores=h2load.LOAD_CORE,
        label="1 worker (server, Postgres, Redis on core 0; h2load on core 1)",
    ),
    Layout(
        workers=2,
        server_cores=f"{SERVER_CORE},{h2load.LOAD_CORE}",
        services_cores=frozenset({int(SERVER_CORE), int(h2load.LOAD_CORE)}),
        load_cores=f"{SERVER_CORE},{h2load.LOAD_CORE}",
        label="2 workers (workers, Postgres, Redis and h2load all share cores 0–1)",
    ),
)


def h2load_settings(base: h2load.H2loadSettings) -> h2load.H2loadSettings:
    """The throughput settings' calls in flight over at least MIN_CONNECTIONS connections (fewer streams each)."""
    clients = max(base.clients, MIN_CONNECTIONS)
    return h2load.H2loadSettings(clients=clients, streams=max(1, math.ceil(base.in_flight / clients)))


def h2load_command(
    executable: str,
    call: h2load.Call,
    settings: h2load.H2loadSettings,
    cores: str,
    *,
    requests: int | None = None,
    seconds: float | None = None,
) -> list[str]:
    """h2load on `cores`: exactly `requests` calls, or for `seconds` (timed: every connection busy to the end)."""
    if (requests is None) == (seconds is None):
        raise ValueError("give requests or seconds")
    amount = ["-n", str(max(requests, settings.clients))] if requests is not None else ["-D", f"{seconds:g}"]
    return [
        "taskset",
        "-c",
        cores,
        executable,
        *call.protocol_args(),
        *settings.args(),
        *amount,
        "-d",
        str(call.body_file),
        *call.headers(),
        call.url,
    ]


def run_h2load(command: list[str], timeout: float) -> tuple[h2load.H2loadResult, float]:
    """Run an h2load command; its result and the CPU seconds it used (from this process's reaped children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise h2load.H2loadError(f"h2load did not finish within {timeout:.0f}s: {' '.join(command)}") from exc
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise h2load.H2loadError(f"h2load exited {done.returncode}: {' '.join(command)}\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return h2load.parse_output(command, done.stdout), cpu


def timed_run_problems(
    name: str, method: str | None, warm: h2load.H2loadResult, main: h2load.H2loadResult, delta: CallCounts
) -> tuple[int, list[str]]:
    """Calls not confirmed OK in a fixed-count warm-up followed by a timed run, and what was wrong.

    h2load: every call it saw answered must be a 2xx. The server (when it
    counts `method`): OK grew by at least the calls h2load saw answered; OK
    and CANCELLED together by at most the calls it started; CANCELLED only
    for calls the timed run left in flight; no other status anywhere.
    """
    problems: list[str] = []
    bad = warm.problems + main.problems
    if bad:
        problems.append(f"{name}: {bad} requests were not HTTP 2xx answers (h2load)")
    cut_off = main.started - main.done  # in flight when the timed run stopped
    for other, codes in delta.items():
        for code, count in codes.items():
            if code == "OK" or (other == method and code == ALLOWED_CANCELLED and count <= cut_off):
                continue
            problems.append(f"{name}: the server answered {other} {code} {count:,} times")
            bad += count
    if method is not None:
        codes = delta.get(method, {})
        ok, cancelled = codes.get("OK", 0), codes.get(ALLOWED_CANCELLED, 0)
        answered, started = warm.total + main.done, warm.total + main.started
        if ok < answered:
            problems.append(f"{name}: h2load saw {answered:,} {method} calls answered, the server {ok:,} OK")
            bad = max(bad, answered - ok)
        if ok + cancelled > started:
            problems.append(f"{name}: h2load started {started:,} {method} calls, the server answered {ok:,} OK")
            bad = max(bad, ok + cancelled - started)
    return bad, problems


def idle_workers(cpu_by_worker: Mapping[int, float], elapsed: float, share: float = BUSY_SHARE) -> list[int]:
    """The workers that used less than `share` of a core over `elapsed` seconds: they took no real load."""
    return sorted(pid for pid, cpu in cpu_by_worker.items() if elapsed <= 0 or cpu / elapsed < share)


def calls_by_worker(before: Mapping[int, CallCounts], after: Mapping[int, CallCounts], method: str) -> dict[int, int]:
    """Each worker's OK answers to `method` between two per-worker snapshots."""
    return {
        pid: counts_delta(before.get(pid, {}), counts).get(method, {}).get("OK", 0) for pid, counts in after.items()
    }


def _cpu_by_pid(pids: Sequence[int]) -> dict[int, float]:
    found = {}
    for pid in pids:
        try:
            found[pid] = process_cpu_seconds(pid)
        except OSError:  # gone: the phase's check of the workers says so
            continue
    return found


def throughput(
    server: BenchServer,
    executable: str,
    call: h2load.Call,
    method: str | None,
    settings: h2load.H2loadSettings,
    layout: Layout,
    *,
    name: str,
    warmup_requests: int,
    seconds: float,
) -> dict[str, Any]:
    """A fixed-count warm-up, then a timed h2load run on `layout`'s load cores; checked, with each worker's share."""
    before = server.worker_call_counts()
    warm, _ = run_h2load(
        h2load_command(executable, call, settings, layout.load_cores, requests=warmup_requests), timeout=120
    )
    workers = sorted(before)
    measured_from = server.worker_call_counts() if method else before  # each worker's calls: the timed run's
    cpu_before, total_before = _cpu_by_pid(workers), server.cpu_seconds()
    main, h2load_cpu = run_h2load(
        h2load_command(executable, call, settings, layout.load_cores, seconds=seconds), timeout=seconds * 4 + 60
    )
    cpu_after, total_after = _cpu_by_pid(workers), server.cpu_seconds()
    after = server.worker_call_counts()
    delta = counts_delta(add_counts(before.values()), add_counts(after.values()))
    bad, problems = timed_run_problems(name, method, warm, main, delta)
    if sorted(after) != workers:
        problems.append(f"{name}: the workers changed during the run ({workers} → {sorted(after)}): one died")
        bad = max(bad, 1)
    worker_cpu = {pid: cpu_after.get(pid, 0.0) - cpu_before.get(pid, 0.0) for pid in workers}
    elapsed = main.elapsed_s
    return {
        "phase": name,
        "workers": layout.workers,
        "layout": layout.label,
        "command": " ".join(main.command),
        "warmup_requests": warm.total,
        "warmup_req_per_s": warm.req_per_s,
        "requests": main.done,
        "started": main.started,
        "elapsed_s": elapsed,
        "req_per_s": main.req_per_s,
        # Server (supervisor and workers), Postgres and Redis, in cores busy on average over the timed run.
        "server_cores_busy": (total_after - total_before) / elapsed if elapsed else None,
        "server_cpu_util": (total_after - total_before) / elapsed / layout.cores_for_server if elapsed else None,
        "h2load_cores_busy": h2load_cpu / elapsed if elapsed else None,
        "worker_cpu_s": {str(pid): cpu for pid, cpu in worker_cpu.items()},
        "worker_calls": (
            {str(pid): n for pid, n in calls_by_worker(measured_from, after, method).items()} if method else None
        ),
        "idle_workers": idle_workers(worker_cpu, elapsed),
        "server_counts": delta,
        "non_ok": bad,
        "problems": problems,
        "h2load_output": main.output,
    }


# -- propagation between two servers ----------------------------------------------


@dataclass
class Delays:
    """How long B took to show each change made on A (seconds), and what the polling did."""

    seconds: list[float] = field(default_factory=list)
    lost: int = 0  # changes B had not shown after POLL_TIMEOUT_S
    ok_polls: int = 0  # B's OK answers to the polls (and to first uses of keys)
    refused: int = 0  # B's UNAUTHENTICATED answers

    def summary(self) -> dict[str, float]:
        ms = [s * 1000 for s in self.seconds]
        return {
            "count": len(ms),
            "lost": self.lost,
            "p50_ms": h2load.percentile(ms, 50),
            "p99_ms": h2load.percentile(ms, 99),
            "max_ms": max(ms, default=0.0),
        }


def propagation(
    a_target: str,
    b_target: str,
    api_key: str,
    offer_ids: Sequence[str],
    writes: int,
    *,
    timeout: float = POLL_TIMEOUT_S,
    clock: Callable[[], float] = time.perf_counter,
) -> Delays:
    """`writes` UpdateOffers on A one at a time (a new short description each), each followed by GetOffer polls
    on B until B answers with it: the delay from A's answer to B's first answer showing it."""
    run = uuid.uuid4().hex[:8]  # a text no earlier run wrote: an update that changes nothing is no write
    delays = Delays()
    with Client(a_target, api_key=api_key, timeout=30) as a, Client(b_target, api_key=api_key, timeout=10) as b:
        for i in range(writes):
            offer_id = offer_ids[i % len(offer_ids)]
            text = f"propagation {run} {i}"
            a.update_offer(offers_pb2.Offer(id=offer_id, short_desc=text), ["short_desc"])
            acknowledged = clock()
            while True:
                shown = b.get_offer(offer_id).short_desc == text
                answered = clock()
                delays.ok_polls += 1
                if shown:
                    delays.seconds.append(answered - acknowledged)
                    break
                if answered - acknowledged > timeout:
                    delays.lost += 1
                    break
                time.sleep(POLL_INTERVAL_S)
    return delays


def revocations(
    a_target: str,
    b_target: str,
    admin_key: str,
    offer_id: str,
    new_key: Callable[[str], tuple[str, str]],
    count: int,
    *,
    timeout: float = POLL_TIMEOUT_S,
    clock: Callable[[], float] = time.perf_counter,
) -> Delays:
    """`count` times: a key from `new_key(name)` (secret, id) used on B, revoked on A through the API, and B
    polled with it until it refuses it: the delay from A's answer to B's first UNAUTHENTICATED."""
    run = uuid.uuid4().hex[:8]
    delays = Delays()
    with Client(a_target, api_key=admin_key, timeout=30) as a:
        for i in range(count):
            secret, key_id = new_key(f"bench-revocation-{run}-{i}")
            with Client(b_target, api_key=secret, timeout=10) as b:
                b.get_offer(offer_id)  # B honours the new key (a key it has not seen is looked up)
                delays.ok_polls += 1
                a.revoke_api_key(key_id)
                acknowledged = clock()
                while True:
                    try:
                        b.get_offer(offer_id)
                    except UnauthenticatedError:
                        delays.refused += 1
                        delays.seconds.append(clock() - acknowledged)
                        break
                    delays.ok_polls += 1
                    if clock() - acknowledged > timeout:
                        delays.lost += 1
                        break
                    time.sleep(POLL_INTERVAL_S)
    return delays


def expected_counts(writes: int, keys: int, delays: Delays, key_delays: Delays) -> tuple[CallCounts, CallCounts]:
    """What A and B must have answered over the propagation part: every call the client made, nothing else."""
    on_a: CallCounts = {"UpdateOffer": {"OK": writes}, "RevokeApiKey": {"OK": keys}}
    on_b: CallCounts = {"GetOffer": {"OK": delays.ok_polls + key_delays.ok_polls}}
    if key_delays.refused:
        on_b["GetOffer"]["UNAUTHENTICATED"] = key_delays.refused
    return on_a, on_b


def count_mismatches(name: str, expected: CallCounts, delta: CallCounts) -> list[str]:
    """Each method and code where a server's answers differ from the calls made."""
    problems = []
    for method in sorted(set(expected) | set(delta)):
        want, got = expected.get(method, {}), delta.get(method, {})
        for code in sorted(set(want) | set(got)):
            if want.get(code, 0) != got.get(code, 0):
                problems.append(
                    f"{name}: {method} {code}: the client made {want.get(code, 0):,} such calls, "
                    f"the server answered {got.get(code, 0):,}"
                )
    return problems


# -- the report's rows ----------------------------------------------------------


def scaling_row(one: float, two: float, *, non_ok: int, ceiling_one: float, ceiling_two: float) -> Row:
    """The scaling target's row: Decide/s with 2 workers over Decide/s with 1."""
    ratio = two / one if one else 0.0
    ceiling_ratio = f"{ceiling_two / ceiling_one:.2f}×" if ceiling_one else "—"
    return Row(
        scenario=f"Decide, 2 workers ÷ 1 worker: {ratio:.2f}× (2 workers share both cores with h2load)",
        offers=1_000,
        throughput=None,
        unit="",
        non_ok=non_ok,
        target=f"≥ {SCALING_TARGET:g}× 1 worker",
        met=ratio >= SCALING_TARGET and non_ok == 0,
        measured=f"{ratio:.2f}× ({two:,.0f} vs {one:,.0f} req/s)",
        note=f"empty-RPC ceiling 2 ÷ 1 workers {ceiling_ratio} ({ceiling_two:,.0f} vs {ceiling_one:,.0f} req/s)",
    )


def cores_note(phase: Mapping[str, Any], layout: Layout, one_core_note: str) -> str:
    """A throughput row's note on where the CPU went: one core's saturation note (1 worker), or, when everything
    shares the cores (2 workers), what the server side and h2load used of them, flagged when they left some idle."""
    if layout.cores_for_server == 1:
        return one_core_note
    server, load = phase.get("server_cores_busy") or 0.0, phase.get("h2load_cores_busy") or 0.0
    cores = layout.cores_for_server
    note = f"server, Postgres and Redis used {server:.2f} cores, h2load {load:.2f}, of {cores} shared"
    if server + load < SATURATED_SHARE * cores:
        note += ": the cores were not saturated (the machine or the load limited this run)"
    return note


def propagation_row(delays: Delays, *, non_ok: int) -> Row:
    summary = delays.summary()
    p99 = summary["p99_ms"]
    lost = f"; {delays.lost} changes not shown within {POLL_TIMEOUT_S:g} s" if delays.lost else ""
    writes = len(delays.seconds) + delays.lost
    return Row(
        scenario=f"Propagation: UpdateOffer on server A → GetOffer on server B shows it ({writes} writes)",
        offers=1_000,
        throughput=None,
        unit="",
        p50_ms=summary["p50_ms"],
        p99_ms=p99,
        non_ok=non_ok + delays.lost,
        target=f"p99 ≤ {PROPAGATION_TARGET_S:g} s",
        met=p99 <= PROPAGATION_TARGET_S * 1000 and non_ok == 0 and delays.lost == 0,
        note=f"max {summary['max_ms']:,.1f} ms{lost}",
    )


def revocation_row(delays: Delays, *, non_ok: int) -> Row:
    summary = delays.summary()
    lost = f"; {delays.lost} keys not refused within {POLL_TIMEOUT_S:g} s" if delays.lost else ""
    keys = len(delays.seconds) + delays.lost
    return Row(
        scenario=f"Key revocation: RevokeApiKey on server A → server B refuses the key ({keys} keys)",
        offers=None,
        throughput=None,
        unit="",
        p50_ms=summary["p50_ms"],
        p99_ms=None,
        non_ok=non_ok + delays.lost,
        note=f"max {summary['max_ms']:,.1f} ms{lost}",
    )
