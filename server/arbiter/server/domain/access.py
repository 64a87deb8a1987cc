"""API keys, roles and permissions (domain layer)."""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from .errors import FieldViolation, InvalidArgument, PermissionDenied, Unauthenticated, ViolationCollector

KEY_ID_PREFIX = "key_"
SECRET_PREFIX = "arb_"
_SECRET_PATTERN = re.compile(r"^arb_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
TENANT_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DEFAULT_TENANT = "default"


def tenant_id_problem(value: str) -> str | None:
    """Why `value` is not a tenant id (None when it is one)."""
    if TENANT_ID_PATTERN.match(value):
        return None
    return f"tenant ids match [a-z0-9][a-z0-9_-]{{0,63}}, got {value!r}"


def check_tenant_id(value: str, field: str) -> str:
    """The tenant id, or InvalidArgument naming `field`."""
    problem = tenant_id_problem(value)
    if problem is not None:
        raise InvalidArgument.single(field, problem)
    return value


class Role(enum.Enum):
    ADMIN = "admin"
    EDITOR = "editor"
    DECIDE = "decide"


class Permission(enum.Enum):
    """What a call needs; each RPC asks for exactly one."""

    CATALOG_WRITE = "change offers, categories, sub-categories and contact policies"
    CATALOG_READ = "read categories, sub-categories and contact policies"
    OFFER_READ = "read offers"
    DECIDE = "decide and record outcomes"
    STATS = "read offer stats and kept decisions, and ask why an offer is not shown"
    SETTINGS_READ = "read tenant settings"
    SETTINGS_WRITE = "change tenant settings"
    KEYS = "manage API keys"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.EDITOR: frozenset(
        {
            Permission.CATALOG_WRITE,
            Permission.CATALOG_READ,
            Permission.OFFER_READ,
            Permission.STATS,
            Permission.SETTINGS_READ,
        }
    ),
    Role.DECIDE: frozenset({Permission.OFFER_READ, Permission.DECIDE, Permission.STATS}),
}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record: never the secret, only its SHA-256."""

    id: str
    tenant: str
    name: str
    role: Role
    secret_sha256: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a call acts as: a tenant, a role, and the key (None when authentication is off)."""

    tenant: str
    role: Role
    key_id: str | None = None


MAX_KEY_NAME_LENGTH = 255


def key_violations(name: str, role: Role | None, expires_at: datetime | None, now: datetime) -> list[FieldViolation]:
    """Every problem of a key about to be created."""
    v = ViolationCollector()
    if role is None:
        v.add("role", "is required: admin, editor or decide")
    if len(name) > MAX_KEY_NAME_LENGTH:
        v.add("name", f"must be at most {MAX_KEY_NAME_LENGTH} characters")
    if expires_at is not None and expires_at <= now:
        v.add("expiresAt", f"must be in the future, got {expires_at.isoformat()}")
    return v.violations


def new_secret() -> tuple[str, str]:
    """A fresh key: (key id, secret). The secret carries 256 random bits."""
    hex_id = secrets.token_hex(8)
    random_part = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return KEY_ID_PREFIX + hex_id, f"{SECRET_PREFIX}{hex_id}_{random_part}"


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The key id a well-formed secret names, or None for anything else."""
    match = _SECRET_PATTERN.match(secret)
    return KEY_ID_PREFIX + match.group(1) if match else None


def usable(key: ApiKey, now: datetime) -> bool:
    """Neither revoked nor expired at `now`."""
    return key.revoked_at is None and (key.expires_at is None or key.expires_at > now)


def check_key(key: ApiKey | None, secret: str, now: datetime) -> ApiKey:
    """The key if `secret` is its valid secret now; raises Unauthenticated otherwise.

    The hashes are compared in constant time.
    """
    if key is None or not hmac.compare_digest(key.secret_sha256, secret_sha256(secret)):
        raise Unauthenticated("unknown API key", reason="KEY_UNKNOWN")
    if key.revoked_at is not None:
        raise Unauthenticated(f"API key {key.id} was revoked", reason="KEY_REVOKED")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthenticated(f"API key {key.id} expired at {key.expires_at.isoformat()}", reason="KEY_EXPIRED")
    return key


def require(principal: Principal, permission: Permission) -> None:
    """Raise PermissionDenied unless the principal's role grants `permission` (api_keys.proto's roles table)."""
    if permission not in ROLE_PERMISSIONS[principal.role]:
        raise PermissionDenied(
            f"a key with role {principal.role.value} may not {permission.value}",
            reason="ROLE_NOT_ALLOWED",
            metadata={"role": principal.role.value},
        )
