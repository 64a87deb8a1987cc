"""The first minute with a new server: mistakes anyone makes are one line each (exit code 2, what to do),
not tracebacks, and the small things a first user tries (help, Health/List, the demo key) behave."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import backends
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rest_helpers import RestClient
from serverproc import ServerProcess
from test_tls import issue, make_ca

from arbiter.client import Client, InvalidArgumentError, UnauthenticatedError
from arbiter.server.config import load_config

SERVING = health_pb2.HealthCheckResponse.SERVING


def _arbiter(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbiter.server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _one_line_refusal(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]
    return lines[0]


def _refused(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    db = tmp_path / "x.db"
    result = _arbiter("--db", str(db), "--address", "127.0.0.1:0", "--http-address", "off", *args, env=env)
    assert not db.exists()  # refused before touching anything
    return _one_line_refusal(result)


# -- TLS files ---------------------------------------------------------------------------------------


def _pem_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    pem = issue(make_ca(f"{name} CA"), "arbiter server", server=True).pem()
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert.write_bytes(pem.cert)
    key.write_bytes(pem.key)
    return cert, key


def test_a_key_that_does_not_match_the_certificate_is_one_line(tmp_path: Path) -> None:
    cert, _ = _pem_pair(tmp_path, "one")
    _, other_key = _pem_pair(tmp_path, "two")
    line = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(other_key))
    assert "--tls-cert" in line and "--tls-key" in line and "mismatch" in line


def test_files_that_are_not_pem_are_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"\x00\x01 not a certificate")
    line = _refused(tmp_path, "--tls-cert", str(junk), "--tls-key", str(junk))
    assert "not a PEM certificate chain" in line


def test_a_client_ca_that_is_not_pem_is_one_line(tmp_path: Path) -> None:
    cert, key = _pem_pair(tmp_path, "one")
    junk = tmp_path / "ca.pem"
    junk.write_text("nothing to see")
    line = _refused(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(junk))
    assert "--tls-client-ca" in line


# -- the database path -------------------------------------------------------------------------------


def test_a_database_in_a_missing_directory_is_one_line() -> None:
    result = _arbiter("--db", "/nonexistent/dir/x.db", "--address", "127.0.0.1:0", "--http-address", "off")
    line = _one_line_refusal(result, "/nonexistent/dir", "mkdir -p")
    assert "does not exist" in line
    assert not Path("/nonexistent").exists()


def test_a_database_under_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = _arbiter("--db", str(blocker / "x.db"), "--address", "127.0.0.1:0", "--http-address", "off")
    _one_line_refusal(result, str(blocker), "does not exist")


def test_a_database_that_is_a_directory_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "x.db"
    folder.mkdir()
    result = _arbiter("--db", str(folder), "--address", "127.0.0.1:0", "--http-address", "off")
    _one_line_refusal(result, "not a file")


def test_a_database_in_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    # Not even root may create files in sysfs, so this holds whoever runs the tests.
    result = _arbiter("--db", "/sys/x.db", "--address", "127.0.0.1:0", "--http-address", "off")
    _one_line_refusal(result, "cannot create")


# -- the environment and the log level ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "flag"),
    [
        ("ARBITER_MAX_MESSAGE_BYTES", "abc", "--max-message-bytes"),
        ("ARBITER_CUSTOMER_CACHE_SIZE", "1.5", "--customer-cache-size"),
        ("ARBITER_MAX_CONCURRENT_RPCS", "", "--max-concurrent-rpcs"),
        ("ARBITER_RATE_LIMIT", "fast", "--rate-limit"),
    ],
)
def test_an_environment_value_of_the_wrong_type_is_one_line(
    tmp_path: Path, variable: str, value: str, flag: str
) -> None:
    line = _refused(tmp_path, env={variable: value})
    assert f"{variable}={value!r}" in line and flag in line


@pytest.mark.parametrize("given", ["INFO", "Debug", "warning", "ERROR"])
def test_the_log_level_is_read_in_any_case(given: str) -> None:
    assert load_config(["--log-level", given], env={}).log_level == given.lower()
    assert load_config([], env={"ARBITER_LOG_LEVEL": given}).log_level == given.lower()


def test_a_server_starts_with_an_upper_case_log_level(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "x.db", ["--log-level", "INFO"]) as server:
        assert server.health() == SERVING
        assert server.stop() == 0
    assert any(" INFO arbiter.server: serving on" in line for line in server.stderr_lines)


def test_an_unknown_log_level_is_still_refused(tmp_path: Path) -> None:
    line = _refused(tmp_path, env={"ARBITER_LOG_LEVEL": "LOUD"})
    assert "'loud'" in line


# -- keys ---------------------------------------------------------------------------------------------

HINT = "create --tenant default --role admin"


def test_a_new_database_without_keys_says_once_how_to_make_one(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    with ServerProcess(db, auth=True) as server:
        assert server.stop() == 0
    hints = [line for line in server.stderr_lines if HINT in line]
    assert len(hints) == 1
    assert f"arbiter keys --db {backends.database(db)} {HINT}" in hints[0]

    created = _arbiter("keys", "--db", str(backends.database(db)), "create", "--tenant", "default", "--role", "admin")
    assert created.returncode == 0, created.stderr
    with ServerProcess(db, auth=True) as server:
        assert server.stop() == 0
    assert not any(HINT in line for line in server.stderr_lines)


def test_no_hint_without_authentication(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "x.db") as server:
        assert server.stop() == 0
    assert not any(HINT in line for line in server.stderr_lines)


@pytest.mark.parametrize("command", [["list"], ["revoke", "key_0123456789abcdef"]])
def test_keys_list_and_revoke_never_create_a_database(tmp_path: Path, command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARBITER_DB"}
    result = subprocess.run(
        [sys.executable, "-m", "arbiter.server", "keys", *command],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    _one_line_refusal(result, "no database at arbiter.db", "--db")
    missing = tmp_path / "typo.db"
    _one_line_refusal(_arbiter("keys", "--db", str(missing), *command), f"no database at {missing}")
    assert list(tmp_path.iterdir()) == []


def test_keys_create_may_make_the_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    result = _arbiter("keys", "--db", str(db), "create", "--tenant", "acme", "--role", "admin")
    assert result.returncode == 0, result.stderr
    listed = _arbiter("keys", "--db", str(db), "list")
    assert listed.returncode == 0 and "\tacme\tadmin\tvalid\t" in listed.stdout


# -- help, health, stats ------------------------------------------------------------------------------


def test_help_lists_the_sub_commands() -> None:
    result = _arbiter("--help")
    assert result.returncode == 0
    for command in ("arbiter keys", "arbiter backup", "arbiter restore"):
        assert command in result.stdout


def test_health_list_answers_every_service_without_a_traceback(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "x.db") as server:
        with server.channel() as channel:
            answer = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
        statuses = {name: status.status for name, status in answer.statuses.items()}
        assert statuses[""] == SERVING
        assert statuses["arbiter.v1.OfferService"] == SERVING
        assert statuses["arbiter.v1.DecisionService"] == SERVING
        assert server.stop() == 0
    assert "Traceback" not in "".join(server.stderr_lines)


def test_offer_stats_without_an_offer_id_names_the_field(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "x.db", http=True) as server:
        with Client(server.target, tenant="stats") as client, pytest.raises(InvalidArgumentError) as caught:
            client.get_offer_stats("")
        assert [v.field for v in caught.value.field_violations] == ["offerId"]
        assert caught.value.code is grpc.StatusCode.INVALID_ARGUMENT

        answer = RestClient(server.http_url, tenant="stats").get("/api/v1/actions//stats")
        assert answer.status == 400
        assert answer.body["error"]["status"] == "INVALID_ARGUMENT"
        (bad_request,) = [d for d in answer.body["error"]["details"] if d["@type"].endswith("BadRequest")]
        assert [v["field"] for v in bad_request["fieldViolations"]] == ["offerId"]


# -- the demo key -------------------------------------------------------------------------------------

DEMO_LINE = re.compile(r"demo admin API key for tenant 'default' \((new, )?kept in (.+)\): (arb_\S+)")


def _demo_start(db: Path) -> tuple[str, bool]:
    """Start a --demo server with authentication, check its key works, stop it; the key and whether it was new."""
    with ServerProcess(db, ["--demo"], auth=True) as server:
        (line,) = server.stdout_lines
        match = DEMO_LINE.match(line)
        assert match is not None, line
        assert match.group(2) == f"{db}.demo-key"
        secret = match.group(3)
        with Client(server.target, api_key=secret) as client:
            assert client.list_offers().offers  # the demo catalogue, through the demo key
        assert server.stop() == 0
    return secret, match.group(1) is not None


def _works(db: Path, secret: str) -> bool:
    with ServerProcess(db, auth=True) as server, Client(server.target, api_key=secret) as client:
        try:
            client.list_offers()
        except UnauthenticatedError:
            return False
        finally:
            server.stop()
    return True


@pytest.mark.sqlite_only
def test_the_demo_key_is_kept_beside_the_database_and_reused(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first, new = _demo_start(db)
    assert new
    key_file = Path(f"{db}.demo-key")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().strip() == first

    again, new = _demo_start(db)
    assert (again, new) == (first, False)
    listed = _arbiter("keys", "--db", str(db), "list").stdout.splitlines()
    assert len([line for line in listed if line.endswith("\tdemo (make run)")]) == 1


@pytest.mark.sqlite_only
def test_a_revoked_demo_key_is_replaced(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first, _ = _demo_start(db)
    key_id = "key_" + first.split("_")[1]
    assert _arbiter("keys", "--db", str(db), "revoke", key_id).returncode == 0

    second, new = _demo_start(db)
    assert new and second != first
    assert Path(f"{db}.demo-key").read_text().strip() == second


@pytest.mark.sqlite_only
def test_a_demo_key_file_others_can_read_is_not_trusted(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    first, _ = _demo_start(db)
    key_file = Path(f"{db}.demo-key")
    key_file.chmod(0o644)

    second, new = _demo_start(db)
    assert new and second != first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not _works(db, first)  # the exposed one is revoked
    assert _works(db, second)
