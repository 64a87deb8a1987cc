"""ContactPolicyService: contact policies over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import contact_policies_pb2 as pb
from arbiter.v1 import contact_policies_pb2_grpc

from ...app.paging import PageRequest
from ...app.policies import PolicyUseCases
from ...domain.errors import Decoded, ViolationCollector
from .interceptor import principal
from .messages import update_mask
from .policy_messages import policy_from_proto, policy_status_from_proto, policy_to_proto


class ContactPolicyServicer(contact_policies_pb2_grpc.ContactPolicyServiceServicer):
    """Create, read, list, update and delete the calling tenant's contact policies."""

    def __init__(self, policies: PolicyUseCases) -> None:
        self._policies = policies

    async def CreateContactPolicy(
        self, request: pb.CreateContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateContactPolicyResponse:
        policy = await self._policies.create(principal(), policy_from_proto(request.contact_policy))
        return pb.CreateContactPolicyResponse(contact_policy=policy_to_proto(policy))

    async def GetContactPolicy(
        self, request: pb.GetContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetContactPolicyResponse:
        return pb.GetContactPolicyResponse(contact_policy=policy_to_proto(self._policies.get(principal(), request.id)))

    async def ListContactPolicies(
        self, request: pb.ListContactPoliciesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListContactPoliciesResponse:
        v = ViolationCollector()
        status = policy_status_from_proto(request.status, v, "status")
        page = await self._policies.list_policies(
            principal(), Decoded(status, tuple(v.violations)), PageRequest(request.page_size, request.page_token)
        )
        return pb.ListContactPoliciesResponse(
            contact_policies=[policy_to_proto(p) for p in page.items], next_page_token=page.next_token
        )

    async def UpdateContactPolicy(
        self, request: pb.UpdateContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateContactPolicyResponse:
        policy = await self._policies.update(
            principal(), policy_from_proto(request.contact_policy), update_mask(request)
        )
        return pb.UpdateContactPolicyResponse(contact_policy=policy_to_proto(policy))

    async def DeleteContactPolicy(
        self, request: pb.DeleteContactPolicyRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteContactPolicyResponse:
        await self._policies.delete(principal(), request.id)
        return pb.DeleteContactPolicyResponse()
