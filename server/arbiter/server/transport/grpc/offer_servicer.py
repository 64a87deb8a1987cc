"""OfferService: the offer catalogue over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import offers_pb2, offers_pb2_grpc

from ...app.offers import OfferUseCases
from ...app.paging import PageRequest
from ...app.ports import OfferQuery
from ...domain.errors import Decoded, ViolationCollector
from .interceptor import principal
from .messages import update_mask
from .offer_messages import offer_from_proto, offer_to_proto, status_from_proto


class OfferServicer(offers_pb2_grpc.OfferServiceServicer):
    """Create, read, list, update and delete offers of the calling tenant."""

    def __init__(self, offers: OfferUseCases) -> None:
        self._offers = offers

    async def CreateOffer(
        self, request: offers_pb2.CreateOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.CreateOfferResponse:
        offer = await self._offers.create(principal(), offer_from_proto(request.offer))
        return offers_pb2.CreateOfferResponse(offer=offer_to_proto(offer))

    async def GetOffer(
        self, request: offers_pb2.GetOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.GetOfferResponse:
        return offers_pb2.GetOfferResponse(offer=offer_to_proto(self._offers.get(principal(), request.id)))

    async def ListOffers(
        self, request: offers_pb2.ListOffersRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.ListOffersResponse:
        v = ViolationCollector()
        query = OfferQuery(
            status=status_from_proto(request.status, v, "status"),
            category_ids=tuple(request.category_ids),
            tags=tuple(request.tags),
        )
        page = await self._offers.list_offers(
            principal(), Decoded(query, tuple(v.violations)), PageRequest(request.page_size, request.page_token)
        )
        response = offers_pb2.ListOffersResponse(next_page_token=page.next_token)
        for offer in page.items:
            offer_to_proto(offer, response.offers.add())
        return response

    async def UpdateOffer(
        self, request: offers_pb2.UpdateOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.UpdateOfferResponse:
        offer = await self._offers.update(principal(), offer_from_proto(request.offer), update_mask(request))
        return offers_pb2.UpdateOfferResponse(offer=offer_to_proto(offer))

    async def DeleteOffer(
        self, request: offers_pb2.DeleteOfferRequest, context: grpc.aio.ServicerContext
    ) -> offers_pb2.DeleteOfferResponse:
        await self._offers.delete(principal(), request.id, force=request.force)
        return offers_pb2.DeleteOfferResponse()
