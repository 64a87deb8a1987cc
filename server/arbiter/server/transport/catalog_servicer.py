"""CatalogService: categories and sub-categories over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import catalog_pb2, catalog_pb2_grpc

from ..domain.access import Permission
from ..domain.catalog import count_nonconforming
from ..domain.errors import ViolationCollector
from ..storage.catalog_repository import CatalogRepository
from ..storage.offer_cache import OfferCache
from .access import AccessControl
from .catalog_messages import (
    category_from_proto,
    category_status_from_proto,
    category_to_proto,
    sub_category_from_proto,
    sub_category_to_proto,
)
from .context import tenant_of
from .errors import rpc


def _mask(request: catalog_pb2.UpdateCategoryRequest | catalog_pb2.UpdateSubCategoryRequest) -> list[str] | None:
    return list(request.update_mask.paths) if request.HasField("update_mask") else None


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    """The calling tenant's business hierarchy."""

    def __init__(self, access: AccessControl, catalog: CatalogRepository, offers: OfferCache) -> None:
        self.access = access
        self._catalog = catalog
        self._offers = offers

    @rpc(Permission.CATALOG_WRITE)
    async def CreateCategory(
        self, request: catalog_pb2.CreateCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateCategoryResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        draft = category_from_proto(request.category, v)
        v.raise_if_any()
        category = await self._catalog.create_category(tenant, draft, request.category_id)
        return catalog_pb2.CreateCategoryResponse(category=category_to_proto(category))

    @rpc(Permission.CATALOG_READ)
    async def GetCategory(
        self, request: catalog_pb2.GetCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetCategoryResponse:
        category = self._catalog.get_category(tenant_of(context), request.id)
        return catalog_pb2.GetCategoryResponse(category=category_to_proto(category))

    @rpc(Permission.CATALOG_READ)
    async def ListCategories(
        self, request: catalog_pb2.ListCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListCategoriesResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        status = category_status_from_proto(request.status, v, "status")
        v.raise_if_any()
        categories, token = await self._catalog.list_categories(tenant, status, request.page_size, request.page_token)
        return catalog_pb2.ListCategoriesResponse(
            categories=[category_to_proto(c) for c in categories], next_page_token=token
        )

    @rpc(Permission.CATALOG_WRITE)
    async def UpdateCategory(
        self, request: catalog_pb2.UpdateCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateCategoryResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        patch = category_from_proto(request.category, v)
        v.raise_if_any()
        category = await self._catalog.update_category(tenant, patch, _mask(request))
        # Report, without changing them, the offers the (new) schema would reject.
        offers = [o.custom_fields for o in self._offers.tenant(tenant).by_id.values() if o.category_id == category.id]
        return catalog_pb2.UpdateCategoryResponse(
            category=category_to_proto(category), nonconforming_offers=count_nonconforming(category, offers)
        )

    @rpc(Permission.CATALOG_WRITE)
    async def DeleteCategory(
        self, request: catalog_pb2.DeleteCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.DeleteCategoryResponse:
        await self._catalog.delete_category(tenant_of(context), request.id)
        return catalog_pb2.DeleteCategoryResponse()

    @rpc(Permission.CATALOG_WRITE)
    async def CreateSubCategory(
        self, request: catalog_pb2.CreateSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateSubCategoryResponse:
        tenant = tenant_of(context)
        sub = await self._catalog.create_sub_category(
            tenant, sub_category_from_proto(request.sub_category), request.sub_category_id
        )
        return catalog_pb2.CreateSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    @rpc(Permission.CATALOG_READ)
    async def GetSubCategory(
        self, request: catalog_pb2.GetSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetSubCategoryResponse:
        sub = self._catalog.get_sub_category(tenant_of(context), request.id)
        return catalog_pb2.GetSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    @rpc(Permission.CATALOG_READ)
    async def ListSubCategories(
        self, request: catalog_pb2.ListSubCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListSubCategoriesResponse:
        subs, token = await self._catalog.list_sub_categories(
            tenant_of(context), request.category_id, request.page_size, request.page_token
        )
        return catalog_pb2.ListSubCategoriesResponse(
            sub_categories=[sub_category_to_proto(s) for s in subs], next_page_token=token
        )

    @rpc(Permission.CATALOG_WRITE)
    async def UpdateSubCategory(
        self, request: catalog_pb2.UpdateSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateSubCategoryResponse:
        sub = await self._catalog.update_sub_category(
            tenant_of(context), sub_category_from_proto(request.sub_category), _mask(request)
        )
        return catalog_pb2.UpdateSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    @rpc(Permission.CATALOG_WRITE)
    async def DeleteSubCategory(
        self, request: catalog_pb2.DeleteSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.DeleteSubCategoryResponse:
        await self._catalog.delete_sub_category(tenant_of(context), request.id)
        return catalog_pb2.DeleteSubCategoryResponse()
