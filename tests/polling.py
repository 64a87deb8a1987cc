"""Waiting for something a server does a moment later: a bounded poll, never an assertion on elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable

BOUND = 10.0  # seconds: the most a wait may take before the test fails (a bound on a hang)


def eventually(check: Callable[[], bool], what: str, bound: float = BOUND) -> None:
    """Poll `check` until it holds; fail naming `what` after `bound` seconds."""
    deadline = time.monotonic() + bound
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {bound} s: {what}")
        time.sleep(0.02)
