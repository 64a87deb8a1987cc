"""Helpers for the security tests: a server WITH authentication, keys of every kind, clients per role.

Test modules load this file as a plugin (`pytest_plugins = ["auth_helpers"]`), so its session fixtures
are shared by every security test module of a run: one authenticating server, one set of keys.
"""

from __future__ import annotations

import base64
import pkgutil
import re
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path

import backends
import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from rpc_calls import method_caller
from serverproc import ServerProcess

import arbiter.v1
from arbiter.client import ArbiterError, Client, error_from_rpc
from arbiter.server.domain.access import ApiKey, Role, new_secret, secret_sha256
from arbiter.server.storage.direct import open_directly
from arbiter.server.storage.sql.key_store import create_key_directly

# "arb_", the key id's 16 hex digits, "_", and 43 base64url characters (256 random bits).
SECRET_PATTERN = re.compile(r"arb_([0-9a-f]{16})_[A-Za-z0-9_-]{43}")
KEY_ID_PATTERN = re.compile(r"key_[0-9a-f]{16}")
CLI_TIMEOUT = 60.0

Metadata = tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------
# Tenants, secrets, metadata
# --------------------------------------------------------------------------


def new_tenant(prefix: str = "sec") -> str:
    """A fresh tenant id (tenants exist implicitly)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def key_id_of(secret: str) -> str:
    """The id ("key_…") a well-formed secret names."""
    match = SECRET_PATTERN.fullmatch(secret)
    assert match is not None, f"not an Arbiter secret: {secret!r}"
    return "key_" + match.group(1)


def random_secret() -> str:
    """A well-formed secret that no server issued."""
    body = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return f"arb_{secrets.token_hex(8)}_{body}"


def forged_secret(real: str) -> str:
    """A real key's id with other random bits: names an existing key, but is not its secret."""
    return real[: len("arb_") + 16 + 1] + random_secret()[-43:]


def bearer(secret: str) -> Metadata:
    return (("authorization", f"Bearer {secret}"),)


# --------------------------------------------------------------------------
# The keys CLI
# --------------------------------------------------------------------------


def keys_cli_args(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "arbiter.server", "keys", "--db", str(backends.database(db)), *args]


def keys_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `arbiter keys --db DB ARGS…`; never raises on a non-zero exit (the caller asserts it)."""
    return subprocess.run(keys_cli_args(db, *args), capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False)


def create_args(tenant: str, role: str, name: str = "", expires_in_days: float | None = None) -> list[str]:
    args = ["create", "--tenant", tenant, "--role", role]
    if name:
        args += ["--name", name]
    if expires_in_days is not None:
        args += ["--expires-in-days", repr(expires_in_days)]
    return args


def _secret_from(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"keys create failed ({result.returncode}): {result.stderr}"
    secret = result.stdout.strip()
    assert SECRET_PATTERN.fullmatch(secret), f"keys create printed {result.stdout!r}"
    return secret


def cli_create_key(db: Path, tenant: str, role: str, *, name: str = "", expires_in_days: float | None = None) -> str:
    """Create a key with the CLI; returns the secret it printed."""
    return _secret_from(keys_cli(db, *create_args(tenant, role, name, expires_in_days)))


def cli_create_keys(db: Path, specs: Sequence[tuple[str, str]]) -> list[str]:
    """Create several keys ((tenant, role) each) with CLI processes running side by side; their secrets.

    The database must exist already (the first process to open a new one migrates it).
    """
    processes = [
        subprocess.Popen(
            keys_cli_args(db, *create_args(tenant, role)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for tenant, role in specs
    ]
    secrets_ = []
    for process, spec in zip(processes, specs, strict=True):
        stdout, stderr = process.communicate(timeout=CLI_TIMEOUT)
        assert process.returncode is not None
        secrets_.append(_secret_from(subprocess.CompletedProcess(spec, process.returncode, stdout, stderr)))
    return secrets_


def expired_key(db: Path, tenant: str, role: str, *, name: str = "expired") -> str:
    """A key that expired an hour ago, written straight into the database with explicit instants.

    (Nothing waits for an expiry: a key cannot be created already expired through the API or
    the CLI, so the record is made here, as the CLI would make it an hour and a half ago.)
    """
    now = datetime.now(UTC)
    key_id, secret = new_secret()
    created = now - timedelta(minutes=90)
    conn = open_directly(backends.database(db))
    try:
        key = ApiKey(key_id, tenant, name, Role(role), secret_sha256(secret), created, now - timedelta(hours=1))
        create_key_directly(conn, key)
    finally:
        conn.close()
    return secret


# --------------------------------------------------------------------------
# Keys made through ApiKeyService
# --------------------------------------------------------------------------


def mint(admin: Client, role: str, *, name: str = "", expires_at: datetime | None = None) -> str:
    """A new key of the admin's tenant, made through ApiKeyService; its secret."""
    return admin.create_api_key(role, name=name, expires_at=expires_at).secret


