"""Who a call acts as: API-key authentication and per-tenant rate limits, for every front door (application layer).

A front door hands over what the caller sent (the authorization value, the
tenant header) as `Credentials`; `Authenticator.authenticate` answers with the
`Principal` the use cases authorise, or raises. What each role may do is
checked by the use cases themselves (domain.access.require).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..domain.access import DEFAULT_TENANT, Principal, Role, check_key, check_tenant_id, key_id_of
from ..domain.errors import ResourceExhausted, Unauthenticated
from ..domain.timekeeping import Clock
from .ports import KeyStore

TENANT_HEADER = "x-tenant-id"
_BEARER = re.compile(r"^bearer\s+(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a caller presented: the raw authorization value ("Bearer arb_…") and tenant header, if any."""

    authorization: str | None = None
    tenant: str | None = None
    api_key: str | None = None  # a bare key (HTTP's X-API-Key), in place of authorization


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


class Authenticator:
    """Turns credentials into a principal; `keys` None means authentication is off (loopback only)."""

    def __init__(self, keys: KeyStore | None, clock: Clock, limiter: RateLimiter | None = None) -> None:
        self._keys = keys
        self._clock = clock
        self._limiter = limiter

    def authenticate(self, credentials: Credentials) -> Principal:
        """The caller's principal (rate limit counted), or Unauthenticated / InvalidArgument / ResourceExhausted."""
        principal = self._principal(credentials)
        if self._limiter is not None:
            self._limiter.take(principal.tenant)
        return principal

    def _principal(self, credentials: Credentials) -> Principal:
        if self._keys is None:  # --insecure-no-auth: the tenant is whatever the caller names
            tenant = credentials.tenant
            return Principal(DEFAULT_TENANT if tenant is None else check_tenant_id(tenant, TENANT_HEADER), Role.ADMIN)
        secret = credentials.api_key
        if secret is None:
            if credentials.authorization is None:
                raise Unauthenticated(
                    "this call needs an API key: send 'authorization: Bearer arb_…'", reason="KEY_MISSING"
                )
            match = _BEARER.match(credentials.authorization)
            if match is None:
                raise Unauthenticated("the authorization value must be 'Bearer <API key>'", reason="KEY_MALFORMED")
            secret = match.group(1)
        key_id = key_id_of(secret)
        key = check_key(self._keys.lookup(key_id) if key_id else None, secret, self._clock.now())
        # The key's tenant is the call's tenant, whatever the tenant header says.
        return Principal(key.tenant, key.role, key.id)
