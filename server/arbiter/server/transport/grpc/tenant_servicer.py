"""TenantService: the calling tenant's settings over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import tenants_pb2, tenants_pb2_grpc

from ...app.tenants import TenantUseCases
from ...domain.errors import Decoded
from ...domain.tenants import SettingsPatch, TenantSettings
from .interceptor import principal
from .messages import update_mask


def settings_to_proto(settings: TenantSettings) -> tenants_pb2.TenantSettings:
    out = tenants_pb2.TenantSettings(tenant_id=settings.tenant, timezone=settings.timezone)
    if settings.updated_at is not None:
        out.updated_at.FromDatetime(settings.updated_at)
    return out


class TenantServicer(tenants_pb2_grpc.TenantServiceServicer):
    """Read and change tenant settings."""

    def __init__(self, tenants: TenantUseCases) -> None:
        self._tenants = tenants

    async def GetTenantSettings(
        self, request: tenants_pb2.GetTenantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.GetTenantSettingsResponse:
        return tenants_pb2.GetTenantSettingsResponse(
            settings=settings_to_proto(self._tenants.get_settings(principal()))
        )

    async def UpdateTenantSettings(
        self, request: tenants_pb2.UpdateTenantSettingsRequest, context: grpc.aio.ServicerContext
    ) -> tenants_pb2.UpdateTenantSettingsResponse:
        patch = SettingsPatch(timezone=request.settings.timezone)
        settings = await self._tenants.update_settings(principal(), Decoded(patch), update_mask(request))
        return tenants_pb2.UpdateTenantSettingsResponse(settings=settings_to_proto(settings))
