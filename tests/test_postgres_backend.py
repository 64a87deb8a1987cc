"""What only the Postgres backend has: start-up checks, migrations, key notifications, outages.

The rest of its behaviour is the whole suite run on it (`ARBITER_TEST_BACKEND=postgres`, tests/backends.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import backends
import pytest
from auth_helpers import cli_create_key, keys_cli
from decide_helpers import decide, make_offer
from grpc_health.v1 import health_pb2
from polling import eventually
from serverproc import ServerProcess, start_refused

from arbiter.client import Client, UnauthenticatedError, UnavailableError
from arbiter.server.storage.postgres.connection import PostgresConnection, server_version_problem
from arbiter.server.storage.postgres.migrations import MIGRATIONS

pytestmark = pytest.mark.postgres_only

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _refusal(db: str, *args: str) -> str:
    """The one line a server on `db` refuses to start with."""
    return start_refused("--db", db, "--redis", backends.redis_url(), *args)


def test_a_refused_connection_is_one_line_without_the_password() -> None:
    line = _refusal("postgresql://postgres:s3cret@127.0.0.1:1/arbiter")
    assert "Connection refused" in line and "--db postgresql://postgres:***@127.0.0.1:1/arbiter" in line
    assert "s3cret" not in line


def test_an_unknown_database_or_user_is_one_line_naming_it() -> None:
    server = backends.postgres()
    assert 'database "nowhere" does not exist' in _refusal(server.url_for("nowhere"))
    stranger = server.url_for("postgres").replace("postgres@", "stranger@")
    assert 'role "stranger" does not exist' in _refusal(stranger)


def test_a_postgres_older_than_15_is_refused_naming_the_version() -> None:
    def server(version: int) -> PostgresConnection:
        return cast(
            PostgresConnection, SimpleNamespace(raw=SimpleNamespace(info=SimpleNamespace(server_version=version)))
        )

    assert server_version_problem(server(150004)) is None
    assert server_version_problem(server(170000)) is None
    assert server_version_problem(server(140011)) == "Postgres 14.11 is too old: Arbiter needs Postgres 15 or newer"


def test_servers_starting_together_on_a_new_database_migrate_it_once(tmp_path: Path) -> None:
    db = backends.database(tmp_path / "fresh.db")
    first, second = ServerProcess(tmp_path / "fresh.db"), ServerProcess(tmp_path / "fresh.db")
    starts = [threading.Thread(target=process.start) for process in (first, second)]
    try:
        for start in starts:
            start.start()
        for start in starts:
            start.join(timeout=60)
        assert first.port and second.port, first.stderr_lines + second.stderr_lines
        applied = backends.query(db, "SELECT name FROM arbiter_migrations ORDER BY name")
        assert applied == [(name,) for name, _ in MIGRATIONS]
        with Client(first.target, tenant="both") as one, Client(second.target, tenant="both") as other:
            offer_id = make_offer(one, name="Made on the first")
            assert [o.id for o in other.iter_offers()] == [offer_id]  # one system of record
    finally:
        for process in (first, second):
            if process.process is not None and process.process.poll() is None:
                process.stop()


def test_keys_the_cli_creates_and_revokes_reach_a_running_server(db_path: Path) -> None:
    with ServerProcess(db_path, auth=True) as server:
        secret = cli_create_key(db_path, "acme", "admin")

        def works() -> bool:
            try:
                with Client(server.target, api_key=secret) as client:
                    client.list_offers()
                return True
            except UnauthenticatedError:
                return False

        eventually(works, "a key made by the CLI is honoured")
        key_id = secret.split("_")[1]
        assert keys_cli(db_path, "revoke", f"key_{key_id}").returncode == 0
        eventually(lambda: not works(), "a key revoked by the CLI is refused")


def test_an_outage_fails_calls_fast_and_serving_resumes_when_postgres_returns(tmp_path: Path) -> None:
    """A Postgres of its own, stopped and started again under a running server."""
    with backends.PostgresServer(tmp_path / "pg") as postgres:
        url = postgres.create_database("outage")
        with ServerProcess(tmp_path / "unused.db", url=url) as server, Client(server.target, tenant="o") as client:
            offer_id = make_offer(client, name="Before")
            assert server.health() == SERVING
            postgres.stop()
            eventually(lambda: server.health() == NOT_SERVING, "health says NOT_SERVING while Postgres is away")
            with pytest.raises(UnavailableError, match="database cannot be reached"):
                make_offer(client, name="While down")
            with pytest.raises(UnavailableError, match="database cannot be reached"):
                client.list_offers()
            assert client.get_offer(offer_id).name == "Before"  # the catalogue is served from memory
            assert [o.offer_id for o in decide(client).offers] == [offer_id]  # so is Decide without recording
            postgres.start()
            eventually(lambda: server.health() == SERVING, "health says SERVING once Postgres is back")
            after: list[str] = []

            def created() -> bool:
                try:
                    after.append(make_offer(client, name=f"After {uuid.uuid4().hex[:6]}"))
                except UnavailableError:
                    return False
                return True

            eventually(created, "writes succeed again once Postgres is back, without a restart")
            assert {o.id for o in client.iter_offers()} == {offer_id, *after}


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _postgres_sessions(postmaster: int, database: str) -> list[int]:
    """The postmaster and the processes serving connections to `database` (not its own background workers)."""
    sessions = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = _parent(int(stat.parent.name))
            title = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile
            continue
        if parent == postmaster and f" {database} " in title:
            sessions.append(int(stat.parent.name))
    return [postmaster, *sessions]


def test_a_postgres_that_stops_answering_turns_health_not_serving_until_it_answers_again(tmp_path: Path) -> None:
    """Connections stay open but nothing answers (the server's processes stopped): the probe's wait is bounded."""
    with backends.PostgresServer(tmp_path / "pg") as postgres:
        url = postgres.create_database("hung")
        with ServerProcess(tmp_path / "unused.db", url=url) as server:
            assert server.health() == SERVING
            assert postgres.pid is not None
            frozen = _postgres_sessions(postgres.pid, "hung")
            assert len(frozen) > 2, frozen  # the postmaster, and at least the writer's and the probe's sessions
            try:
                for pid in frozen:
                    os.kill(pid, signal.SIGSTOP)
                eventually(lambda: server.health() == NOT_SERVING, "NOT_SERVING while Postgres does not answer")
            finally:
                # runuser, which started the postmaster, stops itself when its child stops: continue it too.
                for pid in (*frozen, _parent(postgres.pid)):
                    os.kill(pid, signal.SIGCONT)
            eventually(lambda: server.health() == SERVING, "SERVING once Postgres answers again")


def test_backup_and_restore_point_to_postgres_tools_for_a_postgres_url(tmp_path: Path) -> None:
    url = backends.postgres().url_for("postgres")
    for command in (
        ["backup", "--db", url, str(tmp_path / "out.db")],
        ["restore", "--db", url, str(tmp_path / "b.db")],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "arbiter.server", *command], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 2
        assert "on Postgres use pg_dump and pg_restore" in result.stderr
    assert not (tmp_path / "out.db").exists()
