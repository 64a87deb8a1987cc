"""The demo catalogue that `make run` serves (composition helper, like app.py)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from importlib import resources

from arbiter.client import category_from_dict, offer_from_dict

from .domain.catalog import SubCategory
from .domain.errors import AlreadyExists, NotFound, ViolationCollector
from .domain.offers import Offer, OfferStatus
from .storage.catalog_repository import CatalogRepository
from .storage.offer_repository import OfferRepository
from .transport.catalog_messages import category_from_proto
from .transport.offer_messages import offer_from_proto

DEMO_TENANT = "default"


async def load_demo_catalogue(catalog: CatalogRepository, offers: OfferRepository, tenant: str = DEMO_TENANT) -> int:
    """Create what is not there yet: categories and sub-categories by id, offers by name.

    Returns how many offers were created.
    """
    data = json.loads(resources.files("arbiter.server").joinpath("demo_catalogue.json").read_text())
    for body in data["categories"]:
        subs = body.pop("subCategories")
        category_id = body.pop("id")
        try:
            catalog.get_category(tenant, category_id)
        except NotFound:
            v = ViolationCollector()
            category = category_from_proto(category_from_dict(body), v)
            v.raise_if_any()
            await catalog.create_category(tenant, category, category_id)
        for sub in subs:
            with contextlib.suppress(AlreadyExists):
                await catalog.create_sub_category(
                    tenant, SubCategory(category_id=category_id, name=sub["name"]), sub["id"]
                )
    created = 0
    for body in data["offers"]:
        draft, violations = offer_from_proto(offer_from_dict(body))
        violations.raise_if_any()
        # A new offer starts as draft or active; later states are reached by lifecycle moves.
        target = draft.status
        starts_later = target in (OfferStatus.PAUSED, OfferStatus.ARCHIVED)
        try:
            offer = await offers.create(tenant, replace(draft, status=OfferStatus.ACTIVE) if starts_later else draft)
        except AlreadyExists:
            continue
        if starts_later:
            await offers.update(tenant, Offer(id=offer.id, status=target), ["status"])
        created += 1
    return created
