"""The demo catalogue that `make run` serves, loaded through the use cases (composition helper, like app.py)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from importlib import resources

from arbiter.client import category_from_dict, offer_from_dict

from .app.core import Core
from .app.keys import KeyRequest
from .domain.access import Principal, Role
from .domain.catalog import SubCategory
from .domain.errors import AlreadyExists, Decoded, NotFound, raise_if_invalid
from .domain.offers import Offer, OfferStatus
from .transport.grpc.catalog_messages import category_from_proto
from .transport.grpc.offer_messages import offer_from_proto

DEMO_TENANT = "default"


async def load_demo(core: Core, *, with_key: bool, tenant: str = DEMO_TENANT) -> tuple[int, str | None]:
    """Create what is not there yet (categories and sub-categories by id, offers by name) and, when
    asked, a new demo admin key. Returns how many offers were created, and the key's secret."""
    admin = Principal(tenant, Role.ADMIN)
    data = json.loads(resources.files("arbiter.server").joinpath("demo_catalogue.json").read_text())
    for body in data["categories"]:
        subs = body.pop("subCategories")
        category_id = body.pop("id")
        try:
            core.catalog.get_category(admin, category_id)
        except NotFound:
            await core.catalog.create_category(admin, category_from_proto(category_from_dict(body)), category_id)
        for sub in subs:
            with contextlib.suppress(AlreadyExists):
                await core.catalog.create_sub_category(
                    admin, SubCategory(category_id=category_id, name=sub["name"]), sub["id"]
                )
    created = 0
    for body in data["offers"]:
        decoded = offer_from_proto(offer_from_dict(body))
        raise_if_invalid(decoded.violations)
        draft = decoded.value
        # A new offer starts as draft or active; later states are reached by lifecycle moves.
        target = draft.status
        starts_later = target in (OfferStatus.PAUSED, OfferStatus.ARCHIVED)
        first = replace(draft, status=OfferStatus.ACTIVE) if starts_later else draft
        try:
            offer = await core.offers.create(admin, Decoded(first))
        except AlreadyExists:
            continue
        if starts_later:
            await core.offers.update(admin, Decoded(Offer(id=offer.id, status=target)), ["status"])
        created += 1
    secret = None
    if with_key:
        _, secret = await core.keys.create(admin, Decoded(KeyRequest("demo (make run)", Role.ADMIN)))
    return created, secret
