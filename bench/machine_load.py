"""How much CPU other processes used while a benchmark ran: the numbers are trustworthy only on a quiet machine.

The machine's busy time comes from /proc/stat; the benchmark's own is this
process plus every child it has waited for (servers, h2load, load
generators: os.times() counts reaped children). What is left was used by
something else: another test run, a build, a browser.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

# Above this share of one core used by other processes, the run's figures are flagged.
NOISY_CORES = 0.10
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (not idle, not iowait)


@dataclass(frozen=True)
class _Sample:
    machine_busy_s: float
    ours_s: float
    at: float


def _sample() -> _Sample:
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = sum(int(first[i]) for i in _BUSY_FIELDS if i < len(first))
    own = os.times()
    return _Sample(
        machine_busy_s=ticks / os.sysconf("SC_CLK_TCK"),
        ours_s=own.user + own.system + own.children_user + own.children_system,
        at=time.monotonic(),
    )


class OtherLoad:
    """Started when made; `cores()` says how many cores other processes kept busy on average since."""

    def __init__(self) -> None:
        self._start = _sample()

    def cores(self) -> float:
        end = _sample()
        elapsed = end.at - self._start.at
        if elapsed <= 0:
            return 0.0
        others = (end.machine_busy_s - self._start.machine_busy_s) - (end.ours_s - self._start.ours_s)
        return max(0.0, others / elapsed)


def warning(cores: float) -> str | None:
    """The warning a run gets when other processes used more than NOISY_CORES of a core (None: quiet enough)."""
    if cores <= NOISY_CORES:
        return None
    return (
        f"other processes used {cores:.2f} cores on average during this run (more than {NOISY_CORES:.0%} of one): "
        "the machine was not quiet, so the figures may be low; check `top` and run again"
    )
