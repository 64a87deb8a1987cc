"""Chromium for the Studio browser tests: Debian's /usr/bin/chromium, driven by Playwright's sync API.

Playwright never downloads a browser here: it launches the system Chromium by
path. When that binary is missing the harness installs the Debian package
itself (root only), waiting for a dpkg lock another install may hold.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCK_WAIT_SECONDS = 900  # another apt/dpkg (the machine's own set-up) may hold the lock this long
INSTALL_TIMEOUT = 1800.0
VERSION_TIMEOUT = 60.0
LAUNCH_TIMEOUT_MS = 60_000


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "-o", f"DPkg::Lock::Timeout={LOCK_WAIT_SECONDS}", *args],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )


def ensure_chromium() -> Path:
    """The Chromium binary, installing Debian's package first when it is missing (as root)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"{CHROMIUM} is missing: the Studio browser tests need Debian's Chromium. "
            "Install it with `sudo apt-get install -y chromium` (this harness only installs it when run as root).",
            pytrace=False,
        )
    result = _apt("install", "-y", "chromium")
    if result.returncode != 0:
        # A fresh image may have no package lists yet: fetch them once and try again.
        _apt("update")
        result = _apt("install", "-y", "chromium")
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"apt-get install -y chromium failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}", pytrace=False
        )
    return CHROMIUM


def chromium_major_version(binary: Path) -> int:
    """The major version `chromium --version` reports (a smoke check that the binary runs at all)."""
    result = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT, check=False
    )
    match = re.search(r"Chromium (\d+)\.", result.stdout)
    if match is None:
        pytest.fail(f"{binary} --version printed no version: {result.stdout!r} {result.stderr[-500:]!r}", pytrace=False)
    return int(match.group(1))


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless system Chromium under Playwright, checked to be the version the binary reports."""
    binary = ensure_chromium()
    major = chromium_major_version(binary)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(binary), headless=True, args=LAUNCH_ARGS, timeout=LAUNCH_TIMEOUT_MS
        )
        try:
            assert browser.version.split(".")[0] == str(major), (browser.version, major)
            yield browser
        finally:
            browser.close()
