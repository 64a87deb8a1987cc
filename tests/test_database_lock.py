"""One server per SQLite file: a second one refuses to start, saying which process holds it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from decide_helpers import make_offer
from inprocess import InProcessServer
from serverproc import ServerProcess

from arbiter.client import Client, UnavailableError
from arbiter.v1 import decisions_pb2

# About what only a SQLite file has; Postgres has its own tools for both (docs/rules.md).
pytestmark = pytest.mark.sqlite_only

RECORDED = decisions_pb2.OUTCOME_STATUS_RECORDED


def _second_server(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "arbiter.server",
            "--address",
            "127.0.0.1:0",
            "--http-address",
            "127.0.0.1:0",
            "--db",
            str(db),
            "--insecure-no-auth",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_server_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    with ServerProcess(db) as first:
        assert first.process is not None
        second = _second_server(db)

        assert second.returncode == 2
        assert second.stdout == ""  # it never listened
        message = second.stderr.strip()
        assert message.startswith("arbiter: database ") and "\n" not in message
        assert f"pid {first.process.pid}" in message
        # The first one is untouched and carries on.
        with Client(first.target, tenant="lock") as client:
            client.create_offer({"name": "still served"})


def test_the_lock_goes_with_the_process_even_after_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    crashed = ServerProcess(db).start()
    with Client(crashed.target, tenant="lock") as client:
        offer = client.create_offer({"name": "before the crash"})
    crashed.kill()

    with ServerProcess(db) as successor, Client(successor.target, tenant="lock") as client:
        assert client.get_offer(offer.id).name == "before the crash"
    # And after a clean stop, too.
    with ServerProcess(db) as again, Client(again.target, tenant="lock") as client:
        assert client.get_offer(offer.id).name == "before the crash"


def test_the_keys_cli_still_works_beside_a_running_server(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    with ServerProcess(db):
        result = subprocess.run(
            [sys.executable, "-m", "arbiter.server", "keys", "--db", str(db), "list"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr


def test_a_write_lock_held_by_another_process_is_unavailable_and_retryable(tmp_path: Path) -> None:
    db = tmp_path / "arbiter.db"
    # A short busy timeout so the test does not wait the real one; nothing here depends on how long it is.
    with InProcessServer(db, auth=False, busy_timeout_ms=50) as server, Client(server.target, tenant="t") as client:
        offer_id = make_offer(client)
        other = sqlite3.connect(db, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock past the timeout
            with pytest.raises(UnavailableError) as outcome_error:
                client.record_outcome("c-1", offer_id, "click", "key-1", timeout=30)
            with pytest.raises(UnavailableError) as decide_error:
                client.decide("c-1", record_impressions=True, timeout=30)
            other.execute("ROLLBACK")
        finally:
            other.close()

        assert outcome_error.value.reason == decide_error.value.reason == "DATABASE_BUSY"
        # Nothing of the refused calls was kept: the retry records the outcome anew, and the
        # refused Decide left no impression behind.
        assert client.record_outcome("c-1", offer_id, "click", "key-1").status == RECORDED
        assert client.get_offer_stats(offer_id).lifetime_impressions == 0
        assert client.decide("c-1", record_impressions=True).offers
        assert client.get_offer_stats(offer_id).lifetime_impressions == 1
