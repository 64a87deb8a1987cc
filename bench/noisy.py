"""Noisy neighbours: a quiet tenant's Decide while another tenant floods outcome bulks, and a bulk's cost with history.

`.venv/bin/python bench/noisy.py [--calls 400] [--history 1000000]`

1. flood   one server, two tenants: the quiet one's Decide, one call at a
           time, alone and then while the noisy one sends RecordOutcomes
           bulks of 1,000 back to back (impressions, then clicks on them,
           for the same 1,000 customers) from `--flooders` processes
           (default 1). Target: p99 under the flood within 2x of p99 alone.
2. history the same bulks on a fresh database, then after `--history`
           outcomes are stored for those customers and offers. The history is
           written straight into SQLite as the server writes it (outcomes,
           ledger, model counts), the matching state dropped with its
           migration's record, so the next start builds it as an upgrade
           would. Target: a bulk after the history within 20 % of one before.

The server runs on core 0 (bench/server_process.py), this process on core 1.
Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.queues
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root goes on the path, as bench/run.py does
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from arbiter.client import Client, outcome
from arbiter.v1 import decisions_pb2
from bench.h2load import LOAD_CORE, percentile
from bench.server_process import BenchServer

CUSTOMERS = 1_000
NOISY_OFFERS = 5
QUIET_OFFERS = 20
BULK = 1_000
PREPARED_ROUNDS = 40  # impression + click bulks each flooder builds before the flood: far more than it needs
DAY_US = 86_400_000_000
FLOOD_P99_TARGET = 2.0  # quiet p99 under the flood within 2x of alone
HISTORY_TARGET = 1.2  # a bulk after the history within 20 % of one before
SERVER_ARGS = ("--insecure-no-auth",)


def _offers(client: Client, count: int, model: str) -> list[str]:
    body: dict[str, Any] = {"status": "active"}
    if model:
        body["qualification"] = {"modelReference": model}
    return [client.create_offer({**body, "name": f"offer {i} {uuid.uuid4().hex[:6]}"}).id for i in range(count)]


def _bulk(client: Client, offer_id: str, kind: str) -> float:
    """One RecordOutcomes of 1,000 `kind` outcomes, one per customer, at server time; its latency in ms."""
    run = uuid.uuid4().hex[:8]
    items = [outcome(f"c-{i}", offer_id, kind, f"{run}-{i}") for i in range(BULK)]
    started = time.perf_counter()
    results = client.record_outcomes(items, timeout=300)
    elapsed = (time.perf_counter() - started) * 1000
    assert len(results) == BULK
    return elapsed


def _quiet_decides(client: Client, calls: int) -> list[float]:
    latencies = []
    for i in range(calls):
        started = time.perf_counter()
        client.decide(f"quiet-{i % 50}", limit=3, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values, default=0.0), 2),
    }


def flood(scratch: Path, calls: int, flooders: int) -> dict[str, Any]:
    with (
        BenchServer(scratch / "flood.db", scratch / "flood.log", SERVER_ARGS) as server,
        Client(server.target, tenant="quiet") as quiet,
        Client(server.target, tenant="noisy") as noisy,
    ):
        _offers(quiet, QUIET_OFFERS, "")
        noisy_offers = _offers(noisy, NOISY_OFFERS, "m-noisy")
        _quiet_decides(quiet, 50)  # warm the channel and the caches
        alone = _quiet_decides(quiet, calls)
        # The flood comes from processes of its own: in this one, building 1,000-outcome requests would
        # take the GIL from the quiet client and its latencies would measure that instead of the server.
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        started = context.Barrier(flooders + 1)
        times: multiprocessing.queues.Queue[list[float]] = context.Queue()
        processes = [
            context.Process(target=_flooder, args=(server.target, noisy_offers, n, flooders, stop, started, times))
            for n in range(flooders)
        ]
        for process in processes:
            process.start()
        started.wait(120)  # each flooder has sent a bulk: the flood is under way
        under_flood = _quiet_decides(quiet, calls)
        stop.set()
        bulks = [ms for _ in processes for ms in times.get(timeout=600)]
        for process in processes:
            process.join(60)
    alone_s, flood_s = _summary(alone), _summary(under_flood)
    return {
        "quiet_alone": alone_s,
        "quiet_under_flood": flood_s,
        "p99_ratio": round(flood_s["p99_ms"] / alone_s["p99_ms"], 2),
        "p99_target": f"within {FLOOD_P99_TARGET:g}x",
        "flood_bulks": _summary(bulks),
    }


def _flooder(
    target: str,
    offers: list[str],
    offset: int,
    flooders: int,
    stop: Any,
    started: Any,
    times: multiprocessing.queues.Queue[list[float]],
) -> None:
    """One flooding process: impression and click bulks until told to stop; sends back their latencies.

    The requests are built and serialised before the flood starts, so that
    sending them costs this process (on the quiet client's core) next to no
    CPU while the quiet client is timed.
    """
    payloads = []
    for n in range(PREPARED_ROUNDS):
        offer_id = offers[(offset + n * flooders) % len(offers)]
        for kind in ("impression", "click"):
            run = uuid.uuid4().hex[:8]
            items = [outcome(f"c-{i}", offer_id, kind, f"{run}-{i}") for i in range(BULK)]
            payloads.append(decisions_pb2.RecordOutcomesRequest(outcomes=items).SerializeToString())
    bulks: list[float] = []
    try:
        with grpc.insecure_channel(target) as channel:
            send = channel.unary_unary("/arbiter.v1.DecisionService/RecordOutcomes")  # bytes in, bytes out
            for n, payload in enumerate(payloads):
                if stop.is_set():
                    break
                began = time.perf_counter()
                answer = send(payload, timeout=300, metadata=(("x-tenant-id", "noisy"),))
                bulks.append((time.perf_counter() - began) * 1000)
                assert len(decisions_pb2.RecordOutcomesResponse.FromString(answer).results) == BULK
                if n == 1:
                    started.wait(120)  # an impression and a click bulk went through: the flood is under way
    finally:
        times.put(bulks)  # the caller waits for it, even after a failure


def _bulk_rounds(server: BenchServer, offers: list[str], rounds: int) -> dict[str, Any]:
    impressions: list[float] = []
    clicks: list[float] = []
    with Client(server.target, tenant="noisy") as client:
        for r in range(rounds):
            offer_id = offers[r % len(offers)]
            impressions.append(_bulk(client, offer_id, "impression"))
            clicks.append(_bulk(client, offer_id, "click"))
    return {
        "impression_bulk_median_ms": round(statistics.median(impressions), 1),
        "click_bulk_median_ms": round(statistics.median(clicks), 1),
        "impression_bulks_ms": [round(v, 1) for v in impressions],
        "click_bulks_ms": [round(v, 1) for v in clicks],
    }


def seed_history(db: Path, offers: list[str], total: int) -> float:
    """`total` past outcomes of the noisy tenant (impression then click, per customer and offer), as the server
    writes them; the matching state is dropped with its migration's record. Returns seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(db)
    now_us = int(time.time() * 1_000_000)
    pairs = [(f"c-{c}", offer) for c in range(CUSTOMERS) for offer in offers]
    per_pair = max(2, total // len(pairs)) // 2 * 2
    first_us = now_us - 300 * DAY_US  # all before the bulks to come, so those arrive in event order
    step_us = (now_us - DAY_US - first_us) // per_pair

    def rows() -> Any:
        seq = 0
        for k in range(per_pair):
            occurred = first_us + k * step_us
            kind = 1 if k % 2 == 0 else 2  # impression, then the click on it
            for customer, offer in pairs:
                seq += 1
                yield (f"out_{seq:016x}", "noisy", f"seed-{seq}", customer, offer, kind, "", "", occurred, occurred)

    with conn:
        conn.executemany(
            "INSERT INTO outcomes (id, tenant, idempotency_key, customer_id, offer_id, type, decision_id, channel, "
            "occurred_us, recorded_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
        # The ledger and the model counts the server would have kept (tenant time zone UTC, no cost per action).
        conn.execute(
            "INSERT INTO offer_daily (tenant, offer_id, day, impressions, spend_micros) "
            "SELECT tenant, offer_id, occurred_us / ?, COUNT(*), 0 FROM outcomes "
            "WHERE tenant = 'noisy' AND type = 1 GROUP BY offer_id, occurred_us / ? "
            "ON CONFLICT (tenant, day, offer_id) DO UPDATE SET impressions = impressions + excluded.impressions",
            [DAY_US, DAY_US],
        )
        half = per_pair // 2 * CUSTOMERS  # every click follows its own impression: all of them match
        conn.executemany(
            "INSERT INTO model_stats (tenant, model_ref, offer_id, trials, positives) "
            "VALUES ('noisy', 'm-noisy', ?, ?, ?) "
            "ON CONFLICT (tenant, model_ref, offer_id) DO UPDATE SET trials = trials + excluded.trials, "
            "positives = positives + excluded.positives",
            [(offer, half, half) for offer in offers],
        )
        # As a database from before the matching state: the next start's migration builds it from the outcomes.
        conn.execute("DROP TABLE IF EXISTS outcome_matching")  # IF EXISTS: an older server (to compare) has none
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_outcome_matching'")
    conn.close()
    return time.perf_counter() - started


def history(scratch: Path, total: int, rounds: int) -> dict[str, Any]:
    db = scratch / "history.db"
    with BenchServer(db, scratch / "history-0.log", SERVER_ARGS) as server:
        with Client(server.target, tenant="noisy") as client:
            offers = _offers(client, NOISY_OFFERS, "m-noisy")
        before = _bulk_rounds(server, offers, rounds)
    seeded_s = seed_history(db, offers, total)
    stored = sqlite3.connect(db).execute("SELECT COUNT(*) FROM outcomes").fetchone()[0]
    started = time.perf_counter()
    with BenchServer(db, scratch / "history-1.log", SERVER_ARGS) as server:
        start_s = time.perf_counter() - started
        after = _bulk_rounds(server, offers, rounds)
    return {
        "stored_outcomes": stored,
        "seed_s": round(seeded_s, 1),
        "start_with_migration_s": round(start_s, 1),
        "before": before,
        "after": after,
        "click_ratio": round(after["click_bulk_median_ms"] / before["click_bulk_median_ms"], 2),
        "impression_ratio": round(after["impression_bulk_median_ms"] / before["impression_bulk_median_ms"], 2),
        "ratio_target": f"within {HISTORY_TARGET:g}",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="quiet Decides per phase")
    parser.add_argument("--flooders", type=int, default=1, help="processes sending bulks back to back")
    parser.add_argument("--history", type=int, default=1_000_000, help="outcomes stored before the second phase")
    parser.add_argument("--rounds", type=int, default=5, help="impression + click bulks per history phase")
    parser.add_argument("--only", choices=("flood", "history"), help="run one part")
    args = parser.parse_args(argv)
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CORE)})  # off the server's core
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_average": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="arbiter-noisy-") as scratch:
        if args.only in (None, "flood"):
            results["flood"] = flood(Path(scratch), args.calls, args.flooders)
        if args.only in (None, "history"):
            results["history"] = history(Path(scratch), args.history, args.rounds)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
