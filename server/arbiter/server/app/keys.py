"""API keys' use cases: create, read, list, revoke (application layer, admin only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..domain.access import (
    ApiKey,
    Permission,
    Principal,
    Role,
    check_key,
    key_id_of,
    key_violations,
    new_secret,
    require,
    secret_sha256,
    usable,
)
from ..domain.errors import Decoded, InvalidArgument, Unauthenticated, raise_if_invalid
from ..domain.resources import Kind, not_found
from ..domain.timekeeping import Clock
from .paging import Page, PageRequest, fetch_page
from .ports import KeyStore


@dataclass(frozen=True, slots=True)
class KeyRequest:
    """What CreateApiKey asks for."""

    name: str = ""
    role: Role | None = None
    expires_at: datetime | None = None


class KeyUseCases:
    """The caller's tenant's API keys."""

    def __init__(self, keys: KeyStore, clock: Clock) -> None:
        self._keys = keys
        self._clock = clock

    async def create(self, principal: Principal, decoded: Decoded[KeyRequest]) -> tuple[ApiKey, str]:
        """A new key and its secret (shown this once; only its SHA-256 is stored)."""
        require(principal, Permission.KEYS)
        wanted = decoded.value
        now = self._clock.now()
        raise_if_invalid(decoded.violations, key_violations(wanted.name, wanted.role, wanted.expires_at, now))
        assert wanted.role is not None
        key_id, secret = new_secret()
        key = ApiKey(key_id, principal.tenant, wanted.name, wanted.role, secret_sha256(secret), now, wanted.expires_at)
        await self._keys.insert(key)
        return key, secret

    def any_usable(self) -> bool:
        """Whether some tenant has a key that is neither revoked nor expired (the start-up hint)."""
        now = self._clock.now()
        return any(usable(key, now) for key in self._keys.all_keys())

    def usable_key_of(self, secret: str, tenant: str, role: Role) -> ApiKey | None:
        """The stored key `secret` belongs to, if it is still valid for `tenant` with `role` (the demo key)."""
        key_id = key_id_of(secret)
        key = self._keys.lookup(key_id) if key_id else None
        try:
            key = check_key(key, secret, self._clock.now())
        except Unauthenticated:
            return None
        return key if key.tenant == tenant and key.role is role else None

    def usable_named(self, tenant: str, name: str) -> list[ApiKey]:
        """The tenant's keys labelled `name` that still work (the demo key's predecessors)."""
        now = self._clock.now()
        return [k for k in self._keys.all_keys() if k.tenant == tenant and k.name == name and usable(k, now)]

    def get(self, principal: Principal, key_id: str) -> ApiKey:
        require(principal, Permission.KEYS)
        key = self._keys.lookup(key_id)
        if key is None or key.tenant != principal.tenant:
            raise not_found(Kind.API_KEY, key_id)
        return key

    async def list_keys(self, principal: Principal, page: PageRequest) -> Page[ApiKey]:
        require(principal, Permission.KEYS)
        tenant = principal.tenant
        return await fetch_page(
            page, tenant, "api_keys", [], lambda after, limit: self._keys.list_keys(tenant, after, limit)
        )

    async def revoke(self, principal: Principal, key_id: str) -> ApiKey:
        """Revoking a revoked key changes nothing."""
        require(principal, Permission.KEYS)
        if not key_id:
            raise InvalidArgument.single("id", "is required")
        key = await self._keys.revoke(principal.tenant, key_id, self._clock.now())
        if key is None:
            raise not_found(Kind.API_KEY, key_id)
        return key
