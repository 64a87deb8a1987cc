"""The keys CLI (`python -m arbiter.server keys --db PATH create|list|revoke`), with and without a server running.

Issue 6, item 1: the CLI bootstraps keys straight in the database, with or without a running server; a
running server honours what it did on its next call. `create` prints the secret (shown once, stored only as
a hash), `list` never shows one, a bad tenant id exits 2 with a message.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from inprocess import InProcessServer
from serverproc import ServerProcess

from arbiter.client import Client, PermissionDeniedError, UnauthenticatedError

pytest.register_assert_rewrite("auth_helpers")  # before its import: it is also loaded as a plugin below
from auth_helpers import (  # noqa: E402
    SECRET_PATTERN,
    cli_create_key,
    cli_create_keys,
    client_for,
    create_args,
    expired_key,
    key_id_of,
    keys_cli,
    keys_cli_args,
    mint,
    new_tenant,
)

pytest_plugins = ["auth_helpers"]


@dataclass(frozen=True)
class Listed:
    """One line of `keys list`: id, tenant, role, state, name (tab-separated)."""

    id: str
    tenant: str
    role: str
    state: str
    name: str


def cli_list(db: Path) -> tuple[dict[str, Listed], str]:
    """`keys list` parsed by key id, and its whole output (stdout and stderr)."""
    result = keys_cli(db, "list")
    assert result.returncode == 0, result.stderr
    rows = [Listed(*line.split("\t")) for line in result.stdout.splitlines()]
    by_id = {row.id: row for row in rows}
    assert len(by_id) == len(rows), "a key is listed twice"
    return by_id, result.stdout + result.stderr


def db_bytes(db: Path) -> bytes:
    """The database file and its WAL and shared-memory companions, concatenated."""
    return b"".join(path.read_bytes() for path in sorted(db.parent.glob(db.name + "*")))


@pytest.fixture(scope="module")
def offline_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database that no server ever opens, made by the CLI's first create."""
    db = tmp_path_factory.mktemp("keys-offline") / "arbiter.db"
    cli_create_key(db, "offline-first", "admin", name="first")
    return db


