"""CatalogService: categories and sub-categories over gRPC (transport layer)."""

from __future__ import annotations

import grpc

from arbiter.v1 import catalog_pb2, catalog_pb2_grpc

from ...app.catalog import CatalogUseCases
from ...app.paging import PageRequest
from ...domain.errors import Decoded, ViolationCollector
from .catalog_messages import (
    category_from_proto,
    category_status_from_proto,
    category_to_proto,
    sub_category_from_proto,
    sub_category_to_proto,
)
from .interceptor import principal
from .messages import update_mask


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    """The calling tenant's business hierarchy."""

    def __init__(self, catalog: CatalogUseCases) -> None:
        self._catalog = catalog

    async def CreateCategory(
        self, request: catalog_pb2.CreateCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateCategoryResponse:
        category = await self._catalog.create_category(
            principal(), category_from_proto(request.category), request.category_id
        )
        return catalog_pb2.CreateCategoryResponse(category=category_to_proto(category))

    async def GetCategory(
        self, request: catalog_pb2.GetCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetCategoryResponse:
        return catalog_pb2.GetCategoryResponse(
            category=category_to_proto(self._catalog.get_category(principal(), request.id))
        )

    async def ListCategories(
        self, request: catalog_pb2.ListCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListCategoriesResponse:
        v = ViolationCollector()
        status = category_status_from_proto(request.status, v, "status")
        page = await self._catalog.list_categories(
            principal(), Decoded(status, tuple(v.violations)), PageRequest(request.page_size, request.page_token)
        )
        return catalog_pb2.ListCategoriesResponse(
            categories=[category_to_proto(c) for c in page.items], next_page_token=page.next_token
        )

    async def UpdateCategory(
        self, request: catalog_pb2.UpdateCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateCategoryResponse:
        updated = await self._catalog.update_category(
            principal(), category_from_proto(request.category), update_mask(request)
        )
        return catalog_pb2.UpdateCategoryResponse(
            category=category_to_proto(updated.category), nonconforming_offers=updated.nonconforming_offers
        )

    async def DeleteCategory(
        self, request: catalog_pb2.DeleteCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.DeleteCategoryResponse:
        await self._catalog.delete_category(principal(), request.id)
        return catalog_pb2.DeleteCategoryResponse()

    async def CreateSubCategory(
        self, request: catalog_pb2.CreateSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateSubCategoryResponse:
        sub = await self._catalog.create_sub_category(
            principal(), sub_category_from_proto(request.sub_category), request.sub_category_id
        )
        return catalog_pb2.CreateSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    async def GetSubCategory(
        self, request: catalog_pb2.GetSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetSubCategoryResponse:
        sub = self._catalog.get_sub_category(principal(), request.id)
        return catalog_pb2.GetSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    async def ListSubCategories(
        self, request: catalog_pb2.ListSubCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListSubCategoriesResponse:
        page = await self._catalog.list_sub_categories(
            principal(), request.category_id, PageRequest(request.page_size, request.page_token)
        )
        return catalog_pb2.ListSubCategoriesResponse(
            sub_categories=[sub_category_to_proto(s) for s in page.items], next_page_token=page.next_token
        )

    async def UpdateSubCategory(
        self, request: catalog_pb2.UpdateSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateSubCategoryResponse:
        sub = await self._catalog.update_sub_category(
            principal(), sub_category_from_proto(request.sub_category), update_mask(request)
        )
        return catalog_pb2.UpdateSubCategoryResponse(sub_category=sub_category_to_proto(sub))

    async def DeleteSubCategory(
        self, request: catalog_pb2.DeleteSubCategoryRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.DeleteSubCategoryResponse:
        await self._catalog.delete_sub_category(principal(), request.id)
        return catalog_pb2.DeleteSubCategoryResponse()
