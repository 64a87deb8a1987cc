"""Entry point of `make bench`: `.venv/bin/python bench/run.py [--scenarios ...] [--quick]`.

Run as a script, Python puts bench/ itself on sys.path; the benchmark's
modules import each other as the `bench` package, so the repository root
goes on the path first. The scenarios live in bench/suite.py.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from bench.suite import main as run_suite

    return run_suite()


if __name__ == "__main__":
    sys.exit(main())
