"""OfferService: the offer catalogue over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import offers_pb2, offers_pb2_grpc

from ..domain.access import Permission
from ..domain.errors import ViolationCollector
from ..storage.offer_repository import OfferRepository
from .access import AccessControl
from .context import tenant_of
from .errors import rpc
from .offer_messages import offer_from_proto, offer_to_proto, status_from_proto


class OfferServicer(offers_pb2_grpc.OfferServiceServicer):
    """Create, read, list, update and delete offers of the calling tenant."""

    def __init__(self, access: AccessControl, offers: OfferRepository) -> None:
        self.access = access
        self._offers = offers

    @rpc(Permission.CATALOG_WRITE)
    async def CreateOffer(
        self, request: offers_pb2.CreateOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.CreateOfferResponse:
        tenant = tenant_of(context)
        draft, violations = offer_from_proto(request.offer)
        offer = await self._offers.create(tenant, draft, violations.violations)
        return offers_pb2.CreateOfferResponse(offer=offer_to_proto(offer))

    @rpc(Permission.OFFER_READ)
    async def GetOffer(
        self, request: offers_pb2.GetOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.GetOfferResponse:
        offer = self._offers.get(tenant_of(context), request.id)
        return offers_pb2.GetOfferResponse(offer=offer_to_proto(offer))

    @rpc(Permission.OFFER_READ)
    async def ListOffers(
        self, request: offers_pb2.ListOffersRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.ListOffersResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        status = status_from_proto(request.status, v, "status")
        v.raise_if_any()
        offers, next_token = await self._offers.list_page(
            tenant,
            status=status,
            category_ids=list(request.category_ids),
            tags=list(request.tags),
            requested_page_size=request.page_size,
            page_token=request.page_token,
        )
        response = offers_pb2.ListOffersResponse(next_page_token=next_token)
        for offer in offers:
            offer_to_proto(offer, response.offers.add())
        return response

    @rpc(Permission.CATALOG_WRITE)
    async def UpdateOffer(
        self, request: offers_pb2.UpdateOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.UpdateOfferResponse:
        tenant = tenant_of(context)
        patch, violations = offer_from_proto(request.offer)
        mask = list(request.update_mask.paths) if request.HasField("update_mask") else None
        offer = await self._offers.update(tenant, patch, mask, violations.violations)
        return offers_pb2.UpdateOfferResponse(offer=offer_to_proto(offer))

    @rpc(Permission.CATALOG_WRITE)
    async def DeleteOffer(
        self, request: offers_pb2.DeleteOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.DeleteOfferResponse:
        await self._offers.delete(tenant_of(context), request.id, force=request.force)
        return offers_pb2.DeleteOfferResponse()
