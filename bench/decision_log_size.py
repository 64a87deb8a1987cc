"""How many bytes the decision log stores per kept decision, by catalogue size (a measurement, not a test).

Starts `python -m arbiter.server --decision-log-sample 1` on a temporary
database, loads the benchmark catalogue (bench/catalogue.py: schedules,
budgets, segments, mandatory offers, computed fields), makes DECISIONS
decisions for varied customers (segments, attributes, channel, limit 5, no
explain: the log stores every candidate's fate anyway), stops the server and
reads the table's size from SQLite's dbstat: payload bytes (the compressed
JSON bodies) and pages (table + index, what the file grows by).

    .venv/bin/python bench/decision_log_size.py [--offers 100,1000] [--decisions 2000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

# Run as a script: the benchmark's modules import each other as the `bench` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from arbiter.client import Client
from bench.catalogue import DECIDE_ATTRIBUTES, build_offers, create_hierarchy

TENANT = "bench-log"
SEGMENTS = ("gold", "silver", "young", "credit_eligible", "high_value", "student")


def _start(db: Path) -> tuple[subprocess.Popen[str], str]:
    args = [sys.executable, "-m", "arbiter.server", "--address", "127.0.0.1:0", "--http-address", "off"]
    args += ["--db", str(db), "--insecure-no-auth", "--log-level", "warning", "--decision-log-sample", "1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("arbiter listening on "):
        process.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return process, line.rsplit(" ", 1)[1].strip()


def measure(offers: int, decisions: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "arbiter.db"
        process, target = _start(db)
        try:
            rng = random.Random(11)
            with Client(target, tenant=TENANT) as client:
                create_hierarchy(client)
                for body in build_offers(offers, now=datetime.now(UTC)):
                    client.create_offer(body)
                for n in range(decisions):
                    client.decide(
                        f"customer-{rng.randrange(100_000):05d}",
                        segments=rng.sample(SEGMENTS, rng.randint(0, 3)),
                        attributes={**DECIDE_ATTRIBUTES, "loyalty_score": rng.randint(0, 100), "visit": n},
                        channel=rng.choice(("web", "app", "email")),
                        limit=5,
                    )
        finally:
            process.terminate()
            process.wait(timeout=30)
        with sqlite3.connect(db) as conn:
            rows, payload = conn.execute("SELECT COUNT(*), SUM(LENGTH(body)) FROM decision_log").fetchone()
            pages = conn.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN ('decision_log', 'decision_log_by_age')"
            ).fetchone()[0]
    return {"offers": offers, "kept": rows, "body_bytes": payload / rows, "disk_bytes": pages / rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offers", default="100,1000", help="catalogue sizes, comma-separated")
    parser.add_argument("--decisions", type=int, default=2_000, help="decisions per catalogue size")
    options = parser.parse_args()
    print("| offers (candidates) | kept | compressed body, bytes/decision | on disk (table + index), bytes/decision |")
    print("|---|---|---|---|")
    for size in (int(s) for s in options.offers.split(",")):
        r = measure(size, options.decisions)
        print(f"| {r['offers']:,} | {r['kept']:,} | {r['body_bytes']:,.0f} | {r['disk_bytes']:,.0f} |")


if __name__ == "__main__":
    main()
