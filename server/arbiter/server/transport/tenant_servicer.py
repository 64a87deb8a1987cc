"""TenantService: the calling tenant's settings over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import tenants_pb2, tenants_pb2_grpc

from ..domain.access import Permission
from ..domain.errors import InvalidArgument
from ..storage.tenant_settings import TenantSettings, TenantSettingsRepository
from .access import AccessControl
from .context import tenant_of
from .errors import rpc

_MUTABLE = {"timezone"}
_OUTPUT_ONLY = {"tenant_id", "tenantId", "updated_at", "updatedAt"}


def _to_proto(settings: TenantSettings) -> tenants_pb2.TenantSettings:
    out = tenants_pb2.TenantSettings(tenant_id=settings.tenant, timezone=settings.timezone)
    if settings.updated_at is not None:
        out.updated_at.FromDatetime(settings.updated_at)
    return out


class TenantServicer(tenants_pb2_grpc.TenantServiceServicer):
    """Read and change tenant settings."""

    def __init__(self, access: AccessControl, settings: TenantSettingsRepository) -> None:
        self.access = access
        self._settings = settings

    @rpc(Permission.SETTINGS_READ)
    async def GetTenantSettings(
        self, request: tenants_pb2.GetTenantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.GetTenantSettingsResponse:
        return tenants_pb2.GetTenantSettingsResponse(settings=_to_proto(self._settings.get(tenant_of(context))))

    @rpc(Permission.SETTINGS_WRITE)
    async def UpdateTenantSettings(
        self, request: tenants_pb2.UpdateTenantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.UpdateTenantSettingsResponse:
        tenant = tenant_of(context)
        paths = list(request.update_mask.paths)
        for path in paths:
            if path in _OUTPUT_ONLY:
                raise InvalidArgument.single("updateMask", f"{path!r} is output only and cannot be updated")
            if path not in _MUTABLE:
                raise InvalidArgument.single("updateMask", f"unknown field path {path!r}")
        if paths:
            timezone = request.settings.timezone if "timezone" in paths else None
        else:  # no mask: what is set changes
            timezone = request.settings.timezone or None
        settings = await self._settings.update(tenant, timezone)
        return tenants_pb2.UpdateTenantSettingsResponse(settings=_to_proto(settings))
