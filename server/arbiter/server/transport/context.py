"""Per-call context: which tenant a call acts for (transport layer)."""

from __future__ import annotations

import grpc

from .access import current_principal


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The tenant of the call being served (set by the rpc wrapper after authentication)."""
    return current_principal().tenant