def revoked_key(admin: Client, role: str = "admin") -> str:
    """A key that was valid and has been revoked; its secret."""
    secret = mint(admin, role, name="to be revoked")
    admin.revoke_api_key(key_id_of(secret))
    return secret


# --------------------------------------------------------------------------
# Every RPC of every Arbiter service, from the generated descriptors
# --------------------------------------------------------------------------


def arbiter_methods() -> list[MethodDescriptor]:
    """Every method of every service declared in the arbiter.v1 protos (a new RPC shows up here by itself)."""
    methods: list[MethodDescriptor] = []
    for module_info in sorted(pkgutil.iter_modules(arbiter.v1.__path__), key=lambda m: m.name):
        if not module_info.name.endswith("_pb2"):
            continue
        module = import_module(f"arbiter.v1.{module_info.name}")
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.extend(service.methods)
    return methods


def method_label(method: MethodDescriptor) -> str:
    return f"{method.containing_service.name}.{method.name}"


def method_path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def empty_request(method: MethodDescriptor) -> Message:
    message: Message = GetMessageClass(method.input_type)()
    return message


@dataclass(frozen=True)
class Answer:
    """How a call ended: OK, or a status code with the server's reason and message."""

    code: grpc.StatusCode
    reason: str = ""
    message: str = ""


def call(
    channel: grpc.Channel,
    method: MethodDescriptor,
    metadata: Metadata = (),
    request: Message | None = None,
    timeout: float = 5.0,
) -> Answer:
    """Send one request (the empty request unless given) to `method` over `channel`."""
    response_class = GetMessageClass(method.output_type)
    stub = method_caller(
        channel,
        method,
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response_class.FromString,
    )
    try:
        stub(empty_request(method) if request is None else request, metadata=metadata, timeout=timeout)
    except grpc.RpcError as exc:
        error: ArbiterError = error_from_rpc(exc)
        return Answer(error.code, error.reason, error.message)
    return Answer(grpc.StatusCode.OK)


# --------------------------------------------------------------------------
# Fixtures: the authenticating server and its keys
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server WITH authentication (no --insecure-no-auth), shared by the security tests."""
    db = tmp_path_factory.mktemp("auth-server") / "arbiter.db"
    with ServerProcess(db, auth=True) as process:
        yield process


@pytest.fixture(scope="session")
def auth_channel(auth_server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(auth_server.target) as channel:
        yield channel


@dataclass(frozen=True)
class Keyring:
    """One tenant's keys of every kind, on the auth server."""

    tenant: str
    admin: str
    editor: str
    decide: str
    revoked: str
    expired: str

    def of_role(self, role: str) -> str:
        secret: str = getattr(self, role)
        return secret


@pytest.fixture(scope="session")
def keyring(auth_server: ServerProcess) -> Keyring:
    """A tenant whose admin key comes from the CLI and whose other keys come from ApiKeyService."""
    tenant = new_tenant("matrix")
    admin_secret = cli_create_key(auth_server.db, tenant, "admin", name="bootstrap")
    with Client(auth_server.target, api_key=admin_secret) as admin:
        return Keyring(
            tenant=tenant,
            admin=admin_secret,
            editor=mint(admin, "editor", name="editor"),
            decide=mint(admin, "decide", name="decide"),
            revoked=revoked_key(admin),
            expired=expired_key(auth_server.db, tenant, "admin"),
        )


@pytest.fixture(scope="session")
def other_admin(auth_server: ServerProcess) -> str:
    """The admin key (made with the CLI) of a second tenant on the auth server."""
    return cli_create_key(auth_server.db, new_tenant("other"), "admin", name="other bootstrap")


def client_for(server: ServerProcess, secret: str, *, tenant: str | None = None) -> Client:
    """A client of `server` authenticating with `secret` (and sending x-tenant-id `tenant` if given)."""
    return Client(server.target, api_key=secret, tenant=tenant)
