"""A plain `pip install ./client .` from a checkout, into a fresh virtualenv, gives a server that serves.

The distributions are `arbiter-decisioning-client` and `arbiter-decisioning`: the older names belong to an
unrelated project on PyPI, whose `arbiter-client` put another `bin/arbiter` on PATH and broke the server
(`No module named 'arbiter.v1'`). No editable install and no dev extras here: what a user gets.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from serverproc import ServerProcess

from arbiter.client import Client

ROOT = Path(__file__).resolve().parent.parent
# What a checkout needs to build both distributions (not the developer's .venv or build leftovers).
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "client", "server")
LEFTOVERS = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist", "*.db*")


def _checkout(into: Path) -> Path:
    into.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=LEFTOVERS)
        else:
            shutil.copy2(source, into / name)
    return into


@pytest.mark.sqlite_only
def test_pip_install_of_client_and_server_from_a_checkout_serves(tmp_path: Path) -> None:
    checkout = _checkout(tmp_path / "checkout")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "./client", "."], cwd=checkout, check=True, timeout=600)

    listed = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "list", "--format", "json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    installed = {row["name"] for row in json.loads(listed.stdout)}
    assert {"arbiter-decisioning", "arbiter-decisioning-client"} <= installed
    assert "arbiter-client" not in installed and "arbiter-server" not in installed

    with ServerProcess(tmp_path / "x.db", http=True, command=[str(env_dir / "bin" / "arbiter")]) as server:
        assert server.process is not None
        assert Path(server.args[0]).parent == env_dir / "bin"
        assert server.health() == health_pb2.HealthCheckResponse.SERVING
        with Client(server.target, tenant="default") as client:
            assert list(client.decide("c-1").offers) == []
        with urllib.request.urlopen(f"{server.http_url}/studio", timeout=10) as page:
            assert page.status == 200
        assert server.stop() == 0
    assert sys.executable not in server.args
