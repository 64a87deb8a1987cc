"""scripts/local_services.py: real PostgreSQL and Redis servers on loopback, stopped and started again."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.local_services import PostgresServer, RedisServer, ensure_postgres_installed

COMMAND_TIMEOUT = 30


def psql(url: str, sql: str) -> str:
    """Run `sql` with psql over TCP against `url` and return its unaligned output."""
    result = subprocess.run(
        [str(ensure_postgres_installed() / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def redis_ping(port: int) -> bytes:
    """PING a Redis on 127.0.0.1:port over a raw socket; b"" when nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64)
    except OSError:
        return b""


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_postgres_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    with PostgresServer(tmp_path / "pg") as pg:
        assert pg.url == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        url = pg.create_database("arbiter_test")
        assert url == pg.url_for("arbiter_test")
        assert pg.create_database("arbiter_test") == url  # already there: no error
        assert psql(url, "SELECT 1") == "1"
        psql(url, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")
        port, first_pid = pg.port, pg.pid
        assert first_pid is not None

        pg.stop()
        assert pg.pid is None
        assert is_gone(first_pid)
        pg.stop()  # idempotent

        pg.start()
        assert pg.port == port
        assert pg.pid not in {None, first_pid}
        assert psql(url, "SELECT n FROM kept") == "42"

        pg.drop_database("arbiter_test")
        assert psql(pg.url, "SELECT count(*) FROM pg_database WHERE datname = 'arbiter_test'") == "0"
        second_pid = pg.pid
    assert second_pid is not None and is_gone(second_pid)


@pytest.mark.parametrize("name", ["", "Arbiter", "a-b", "x; DROP DATABASE postgres", "a" * 64])
def test_database_names_are_checked_before_any_sql(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        PostgresServer(tmp_path / "pg").create_database(name)


def test_redis_answers_ping_after_a_restart(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as redis:
        assert redis.url == f"redis://127.0.0.1:{redis.port}/0"
        assert redis_ping(redis.port) == b"+PONG\r\n"
        port, first_pid = redis.port, redis.pid
        assert first_pid is not None

        redis.restart()
        assert redis.port == port
        assert redis.pid not in {None, first_pid}
        assert is_gone(first_pid)
        assert redis_ping(redis.port) == b"+PONG\r\n"

        second_pid = redis.pid
        assert second_pid is not None
        redis.stop()
        assert redis.pid is None
        assert is_gone(second_pid)
        assert redis_ping(port) == b""
        redis.stop()  # idempotent
