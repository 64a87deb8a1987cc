"""CatalogFollower (app/following.py) over the in-memory fakes: what it reads again, and how often."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core_helpers import TENANT, make_core, run

from arbiter.server.app.following import CatalogFollower
from arbiter.server.app.ports import StoredTenant
from arbiter.server.domain.offers import Offer, OfferStatus


class GatedCatalog:
    """A catalogue store whose reads wait for `gate`, holding what another process committed."""

    def __init__(self, stored: dict[str, StoredTenant]) -> None:
        self.stored = stored
        self.reads: list[str | None] = []
        self.gate = asyncio.Event()

    async def reload(
        self, tenant: str | None, apply: Callable[[dict[str, StoredTenant]], None]
    ) -> dict[str, StoredTenant]:
        self.reads.append(tenant)
        await self.gate.wait()
        found = {t: s for t, s in self.stored.items() if tenant is None or t == tenant}
        apply(found)
        return found


async def _let_it_run() -> None:
    for _ in range(20):  # every step is ready at once: a few turns of the loop finish them
        await asyncio.sleep(0)


def test_notices_that_come_during_a_read_cost_one_more_read_not_one_each() -> None:
    async def scenario() -> None:
        t = make_core()
        catalog = GatedCatalog({})
        follower = CatalogFollower(catalog, t.core.views)  # type: ignore[arg-type]
        follower.changed(TENANT)
        await _let_it_run()
        for _ in range(3):
            follower.changed(TENANT)
        follower.changed("other")
        catalog.gate.set()
        await _let_it_run()
        assert sorted(catalog.reads, key=str) == ["other", TENANT, TENANT]

    run(scenario())


def test_a_tenant_read_again_is_what_the_store_holds_and_every_tenant_can_be_emptied() -> None:
    async def scenario() -> None:
        t = make_core()
        mine = await t.offer("Made here")
        theirs = Offer(id="off_elsewhere", name="Made elsewhere", status=OfferStatus.ACTIVE)
        catalog = GatedCatalog({TENANT: StoredTenant(offers=[theirs])})
        catalog.gate.set()
        follower = CatalogFollower(catalog, t.core.views)  # type: ignore[arg-type]
        follower.changed(TENANT)
        await _let_it_run()
        view = await t.core.views.settled(TENANT)
        assert list(view.offers) == [theirs.id]
        assert t.ids(await t.decide()) == [theirs.id]
        assert mine.id not in view.offers
        catalog.stored = {}  # another process removed everything
        follower.changed(None)
        await _let_it_run()
        assert dict((await t.core.views.settled(TENANT)).offers) == {}

    run(scenario())
