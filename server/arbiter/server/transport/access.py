"""Who a call acts as: API-key authentication, roles, and per-tenant rate limits (transport layer)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

import grpc

from ..domain.access import Permission, Principal, Role, Unauthenticated, check_key, key_id_of, require
from ..domain.errors import InvalidArgument, ResourceExhausted
from ..storage.api_keys import ApiKeyRepository

TENANT_HEADER = "x-tenant-id"
DEFAULT_TENANT = "default"
_TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_BEARER = re.compile(r"^bearer\s+(\S+)\s*$", re.IGNORECASE)

CURRENT_PRINCIPAL: ContextVar[Principal] = ContextVar("arbiter_principal")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per tenant: `rate` calls a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, tenant: str) -> None:
        """Spend one token of the tenant's bucket; raise ResourceExhausted with a retry delay when empty."""
        now = self._clock()
        bucket = self._buckets.get(tenant)
        if bucket is None:
            bucket = self._buckets[tenant] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = (1.0 - bucket.tokens) / self.rate
        raise ResourceExhausted(
            f"tenant {tenant} is over its rate limit of {self.rate:g} calls/s; retry in {wait * 1000:.0f} ms",
            reason="RATE_LIMITED",
            metadata={"retryAfterMs": str(max(1, round(wait * 1000)))},
        )


class AccessControl:
    """Authenticates each call and checks its permission; `keys` None means authentication is off."""

    def __init__(
        self,
        keys: ApiKeyRepository | None,
        clock: Callable[[], datetime],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._keys = keys
        self._clock = clock
        self._limiter = limiter

    def authorize(self, context: grpc.aio.ServicerContext, permission: Permission) -> Principal:
        principal = self._authenticate(context.invocation_metadata() or ())
        require(principal, permission)
        if self._limiter is not None:
            self._limiter.take(principal.tenant)
        return principal

    def _authenticate(self, metadata: tuple[tuple[str, str | bytes], ...]) -> Principal:
        authorization = tenant = None
        for name, value in metadata:
            if name == "authorization":
                authorization = value
            elif name == TENANT_HEADER:
                tenant = value
        if self._keys is None:  # --insecure-no-auth: the tenant is whatever the caller names
            return Principal(_tenant(tenant), Role.ADMIN)
        if not isinstance(authorization, str):
            raise Unauthenticated(
                "this call needs an API key: send the metadata 'authorization: Bearer arb_…'", reason="KEY_MISSING"
            )
        match = _BEARER.match(authorization)
        if match is None:
            raise Unauthenticated("the authorization metadata must be 'Bearer <API key>'", reason="KEY_MALFORMED")
        secret = match.group(1)
        key_id = key_id_of(secret)
        key = check_key(self._keys.lookup(key_id) if key_id else None, secret, self._clock())
        # The key's tenant is the call's tenant, whatever x-tenant-id says.
        return Principal(key.tenant, key.role, key.id)


def _tenant(value: str | bytes | None) -> str:
    if value is None:
        return DEFAULT_TENANT
    if not isinstance(value, str) or not _TENANT_PATTERN.match(value):
        raise InvalidArgument.single(TENANT_HEADER, f"tenant ids match [a-z0-9][a-z0-9_-]{{0,63}}, got {value!r}")
    return value


def current_principal() -> Principal:
    return CURRENT_PRINCIPAL.get()
