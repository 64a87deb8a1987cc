"""`--workers N`: several processes serving one port on the distributed backend."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import backends
import pytest
from decide_helpers import decide, make_offer
from polling import eventually
from serverproc import ServerProcess, start_refused
from test_metrics import scrape

from arbiter.client import Client, UnavailableError

OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def _workers(server: ServerProcess) -> list[int]:
    """The pids of the server's workers (the processes its supervisor started)."""
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@pytest.mark.postgres_only
def test_two_workers_serve_one_port_and_take_a_cap_exactly_together(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "w.db", ["--workers", "2"]) as server, Client(server.target, tenant="t") as setup:
        workers = _workers(server)
        assert len(workers) == 2
        capped = make_offer(setup, budget={"maxImpressions": 40})
        before = {pid: _cpu_ticks(pid) for pid in workers}
        shown: list[str] = []
        errors: list[BaseException] = []

        def load(worker: int) -> None:
            try:
                for n in range(40):
                    # A connection of its own (not one shared by channels to the same target): any worker may take it.
                    with Client(server.target, tenant="t", options=OWN_CONNECTION) as client:
                        shown.extend(
                            o.offer_id for o in decide(client, f"c{worker}-{n}", record_impressions=True).offers
                        )
            except BaseException as exc:  # reported below: a failing thread must fail the test
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert shown == [capped] * 40  # each impression granted once, whichever worker decided
        assert setup.get_offer_stats(capped).lifetime_impressions == 40  # every worker's, whichever answers
        assert all(_cpu_ticks(pid) > before[pid] for pid in workers), "both workers took calls"
    assert backends.query(backends.database(server.db), "SELECT count(*) FROM outcomes WHERE type = 1") == [(40,)]


@pytest.mark.postgres_only
def test_a_worker_that_dies_is_started_again_and_the_port_keeps_serving(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "w.db", ["--workers", "2"]) as server:
        first, second = _workers(server)
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            workers = _workers(server)
            return len(workers) == 2 and first not in workers and second in workers

        eventually(replaced, "the supervisor starts a worker in place of the one that died")

        def answers() -> bool:
            try:
                with Client(server.target, tenant="t") as client:
                    make_offer(client)
            except UnavailableError:
                return False
            return True

        eventually(answers, "the port serves")
        assert any("worker 0" in line and "starting it again" in line for line in server.stderr_lines)


@pytest.mark.postgres_only
def test_sigterm_drains_every_worker_and_the_server_exits_cleanly(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "w.db", ["--workers", "3"]).start()
    workers = _workers(server)
    assert len(workers) == 3
    assert server.stop() == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


@pytest.mark.postgres_only
def test_every_scrape_counts_the_calls_of_every_worker(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "w.db", ["--workers", "2"], http=True) as server:
        workers = _workers(server)
        before = {pid: _cpu_ticks(pid) for pid in workers}
        for n in range(30):
            with Client(server.target, tenant="t", options=OWN_CONNECTION) as client:
                decide(client, f"c{n}")
        assert all(_cpu_ticks(pid) > before[pid] for pid in workers), "both workers took calls"
        decides = ("grpc_server_handled", "Decide")
        for _ in range(6):  # new connections each: the scrapes reach either worker
            samples = scrape(server.http_url)
            handled = sum(
                count
                for (name, labels), count in samples.items()
                if name == decides[0] + "_total" and ("grpc_method", decides[1]) in labels
            )
            assert handled == 30
            assert samples[("arbiter_decisions_total", frozenset())] == 30


def test_more_than_one_worker_on_a_sqlite_file_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    line = start_refused("--db", str(tmp_path / "x.db"), "--workers", "2")
    assert "--workers 2 needs the distributed backend" in line and "postgresql://" in line
    assert "give 1 or more" in start_refused("--db", str(tmp_path / "x.db"), "--workers", "0")
