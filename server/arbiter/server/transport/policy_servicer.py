"""ContactPolicyService: contact policies over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import contact_policies_pb2 as pb
from arbiter.v1 import contact_policies_pb2_grpc

from ..domain.access import Permission
from ..domain.errors import ViolationCollector
from ..storage.policy_repository import PolicyRepository
from .access import AccessControl
from .context import tenant_of
from .errors import rpc
from .policy_messages import policy_from_proto, policy_status_from_proto, policy_to_proto


class ContactPolicyServicer(contact_policies_pb2_grpc.ContactPolicyServiceServicer):
    """Create, read, list, update and delete the calling tenant's contact policies."""

    def __init__(self, access: AccessControl, policies: PolicyRepository) -> None:
        self.access = access
        self._policies = policies

    @rpc(Permission.CATALOG_WRITE)
    async def CreateContactPolicy(
        self, request: pb.CreateContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateContactPolicyResponse:
        tenant = tenant_of(context)
        draft, decode = policy_from_proto(request.contact_policy)
        policy = await self._policies.create(tenant, draft, decode)
        return pb.CreateContactPolicyResponse(contact_policy=policy_to_proto(policy))

    @rpc(Permission.CATALOG_READ)
    async def GetContactPolicy(
        self, request: pb.GetContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetContactPolicyResponse:
        policy = self._policies.get(tenant_of(context), request.id)
        return pb.GetContactPolicyResponse(contact_policy=policy_to_proto(policy))

    @rpc(Permission.CATALOG_READ)
    async def ListContactPolicies(
        self, request: pb.ListContactPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContactPoliciesResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        status = policy_status_from_proto(request.status, v, "status")
        v.raise_if_any()
        policies, token = await self._policies.list_page(tenant, status, request.page_size, request.page_token)
        return pb.ListContactPoliciesResponse(
            contact_policies=[policy_to_proto(p) for p in policies], next_page_token=token
        )

    @rpc(Permission.CATALOG_WRITE)
    async def UpdateContactPolicy(
        self, request: pb.UpdateContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateContactPolicyResponse:
        tenant = tenant_of(context)
        patch, decode = policy_from_proto(request.contact_policy)
        mask = list(request.update_mask.paths) if request.HasField("update_mask") else None
        policy = await self._policies.update(tenant, patch, mask, decode)
        return pb.UpdateContactPolicyResponse(contact_policy=policy_to_proto(policy))

    @rpc(Permission.CATALOG_WRITE)
    async def DeleteContactPolicy(
        self, request: pb.DeleteContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteContactPolicyResponse:
        await self._policies.delete(tenant_of(context), request.id)
        return pb.DeleteContactPolicyResponse()
