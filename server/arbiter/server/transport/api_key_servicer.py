"""ApiKeyService: the calling tenant's API keys over gRPC (transport layer, admin only)."""

from __future__ import annotations

import grpc

from arbiter.v1 import api_keys_pb2, api_keys_pb2_grpc

from ..domain.access import ApiKey, Permission, Role
from ..domain.errors import InvalidArgument, ViolationCollector
from ..storage.api_keys import ApiKeyRepository
from .access import AccessControl
from .context import tenant_of
from .errors import rpc
from .messages import set_timestamp, timestamp_to_datetime

ROLE_FROM_PROTO: dict[api_keys_pb2.Role, Role] = {
    api_keys_pb2.ROLE_ADMIN: Role.ADMIN,
    api_keys_pb2.ROLE_EDITOR: Role.EDITOR,
    api_keys_pb2.ROLE_DECIDE: Role.DECIDE,
}
ROLE_TO_PROTO = {domain: wire for wire, domain in ROLE_FROM_PROTO.items()}


def key_to_proto(key: ApiKey) -> api_keys_pb2.ApiKey:
    out = api_keys_pb2.ApiKey(id=key.id, name=key.name, role=ROLE_TO_PROTO[key.role])
    set_timestamp(out.created_at, key.created_at)
    if key.expires_at is not None:
        set_timestamp(out.expires_at, key.expires_at)
    if key.revoked_at is not None:
        set_timestamp(out.revoked_at, key.revoked_at)
    return out


class ApiKeyServicer(api_keys_pb2_grpc.ApiKeyServiceServicer):
    """Create, read, list and revoke the calling tenant's keys."""

    def __init__(self, access: AccessControl, keys: ApiKeyRepository) -> None:
        self.access = access
        self._keys = keys

    @rpc(Permission.KEYS)
    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.CreateApiKeyResponse:
        wanted = request.api_key
        v = ViolationCollector()
        role = ROLE_FROM_PROTO.get(wanted.role)
        if role is None:
            v.add("role", "is required: admin, editor or decide")
        expires_at = timestamp_to_datetime(wanted.expires_at, v, "expiresAt") if wanted.HasField("expires_at") else None
        v.raise_if_any()
        assert role is not None
        key, secret = await self._keys.create(tenant_of(context), wanted.name, role, expires_at)
        return api_keys_pb2.CreateApiKeyResponse(api_key=key_to_proto(key), secret=secret)

    @rpc(Permission.KEYS)
    async def GetApiKey(
        self, request: api_keys_pb2.GetApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.GetApiKeyResponse:
        return api_keys_pb2.GetApiKeyResponse(api_key=key_to_proto(self._keys.get(tenant_of(context), request.id)))

    @rpc(Permission.KEYS)
    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ListApiKeysResponse:
        keys, token = await self._keys.list_page(tenant_of(context), request.page_size, request.page_token)
        return api_keys_pb2.ListApiKeysResponse(api_keys=[key_to_proto(k) for k in keys], next_page_token=token)

    @rpc(Permission.KEYS)
    async def RevokeApiKey(
        self, request: api_keys_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.RevokeApiKeyResponse:
        if not request.id:
            raise InvalidArgument.single("id", "is required")
        key = await self._keys.revoke(tenant_of(context), request.id)
        return api_keys_pb2.RevokeApiKeyResponse(api_key=key_to_proto(key))
