"""The benchmark's results: table rows, the Markdown report and the files in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Row:
    """One line of the table. None means "does not apply" and prints as a dash."""

    scenario: str
    offers: int | None
    throughput: float | None
    unit: str
    ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_ok: int | None = 0  # None: the server cannot count this call (see the row's note)
    target: str = "—"
    met: bool | None = None
    note: str = ""
    measured: str = ""  # what the row reached when that is none of throughput, ratio or latency (a difference)


@dataclass
class Report:
    """Everything one run measured, plus where and how."""

    started_at: datetime
    command: str
    settings: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    catalogues: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the run itself (a busy machine)
    method_notes: list[str] = field(default_factory=list)  # how a scenario measured and checked, for the report
    finished_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """Every call answered OK and every count matched."""
        return not self.failures

    def missed(self) -> list[Row]:
        return [row for row in self.rows if row.met is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "machine": machine(),
            "git": git_state(),
            "command": self.command,
            "settings": self.settings,
            "ok": self.ok,
            "failures": self.failures,
            "warnings": self.warnings,
            "method_notes": self.method_notes,
            "rows": [asdict(row) for row in self.rows],
            "catalogues": self.catalogues,
            "phases": self.phases,
        }


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def git_state() -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _met(row: Row) -> str:
    if row.met is None:
        return "—"
    return "yes" if row.met else "**NO**"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| Scenario | Offers | Throughput | Ratio to ceiling | p50 | p99 | Non-OK | Target | Met? |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        throughput = "—" if row.throughput is None else f"{row.throughput:,.0f} {row.unit}"
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}×"
        p50 = "—" if row.p50_ms is None else f"{row.p50_ms:.2f} ms"
        p99 = "—" if row.p99_ms is None else f"{row.p99_ms:.2f} ms"
        non_ok = "n/a" if row.non_ok is None else f"{row.non_ok:,}"
        if row.non_ok:
            non_ok = f"**{non_ok}**"
        lines.append(
            f"| {row.scenario} | {_number(row.offers)} | {throughput} | {ratio} | {p50} | {p99} | {non_ok} "
            f"| {row.target} | {_met(row)} |"
        )
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The report as commit-friendly Markdown: the table, then how it was measured."""
    info = machine()
    git = git_state()
    settings = report.settings
    lines = [
        f"# Arbiter benchmark, {report.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores ({cores_line(settings.get('scenarios', ()))}); "
        f"Linux {info['kernel']}, Python {info['python']}. "
        f"Commit {git['commit'] or 'unknown'}{' (with uncommitted changes)' if git['dirty'] else ''}.",
        "",
        f"Command: `{report.command}`" + (" (quick mode: short runs, numbers are rough)" if settings["quick"] else ""),
        "",
        "Tenant: active offers spread over 8 categories, "
        + ("each with two computed fields; " if settings.get("computed_fields", True) else "without computed fields; ")
        + f"{settings.get('policies', 0)} active contact policies of mixed types.",
        "",
        *(f"**Warning:** {warning}." for warning in report.warnings),
        *([""] if report.warnings else []),
        table(report.rows),
        "",
    ]
    notes = [f"- {row.scenario}{_offers(row)}: {row.note}" for row in report.rows if row.note]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    missed = report.missed()
    if missed:
        lines += ["Targets missed (what was reached):", ""]
        lines += [f"- {row.scenario}{_offers(row)}: {reached(row)} (target {row.target})" for row in missed]
        lines.append("")
    if report.failures:
        lines += ["**FAILED CALLS OR COUNT MISMATCHES:**", ""]
        lines += [f"- {failure}" for failure in report.failures]
        lines.append("")
    else:
        lines += [
            "Every call answered OK: the server's own per-method counts (SIGUSR1) match the load generators' "
            "(Health/Check is not in the server's counts, so ceiling rows are checked by HTTP status only"
            + (
                "; nor are REST calls, so REST rows are checked by HTTP status, 2xx only, and created offers "
                "also by the distinct ids answered and the tenant's offer count"
                if "rest" in settings.get("scenarios", ())
                else ""
            )
            + ").",
            "",
        ]
    lines += [
        "How it was measured:",
        "",
        f"- h2load {settings['h2load']['args']} (same for every throughput run), exactly N requests per run "
        f"(N from a {settings['h2load']['warmup_requests']}-request warm-up's rate × "
        f"{settings['durations']['throughput_s']:g} s); "
        "latency: h2load --rps at half the measured Decide maximum for "
        f"{settings['durations']['latency_s']:g} s, paced to arrive evenly spaced (≤ 100 req/s per connection, "
        "connections opened a fraction of h2load's 10 ms pacing tick apart), percentiles from --log-file.",
        f"- Outcomes: bench/loadgen.py (grpc.aio, pre-serialised bodies, unique idempotency keys), "
        f"{settings['loadgen']['warmup_s']:g} s warm-up + {settings['loadgen']['duration_s']:g} s measured; "
        f"single: {settings['loadgen']['single_concurrency']} calls in flight; bulk: "
        f"{settings['loadgen']['bulk_concurrency']} calls of {settings['loadgen']['batch']} outcomes in flight; "
        f"{settings['loadgen']['channels']} connections.",
        *(f"- {note}" for note in report.method_notes),
    ]
    for catalogue in report.catalogues:
        lines.append(
            f"- Catalogue of {catalogue['offers']:,} active offers (tenant {catalogue['tenant']}): created in "
            f"{catalogue['create_s']:.1f} s with {catalogue['outcomes_recorded']:,} historical outcomes for "
            f"{catalogue['customers']:,} customers; Decide body: {json.dumps(catalogue['decide_body'])}."
        )
    lines.append("")
    return "\n".join(lines)


def cores_line(scenarios: Sequence[str]) -> str:
    """Where the report's processes ran, for its first line."""
    distributed = [name for name in ("distributed", "workers") if name in scenarios]
    line = "server pinned to core 0"
    if distributed:
        line += f", with its Postgres and Redis in the {' and '.join(distributed)} rows"
    line += "; load generators to core 1"
    if "workers" in scenarios:
        line += (
            "; except the 2-worker rows, where the server's workers, Postgres, Redis and h2load all share cores 0 and 1"
        )
    return line


def _offers(row: Row) -> str:
    return f" ({row.offers:,} offers)" if row.offers else ""


def reached(row: Row) -> str:
    """What a row reached, in the terms of its target."""
    if row.measured:
        return row.measured
    if row.p99_ms is not None and "p99" in row.target:
        return f"p99 {row.p99_ms:.2f} ms"
    if row.ratio is not None and "×" in row.target:
        return f"{row.ratio:.2f}× ({_number(row.throughput)} {row.unit})"
    return f"{_number(row.throughput)} {row.unit}"


def write(report: Report, results_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    """<results_dir>/<UTC date>-<time>.json (raw numbers) and <results_dir>/latest.md."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = report.started_at.strftime("%Y-%m-%d-%H%M%S")
    raw = results_dir / f"{stamp}.json"
    raw.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    latest = results_dir / "latest.md"
    latest.write_text(markdown(report))
    return raw, latest
