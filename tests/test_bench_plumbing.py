"""The benchmark's own plumbing: where results go, when it fails, when it warns about a busy machine, and
the distributed scenario's: servers on URLs, its targets, pinning its services' processes."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bench.distributed import descendants, filesystem, off_core, pin, process_tree, start_time, tree_cpu_seconds
from bench.machine_load import NOISY_CORES, warning
from bench.report import RESULTS_DIR, Report, Row, reached
from bench.server_process import BenchServer, process_cpu_seconds
from bench.suite import SCENARIOS, _parser, decide_versus_embedded, exit_code, make_plan, postgres_bulk_row


def _report(*, met: bool | None, failures: list[str] | None = None) -> Report:
    report = Report(started_at=datetime(2026, 12, 7, tzinfo=UTC), command="bench/run.py", settings={})
    report.rows.append(Row(scenario="x", offers=1_000, throughput=1.0, unit="calls/s", target="≥ 2", met=met))
    report.failures.extend(failures or [])
    return report


def test_results_go_to_the_ignored_folder_unless_saved() -> None:
    assert make_plan(_parser().parse_args(["--scenarios", "ceiling"])).results_dir == RESULTS_DIR / "tmp"
    assert make_plan(_parser().parse_args(["--scenarios", "ceiling", "--save"])).results_dir == RESULTS_DIR


def test_a_missed_target_fails_the_run_only_when_strict() -> None:
    assert exit_code(_report(met=False), strict=False) == 0
    assert exit_code(_report(met=False), strict=True) == 1
    assert exit_code(_report(met=True), strict=True) == 0
    assert exit_code(_report(met=True, failures=["a call failed"]), strict=False) == 1


def test_other_processes_above_a_tenth_of_a_core_are_warned_about() -> None:
    assert warning(NOISY_CORES) is None
    noisy = warning(NOISY_CORES + 0.05)
    assert noisy is not None and "0.15 cores" in noisy


def test_distributed_is_in_the_default_run_and_needs_h2load_without_an_embedded_server() -> None:
    assert "distributed" in SCENARIOS
    assert "distributed" in make_plan(_parser().parse_args([])).scenarios
    alone = make_plan(_parser().parse_args(["--scenarios", "distributed"]))
    assert alone.needs_h2load
    # No 1,000-offer embedded server of its own: the scenario measures its embedded twin itself.
    assert alone.sizes() == []


def test_a_server_on_urls_gets_redis_and_its_keys_cli_the_database_only(tmp_path: Path) -> None:
    db, redis = "postgresql://postgres@127.0.0.1:5432/arbiter_bench", "redis://127.0.0.1:6379/0"
    server = BenchServer(db, tmp_path / "server.log", redis=redis)
    assert server.command[server.command.index("--db") + 1] == db
    assert server.command[server.command.index("--redis") + 1] == redis
    keys = server.keys_command("bench-distributed")
    assert keys[keys.index("--db") + 1] == db and "--redis" not in keys
    embedded = BenchServer(tmp_path / "arbiter.db", tmp_path / "server.log")
    assert "--redis" not in embedded.command
    assert embedded.keys_command("t")[embedded.keys_command("t").index("--db") + 1] == str(tmp_path / "arbiter.db")


def test_a_server_with_services_counts_their_cpu_with_its_own(tmp_path: Path) -> None:
    server = BenchServer("postgresql://x/y", tmp_path / "server.log", redis="redis://z", services_cpu=lambda: 1_000.0)
    server.process = cast(Any, SimpleNamespace(pid=os.getpid()))  # this process stands in for the server
    own = process_cpu_seconds(os.getpid())
    assert own + 1_000.0 <= server.cpu_seconds() < own + 1_001.0


def test_the_distributed_decide_target_is_a_ratio_to_embedded_decide() -> None:
    met = decide_versus_embedded(600.0, 1_000.0, 1_000, non_ok=0, source="the decide-1k phase of this run")
    assert met.met is True and met.measured.startswith("0.60×") and "0.60×" in met.scenario
    assert decide_versus_embedded(599.0, 1_000.0, 1_000, non_ok=0, source="s").met is False
    assert decide_versus_embedded(900.0, 1_000.0, 1_000, non_ok=3, source="s").met is False
    assert decide_versus_embedded(900.0, 0.0, 1_000, non_ok=0, source="s").met is False  # no embedded figure
    assert reached(decide_versus_embedded(599.0, 1_000.0, 1_000, non_ok=0, source="s")).startswith("0.60×")


def test_the_postgres_outcome_target_is_20000_outcomes_per_second() -> None:
    def bulk(rate: float, non_ok: int = 0) -> dict[str, Any]:
        return {"items_per_s": rate, "non_ok": non_ok, "calls_per_s": rate / 1_000, "p50_ms": 400.0}

    assert postgres_bulk_row(bulk(20_000.0), 1_000, 1_000).met is True
    assert postgres_bulk_row(bulk(19_999.0), 1_000, 1_000).met is False
    assert postgres_bulk_row(bulk(30_000.0, non_ok=1), 1_000, 1_000).met is False
    missed = _report(met=None)
    missed.rows.append(postgres_bulk_row(bulk(3_000.0), 1_000, 1_000))
    assert exit_code(missed, strict=False) == 0 and exit_code(missed, strict=True) == 1


def test_a_process_tree_lists_every_descendant_after_its_parent() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 10, 13: 12, 20: 1, 30: 99}
    assert descendants(parents, 10) == [10, 11, 12, 13]
    assert descendants(parents, 13) == [13]
    assert descendants(parents, 1) == [1, 10, 20, 11, 12, 13]


def test_pinning_puts_every_thread_of_a_process_tree_on_one_core() -> None:
    core = min(os.sched_getaffinity(0))
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_tree(os.getpid())[0] == os.getpid() and child.pid in process_tree(os.getpid())
        assert pin(process_tree(child.pid), core) == [child.pid]
        assert os.sched_getaffinity(child.pid) == {core}
        assert off_core([child.pid], core) == {}
        assert start_time(child.pid) is not None
        assert tree_cpu_seconds(os.getpid()) >= process_cpu_seconds(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert start_time(child.pid) is None  # gone
    assert pin([child.pid], core) == []  # a vanished process is skipped
    assert filesystem(Path("/")) != "unknown"
