"""`arbiter backup` and `arbiter restore`: a backup taken under load holds every acknowledged outcome."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from serverproc import ServerProcess

from arbiter.client import Client

# About what only a SQLite file has; Postgres has its own tools for both (docs/rules.md).
pytestmark = pytest.mark.sqlite_only

TENANT = "backup-tenant"


def _arbiter(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbiter.server", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _keys_in(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {row[0] for row in conn.execute("SELECT idempotency_key FROM outcomes WHERE tenant = ?", [TENANT])}
    finally:
        conn.close()


def test_a_backup_under_load_holds_every_outcome_acknowledged_before_it(tmp_path: Path) -> None:
    db, backup, restored = tmp_path / "live.db", tmp_path / "backup.db", tmp_path / "restored.db"
    acknowledged: list[tuple[str, float]] = []  # (idempotency key, when its answer arrived)
    stop = threading.Event()
    failures: list[BaseException] = []

    with ServerProcess(db) as server:
        with Client(server.target, tenant=TENANT) as client:
            offer_id = client.create_offer({"name": "backed up", "status": "active"}).id

        def load() -> None:
            try:
                with Client(server.target, tenant=TENANT) as loader:
                    n = 0
                    while not stop.is_set():
                        key = f"k-{n}"
                        loader.record_outcome(f"c-{n % 50}", offer_id, "impression", idempotency_key=key)
                        acknowledged.append((key, time.monotonic()))
                        n += 1
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        loader = threading.Thread(target=load)
        loader.start()
        try:
            while len(acknowledged) < 200 and not failures:
                time.sleep(0.01)
            started = time.monotonic()
            result = _arbiter("backup", "--db", str(db), str(backup))
            finished = time.monotonic()
            during = len(acknowledged)
            while len(acknowledged) < during + 100 and not failures:  # the server kept serving
                time.sleep(0.01)
        finally:
            stop.set()
            loader.join(timeout=30)
        assert failures == []
        assert result.returncode == 0, result.stderr
        assert server.stop() == 0

    before = {key for key, at in acknowledged if at < started}
    after = {key for key, at in acknowledged if at > finished}
    assert len(before) >= 200

    result = _arbiter("restore", "--db", str(restored), str(backup))
    assert result.returncode == 0, result.stderr
    in_backup = _keys_in(restored)
    assert before <= in_backup
    assert not after & in_backup  # a snapshot, not a copy of whatever the file held later
    with ServerProcess(restored) as server, Client(server.target, tenant=TENANT) as client:
        assert client.get_offer_stats(offer_id).lifetime_impressions == len(in_backup)


@pytest.fixture
def arbiter_db(tmp_path: Path) -> Path:
    """A small idle Arbiter database, made by a server that has stopped."""
    db = tmp_path / "arbiter.db"
    with ServerProcess(db) as server, Client(server.target, tenant=TENANT) as client:
        client.create_offer({"name": "kept", "status": "active"})
    return db


def test_a_plain_copy_of_a_live_database_can_miss_data_the_backup_holds(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    with ServerProcess(db) as server:
        with Client(server.target, tenant=TENANT) as client:
            client.create_offer({"name": "in the wal", "status": "active"})
        copied = tmp_path / "copied.db"
        copied.write_bytes(db.read_bytes())
        assert _arbiter("backup", "--db", str(db), str(tmp_path / "backup.db")).returncode == 0
    conn = sqlite3.connect(tmp_path / "backup.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM offers").fetchone() == (1,)
    finally:
        conn.close()
    conn = sqlite3.connect(copied)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "offers" not in tables or conn.execute("SELECT COUNT(*) FROM offers").fetchone() == (0,)
    finally:
        conn.close()


def test_restore_is_refused_while_a_server_holds_the_database(arbiter_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    assert _arbiter("backup", "--db", str(arbiter_db), str(backup)).returncode == 0
    with ServerProcess(arbiter_db) as server:
        assert server.process is not None
        result = _arbiter("restore", "--db", str(arbiter_db), str(backup), "--force")
        assert result.returncode == 2
        assert f"pid {server.process.pid}" in result.stderr
        assert server.health() == 1  # SERVING, undisturbed


def test_restore_does_not_replace_an_existing_database_without_force(arbiter_db: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    assert _arbiter("backup", "--db", str(arbiter_db), str(backup)).returncode == 0
    target = tmp_path / "other.db"
    target.write_bytes(b"precious")

    result = _arbiter("restore", "--db", str(target), str(backup))
    assert result.returncode == 2 and "--force" in result.stderr
    assert target.read_bytes() == b"precious"

    assert _arbiter("restore", "--db", str(target), str(backup), "--force").returncode == 0
    with ServerProcess(target) as server, Client(server.target, tenant=TENANT) as client:
        assert [offer.name for offer in client.list_offers().offers] == ["kept"]


@pytest.mark.parametrize("content", [b"", b"not a database at all", "sqlite-but-not-arbiter"])
def test_restore_refuses_a_file_that_is_not_an_arbiter_database(tmp_path: Path, content: bytes | str) -> None:
    bogus = tmp_path / "bogus.db"
    if content == "sqlite-but-not-arbiter":
        conn = sqlite3.connect(bogus)
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        conn.close()
    else:
        assert isinstance(content, bytes)
        bogus.write_bytes(content)
    target = tmp_path / "target.db"

    result = _arbiter("restore", "--db", str(target), str(bogus))
    assert result.returncode == 2
    assert "not" in result.stderr and "Traceback" not in result.stderr
    assert not target.exists()


def test_backup_of_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    result = _arbiter("backup", "--db", str(tmp_path / "missing.db"), str(tmp_path / "out.db"))
    assert result.returncode == 2 and "no such database file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_backup_does_not_overwrite_a_file_without_force(arbiter_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.db"
    out.write_bytes(b"older backup")
    result = _arbiter("backup", "--db", str(arbiter_db), str(out))
    assert result.returncode == 2 and "--force" in result.stderr
    assert out.read_bytes() == b"older backup"
    assert _arbiter("backup", "--db", str(arbiter_db), str(out), "--force").returncode == 0
    assert _keys_in(out) == set()