@dataclass(frozen=True)
class LiveServer:
    process: ServerProcess
    tenant: str
    admin: str  # made with the CLI before the server started


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server WITH authentication on a database the CLI bootstrapped before it started."""
    db = tmp_path_factory.mktemp("keys-live") / "arbiter.db"
    tenant = new_tenant("cli")
    admin = cli_create_key(db, tenant, "admin", name="bootstrap")
    with ServerProcess(db, auth=True) as process:
        yield LiveServer(process, tenant, admin)


# --------------------------------------------------------------------------
# Without a server
# --------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_create_prints_only_a_secret_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    assert not db.exists()

    # The spelling: `arbiter keys create --tenant acme --role admin [--db PATH]`.
    result = subprocess.run(
        [sys.executable, "-m", "arbiter.server", "keys", *create_args("acme", "admin", name="ops"), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    secret = result.stdout.removesuffix("\n")
    assert result.stdout == secret + "\n"  # the secret, alone on stdout
    assert SECRET_PATTERN.fullmatch(secret), result.stdout
    key_id = key_id_of(secret)
    assert key_id in result.stderr
    assert "acme" in result.stderr and "admin" in result.stderr
    assert db.exists()
    stored = db_bytes(db)
    assert key_id.encode() in stored
    assert secret.encode() not in stored
    assert secret[-43:].encode() not in stored
    listed, _ = cli_list(db)
    assert listed[key_id] == Listed(key_id, "acme", "admin", "valid", "ops")


def _run_side_by_side(db: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """Run several `keys` commands on `db` at once; their results, in order."""
    processes = [
        subprocess.Popen(keys_cli_args(db, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args in commands
    ]
    results = []
    for args, process in zip(commands, processes, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode is not None
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def test_list_shows_id_tenant_role_and_state_and_never_a_secret(offline_db: Path) -> None:
    tenant_a, tenant_b = "offline-a", "z" + "9" * 63  # the longest tenant id
    expired = expired_key(offline_db, tenant_b, "decide", name="short-lived")
    later = keys_cli(offline_db, *create_args(tenant_b, "decide", "a day", expires_in_days=1.0))
    expiring = _secret(later)
    admin, editor, doomed = cli_create_keys(
        offline_db, [(tenant_a, "admin"), (tenant_b, "editor"), (tenant_a, "decide")]
    )
    assert len({key_id_of(s) for s in (expired, admin, editor, doomed)}) == 4

    revoked = keys_cli(offline_db, "revoke", key_id_of(doomed))
    assert revoked.returncode == 0, revoked.stderr
    assert key_id_of(doomed) in revoked.stderr
    again, unknown = _run_side_by_side(offline_db, [["revoke", key_id_of(doomed)], ["revoke", "key_0123456789abcdef"]])
    assert again.returncode == 0, again.stderr  # revoking a revoked key changes nothing
    assert unknown.returncode != 0
    assert "key_0123456789abcdef" in unknown.stderr

    listed, output = cli_list(offline_db)

    assert listed[key_id_of(admin)] == Listed(key_id_of(admin), tenant_a, "admin", "valid", "")
    assert listed[key_id_of(editor)] == Listed(key_id_of(editor), tenant_b, "editor", "valid", "")
    assert listed[key_id_of(doomed)] == Listed(key_id_of(doomed), tenant_a, "decide", "revoked", "")
    assert listed[key_id_of(expired)] == Listed(key_id_of(expired), tenant_b, "decide", "expired", "short-lived")
    assert listed[key_id_of(expiring)] == Listed(key_id_of(expiring), tenant_b, "decide", "valid", "a day")
    assert "key_0123456789abcdef" not in listed
    assert "arb_" not in output
    for secret in (admin, editor, doomed, expired, expiring):
        assert secret[-43:] not in output


BAD_TENANTS = ["Acme", "-acme", "", "a" * 65, "acme/../x"]


def test_a_bad_create_exits_2_with_a_message_and_creates_nothing(offline_db: Path) -> None:
    before, _ = cli_list(offline_db)
    bad_tenants = [["create", f"--tenant={tenant}", "--role", "admin"] for tenant in BAD_TENANTS]
    others = [create_args("acme", "owner"), create_args("acme", "admin", expires_in_days=-1.0)]

    results = _run_side_by_side(offline_db, [*bad_tenants, *others])

    for tenant, result in zip(BAD_TENANTS, results, strict=False):
        assert result.returncode == 2, (tenant, result)
        assert result.stdout == "", tenant  # no secret
        assert "tenant ids match" in result.stderr and repr(tenant) in result.stderr, (tenant, result.stderr)
    bad_role, past = results[len(BAD_TENANTS) :]
    assert (bad_role.returncode, bad_role.stdout) == (2, "")
    assert "invalid choice" in bad_role.stderr and "owner" in bad_role.stderr
    assert (past.returncode, past.stdout) == (2, "")
    assert "must be in the future" in past.stderr
    assert cli_list(offline_db)[0] == before


# --------------------------------------------------------------------------
# Against a running server's database
# --------------------------------------------------------------------------


def test_a_key_made_before_the_server_started_works(live: LiveServer) -> None:
    with client_for(live.process, live.admin) as admin:
        assert admin.get_tenant_settings().tenant_id == live.tenant
        assert admin.list_api_keys().api_keys[0].name == "bootstrap"


def test_a_key_made_while_the_server_runs_works_on_the_next_call(live: LiveServer) -> None:
    fresh_tenant = new_tenant("cli-new")
    decide, admin = cli_create_keys(live.process.db, [(live.tenant, "decide"), (fresh_tenant, "admin")])

    with client_for(live.process, decide) as decider:
        decider.list_offers()
        with pytest.raises(PermissionDeniedError):
            decider.create_offer({"name": "not for a decide key"})
    with client_for(live.process, admin) as newcomer:
        assert newcomer.get_tenant_settings().tenant_id == fresh_tenant
        assert [k.id for k in newcomer.list_api_keys().api_keys] == [key_id_of(admin)]


def test_revoking_with_the_cli_stops_a_key_on_the_next_call(live: LiveServer) -> None:
    with client_for(live.process, live.admin) as admin:
        secret = mint(admin, "editor", name="made by the api")
        with client_for(live.process, secret) as editor:
            editor.list_categories()

            result = keys_cli(live.process.db, "revoke", key_id_of(secret))
            assert result.returncode == 0, result.stderr

            with pytest.raises(UnauthenticatedError) as info:
                editor.list_categories()
        assert info.value.reason == "KEY_REVOKED"
        assert admin.get_api_key(key_id_of(secret)).HasField("revoked_at")


def test_the_cli_lists_keys_made_through_the_api(live: LiveServer) -> None:
    name = f"api key {uuid.uuid4().hex[:6]}"
    with client_for(live.process, live.admin) as admin:
        secret = mint(admin, "decide", name=name)
    listed, output = cli_list(live.process.db)
    assert listed[key_id_of(secret)] == Listed(key_id_of(secret), live.tenant, "decide", "valid", name)
    assert secret[-43:] not in output


def test_a_cli_key_with_an_expiry_stops_working_at_that_instant(tmp_path: Path) -> None:
    # An in-process server whose clock the test sets: nothing waits for the expiry to come.
    db = tmp_path / "arbiter.db"
    with InProcessServer(db) as server:
        tenant = new_tenant("cli-expiry")
        expires_at = (server.clock.now() + timedelta(hours=2)).replace(microsecond=0)
        result = keys_cli(db, *create_args(tenant, "decide"), "--expires-at", expires_at.isoformat())
        secret = _secret(result)
        key_id = key_id_of(secret)
        with client_for_target(server.target, secret) as client:
            client.list_offers()
            assert cli_list(db)[0][key_id].state == "valid"
            server.clock.set(expires_at - timedelta(seconds=1))
            client.list_offers()
            server.clock.set(expires_at)
            with pytest.raises(UnauthenticatedError) as info:
                client.list_offers()
    assert info.value.reason == "KEY_EXPIRED"


def test_expires_at_and_expires_in_days_exclude_each_other(offline_db: Path) -> None:
    result = keys_cli(
        offline_db, *create_args("acme", "admin", expires_in_days=1.0), "--expires-at", "2099-01-01T00:00:00Z"
    )
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def _secret(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert SECRET_PATTERN.fullmatch(secret), result.stdout
    return secret


def client_for_target(target: str, secret: str) -> Client:
    return Client(target, api_key=secret)
