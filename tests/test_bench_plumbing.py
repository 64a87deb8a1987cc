"""The benchmark's own plumbing: where results go, when it fails, when it warns about a busy machine."""

from __future__ import annotations

from datetime import UTC, datetime

from bench.machine_load import NOISY_CORES, warning
from bench.report import RESULTS_DIR, Report, Row
from bench.suite import _parser, exit_code, make_plan


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
