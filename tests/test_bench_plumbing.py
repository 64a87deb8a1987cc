"""The benchmark's own plumbing: where results go, when it fails, when it warns about a busy machine,
the distributed scenario's (servers on URLs, its targets, pinning its services' processes) and the workers
scenario's (servers with workers, where each configuration runs, checking timed runs, its targets)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from bench.distributed import descendants, filesystem, off_core, pin, process_tree, start_time, tree_cpu_seconds
from bench.h2load import GrpcCall, H2loadResult, H2loadSettings
from bench.machine_load import NOISY_CORES, warning
from bench.report import RESULTS_DIR, Report, Row, cores_line, reached
from bench.server_process import (
    BenchServer,
    _kill_survivors,
    add_counts,
    children,
    created_key_id,
    process_cpu_seconds,
    workers_arg,
)
from bench.suite import SCENARIOS, _parser, decide_versus_embedded, exit_code, make_plan, postgres_bulk_row
from bench.workers import (
    LAYOUTS,
    Delays,
    calls_by_worker,
    cores_note,
    count_mismatches,
    expected_counts,
    h2load_command,
    idle_workers,
    propagation_row,
    revocation_row,
    scaling_row,
    timed_run_problems,
)
from bench.workers import h2load_settings as workers_h2load_settings


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


# -- the workers scenario -------------------------------------------------------------


def _h2load(*, total: int, started: int | None = None, ok: int | None = None, failed: int = 0) -> H2loadResult:
    """What h2load reported: `total` calls answered (done), `started` begun, `ok` of them 2xx."""
    done = total
    return H2loadResult(
        command=["h2load"],
        elapsed_s=3.0,
        req_per_s=done / 3.0,
        total=total,
        started=total if started is None else started,
        done=done,
        succeeded=done - failed,
        failed=failed,
        errored=0,
        timeout=0,
        status_2xx=done if ok is None else ok,
        output="",
    )


def test_workers_is_in_the_default_run_and_needs_h2load_without_an_embedded_server() -> None:
    assert "workers" in SCENARIOS
    assert "workers" in make_plan(_parser().parse_args([])).scenarios
    alone = make_plan(_parser().parse_args(["--scenarios", "workers"]))
    assert alone.needs_h2load and alone.sizes() == []
    layouts = alone.settings()["workers"]["layouts"]
    assert layouts[1] == {"server_cores": "0", "services_cores": [0], "load_cores": "1"}
    assert layouts[2] == {"server_cores": "0,1", "services_cores": [0, 1], "load_cores": "0,1"}


def test_each_configuration_says_where_its_processes_run() -> None:
    one, two = LAYOUTS
    assert (one.workers, one.server_cores, one.load_cores, one.cores_for_server) == (1, "0", "1", 1)
    assert "core 0" in one.label and "h2load on core 1" in one.label
    assert (two.workers, two.server_cores, two.load_cores, two.cores_for_server) == (2, "0,1", "0,1", 2)
    assert "h2load" in two.label and "share cores 0–1" in two.label
    line = cores_line(["workers"])
    assert "2-worker rows" in line and "share cores 0 and 1" in line
    assert "2-worker" not in cores_line(["distributed"]) and "distributed rows" in cores_line(["distributed"])


def test_a_server_with_workers_runs_them_on_the_cores_given(tmp_path: Path) -> None:
    assert workers_arg(["--workers", "2"]) == 2 and workers_arg(["--workers=3", "--x"]) == 3 and workers_arg([]) == 1
    server = BenchServer("postgresql://x/y", tmp_path / "s.log", ("--workers", "2"), redis="redis://z", cores="0,1")
    assert server.command[:3] == ["taskset", "-c", "0,1"] and server.workers == 2
    assert server.command[server.command.index("--workers") + 1] == "2"
    single = BenchServer(tmp_path / "a.db", tmp_path / "s.log")
    assert single.command[:3] == ["taskset", "-c", "0"] and single.workers == 1


def test_a_supervisors_workers_are_its_children_and_their_counts_add_up(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in children(os.getpid())
        server = BenchServer("postgresql://x/y", tmp_path / "s.log", ("--workers", "2"), redis="redis://z")
        server.process = cast(Any, SimpleNamespace(pid=os.getpid()))  # this process stands in for the supervisor
        assert child.pid in server.worker_pids()
    finally:
        child.kill()
        child.wait()
    assert children(child.pid) == []  # gone: no children, no error
    counts = add_counts([{"Decide": {"OK": 2}}, {"Decide": {"OK": 3, "CANCELLED": 1}, "GetOffer": {"OK": 1}}])
    assert counts == {"Decide": {"OK": 5, "CANCELLED": 1}, "GetOffer": {"OK": 1}}
    assert created_key_id("created key_0123abcd (tenant t, role decide); the secret above is not stored") == (
        "key_0123abcd"
    )


def test_workers_left_behind_are_killed_by_pid_and_only_if_still_the_same_process() -> None:
    child = subprocess.Popen(["sleep", "30"])
    started = start_time(child.pid)
    assert _kill_survivors([(child.pid, started)], timeout=0.1) == [child.pid]
    child.wait()
    assert _kill_survivors([(child.pid, started)], timeout=0.1) == []  # gone already
    other = subprocess.Popen(["sleep", "30"])
    try:
        assert _kill_survivors([(other.pid, (start_time(other.pid) or 0) + 1)], timeout=0.1) == []  # not that one
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_workers_h2load_keeps_the_calls_in_flight_over_enough_connections_for_every_worker(tmp_path: Path) -> None:
    settings = workers_h2load_settings(H2loadSettings(clients=4, streams=16))
    assert settings.clients >= 8 and settings.in_flight == 64
    assert workers_h2load_settings(H2loadSettings(clients=32, streams=2)).clients == 32
    call = GrpcCall("http://127.0.0.1:1/arbiter.v1.DecisionService/Decide", tmp_path / "b.bin", "arb_x")
    timed = h2load_command("h2load", call, settings, "0,1", seconds=3)
    assert timed[:4] == ["taskset", "-c", "0,1", "h2load"] and timed[timed.index("-D") + 1] == "3"
    assert "-n" not in timed and timed[-1] == call.url
    counted = h2load_command("h2load", call, settings, "1", requests=500)
    assert counted[:3] == ["taskset", "-c", "1"] and counted[counted.index("-n") + 1] == "500" and "-D" not in counted
    with pytest.raises(ValueError, match="requests or seconds"):
        h2load_command("h2load", call, settings, "1")


def test_a_timed_run_is_checked_against_the_range_of_calls_it_may_have_made() -> None:
    warm, main = _h2load(total=500), _h2load(total=3_000, started=3_064)
    assert timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_500}}) == (0, [])
    assert timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_540, "CANCELLED": 24}}) == (0, [])
    fewer = timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_490}})
    assert fewer[0] == 10 and "the server 3,490 OK" in fewer[1][0]
    more = timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_565}})
    assert more[0] == 1 and "started 3,564" in more[1][0]
    cancelled = timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_500, "CANCELLED": 65}})
    assert cancelled[0] >= 65 and "CANCELLED" in cancelled[1][0]
    refused = timed_run_problems("r", "Decide", warm, main, {"Decide": {"OK": 3_500, "UNAUTHENTICATED": 2}})
    assert refused[0] == 2 and "UNAUTHENTICATED" in refused[1][0]
    not_2xx = timed_run_problems("r", None, warm, _h2load(total=3_000, ok=2_990), {})
    assert not_2xx[0] == 10 and "not HTTP 2xx" in not_2xx[1][0]
    assert timed_run_problems("r", None, warm, main, {}) == (0, [])  # Health/Check: the server does not count it


def test_a_worker_that_took_no_real_load_is_named() -> None:
    assert idle_workers({10: 1.5, 11: 1.2}, elapsed=3.0) == []
    assert idle_workers({10: 2.9, 11: 0.1}, elapsed=3.0) == [11]
    assert idle_workers({10: 2.9}, elapsed=0.0) == [10]
    before = {10: {"Decide": {"OK": 100}}, 11: {"Decide": {"OK": 5}}}
    after = {10: {"Decide": {"OK": 300}}, 11: {"Decide": {"OK": 5}, "GetOffer": {"OK": 2}}}
    assert calls_by_worker(before, after, "Decide") == {10: 200, 11: 0}


def test_the_workers_target_is_two_workers_at_least_1_3_times_one() -> None:
    met = scaling_row(1_000.0, 1_300.0, non_ok=0, ceiling_one=3_000.0, ceiling_two=4_500.0)
    assert met.met is True and "1.30×" in met.scenario and reached(met).startswith("1.30×")
    assert "1.50×" in met.note  # the ceilings' ratio
    assert scaling_row(1_000.0, 1_299.0, non_ok=0, ceiling_one=1.0, ceiling_two=1.0).met is False
    assert scaling_row(1_000.0, 2_000.0, non_ok=1, ceiling_one=1.0, ceiling_two=1.0).met is False
    assert scaling_row(0.0, 2_000.0, non_ok=0, ceiling_one=0.0, ceiling_two=1.0).met is False
    report = _report(met=None)
    report.rows.append(scaling_row(1_000.0, 1_100.0, non_ok=0, ceiling_one=1.0, ceiling_two=1.0))
    assert exit_code(report, strict=False) == 0 and exit_code(report, strict=True) == 1


def test_a_shared_cores_note_says_what_the_server_and_h2load_used() -> None:
    one, two = LAYOUTS
    assert cores_note({"server_cores_busy": 0.5}, one, "one core's note") == "one core's note"
    busy = cores_note({"server_cores_busy": 1.6, "h2load_cores_busy": 0.3}, two, "")
    assert "1.60 cores" in busy and "h2load 0.30" in busy and "not saturated" not in busy
    assert "not saturated" in cores_note({"server_cores_busy": 1.0, "h2load_cores_busy": 0.2}, two, "")


def test_propagation_is_judged_on_its_p99_and_every_change_must_arrive() -> None:
    quick = Delays(seconds=[0.01 * i for i in range(1, 201)], ok_polls=400)
    summary = quick.summary()
    assert summary["count"] == 200 and summary["p50_ms"] == pytest.approx(1_000) and summary["max_ms"] == 2_000
    assert propagation_row(quick, non_ok=0).met is False  # p99 1.98 s
    fast = Delays(seconds=[0.05] * 200)
    assert propagation_row(fast, non_ok=0).met is True and "p99" in reached(propagation_row(fast, non_ok=0))
    assert propagation_row(Delays(seconds=[0.05] * 199, lost=1), non_ok=0).met is False
    assert propagation_row(fast, non_ok=1).met is False
    keys = revocation_row(Delays(seconds=[0.002, 0.004]), non_ok=0)
    assert keys.p50_ms == pytest.approx(2.0) and "max 4.0 ms" in keys.note and keys.met is None


def test_the_servers_must_have_answered_exactly_the_calls_of_the_propagation_part() -> None:
    writes, keys = Delays(seconds=[0.01] * 3, ok_polls=7), Delays(seconds=[0.01] * 2, ok_polls=5, refused=2)
    on_a, on_b = expected_counts(3, 2, writes, keys)
    assert on_a == {"UpdateOffer": {"OK": 3}, "RevokeApiKey": {"OK": 2}}
    assert on_b == {"GetOffer": {"OK": 12, "UNAUTHENTICATED": 2}}
    assert count_mismatches("B", on_b, {"GetOffer": {"OK": 12, "UNAUTHENTICATED": 2}}) == []
    problems = count_mismatches("B", on_b, {"GetOffer": {"OK": 11, "UNAUTHENTICATED": 2}, "Decide": {"OK": 1}})
    assert len(problems) == 2 and any("Decide OK" in p for p in problems)


def test_services_can_be_moved_to_several_cores() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert pin([child.pid], allowed) == [child.pid]
        assert os.sched_getaffinity(child.pid) == set(allowed)
        assert off_core([child.pid], set(allowed)) == {}
        if len(allowed) > 1:
            assert off_core([child.pid], allowed[0]) == {child.pid: allowed}
    finally:
        child.kill()
        child.wait()
