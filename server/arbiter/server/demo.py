"""The demo catalogue that `make run` serves (composition helper, like app.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

from arbiter.client import offer_from_dict

from .domain.errors import AlreadyExists
from .domain.offers import Offer, OfferStatus
from .storage.offer_repository import OfferRepository
from .transport.offer_messages import offer_from_proto

DEMO_TENANT = "default"


async def load_demo_catalogue(offers: OfferRepository, tenant: str = DEMO_TENANT) -> int:
    """Create each demo offer that is not there yet (matched by name); returns how many were created."""
    data = json.loads(resources.files("arbiter.server").joinpath("demo_catalogue.json").read_text())
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
