"""ApiKeyService: the calling tenant's API keys over gRPC (transport layer, admin only)."""

from __future__ import annotations

import grpc

from arbiter.v1 import api_keys_pb2, api_keys_pb2_grpc

from ...app.keys import KeyRequest, KeyUseCases
from ...app.paging import PageRequest
from ...domain.access import ApiKey, Role
from ...domain.errors import Decoded, ViolationCollector
from .interceptor import principal
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

    def __init__(self, keys: KeyUseCases) -> None:
        self._keys = keys

    async def CreateApiKey(
        self, request: api_keys_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.CreateApiKeyResponse:
        wanted = request.api_key
        v = ViolationCollector()
        expires_at = timestamp_to_datetime(wanted.expires_at, v, "expiresAt") if wanted.HasField("expires_at") else None
        # An unknown role number decodes as no role: "role is required" names the allowed ones.
        decoded = Decoded(KeyRequest(wanted.name, ROLE_FROM_PROTO.get(wanted.role), expires_at), tuple(v.violations))
        key, secret = await self._keys.create(principal(), decoded)
        return api_keys_pb2.CreateApiKeyResponse(api_key=key_to_proto(key), secret=secret)

    async def GetApiKey(
        self, request: api_keys_pb2.GetApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.GetApiKeyResponse:
        return api_keys_pb2.GetApiKeyResponse(api_key=key_to_proto(self._keys.get(principal(), request.id)))

    async def ListApiKeys(
        self, request: api_keys_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.ListApiKeysResponse:
        page = await self._keys.list_keys(principal(), PageRequest(request.page_size, request.page_token))
        return api_keys_pb2.ListApiKeysResponse(
            api_keys=[key_to_proto(k) for k in page.items], next_page_token=page.next_token
        )

    async def RevokeApiKey(
        self, request: api_keys_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> api_keys_pb2.RevokeApiKeyResponse:
        return api_keys_pb2.RevokeApiKeyResponse(api_key=key_to_proto(await self._keys.revoke(principal(), request.id)))
