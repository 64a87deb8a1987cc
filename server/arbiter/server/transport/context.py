"""Per-call context: which tenant a call acts for (transport layer)."""

from __future__ import annotations

import re

import grpc

from ..domain.errors import InvalidArgument

TENANT_HEADER = "x-tenant-id"
DEFAULT_TENANT = "default"
_TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The tenant named by the `x-tenant-id` metadata, or "default"."""
    for key, value in context.invocation_metadata() or ():
        if key == TENANT_HEADER:
            if not isinstance(value, str) or not _TENANT_PATTERN.match(value):
                raise InvalidArgument.single(
                    TENANT_HEADER, f"tenant ids match [a-z0-9][a-z0-9_-]{{0,63}}, got {value!r}"
                )
            return value
    return DEFAULT_TENANT
