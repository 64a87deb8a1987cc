"""The offer catalogue's use cases: create, read, list, update, delete (application layer)."""

from __future__ import annotations

from dataclasses import replace

from ..domain import offer_rules
from ..domain.access import Permission, Principal, require
from ..domain.catalog import CategoryStatus, conform_custom_fields
from ..domain.errors import Decoded, FailedPrecondition, ViolationCollector, raise_if_invalid
from ..domain.filters import check_filters
from ..domain.ids import OFFER_PREFIX
from ..domain.offers import Offer
from ..domain.resources import Kind, id_required, not_found
from ..domain.timekeeping import Clock
from .paging import Page, PageRequest, fetch_page
from .ports import CatalogStore, CatalogTx, LiveCounters, OfferQuery
from .views import TenantRecords, TenantViews
from .writes import Change, ConfigUseCases, ensure_name_free, fresh_id


def conform_offer(tx: CatalogTx, offer: Offer, v: ViolationCollector, *, joining: bool, check_fields: bool) -> Offer:
    """Check an offer's place in the hierarchy and, when asked, its custom fields (filling in defaults).

    `joining` means the offer is new or moves to another category: the
    category must then be active. Custom fields are checked when the write
    touches them or the category; an id already reported as malformed names
    nothing worth looking up.
    """
    if not offer.category_id:
        if offer.custom_fields and check_fields:
            v.add("customFields", "an offer without a category has no schema, so it cannot carry custom fields")
        return offer
    reported = {violation.field for violation in v.violations}
    category = None if "categoryId" in reported else tx.category(offer.category_id)
    if category is None and "categoryId" not in reported:
        v.add("categoryId", f"category {offer.category_id!r} does not exist")
    if category is not None and joining and category.status is CategoryStatus.ARCHIVED:
        v.add("categoryId", f"category {offer.category_id} is archived; offers cannot join it")
    if offer.sub_category_id and "subCategoryId" not in reported:
        sub = tx.sub_category(offer.sub_category_id)
        if sub is None:
            v.add("subCategoryId", f"sub-category {offer.sub_category_id!r} does not exist")
        elif sub.category_id != offer.category_id:
            v.add(
                "subCategoryId",
                f"sub-category {sub.id} belongs to category {sub.category_id}, not {offer.category_id}",
            )
    if category is not None and check_fields:
        return replace(offer, custom_fields=conform_custom_fields(category, offer.custom_fields, v))
    return offer


class OfferUseCases(ConfigUseCases):
    """Offers of the caller's tenant."""

    def __init__(self, store: CatalogStore, views: TenantViews, counters: LiveCounters, clock: Clock) -> None:
        super().__init__(store, views, clock)
        self._counters = counters

    def get(self, principal: Principal, offer_id: str) -> Offer:
        require(principal, Permission.OFFER_READ)
        return self._views.current(principal.tenant).offer(offer_id)

    async def list_offers(self, principal: Principal, decoded: Decoded[OfferQuery], page: PageRequest) -> Page[Offer]:
        """One page of offers ordered by (created_at, id)."""
        require(principal, Permission.OFFER_READ)
        v = ViolationCollector()
        check_filters(v, {"categoryIds": decoded.value.category_ids, "tags": decoded.value.tags})
        raise_if_invalid(decoded.violations, v.violations)
        query = replace(
            decoded.value,
            category_ids=tuple(sorted(set(decoded.value.category_ids))),
            tags=tuple(sorted(set(decoded.value.tags))),
        )
        tenant = principal.tenant
        status = query.status.value if query.status else None
        return await fetch_page(
            page,
            tenant,
            "offers",
            [status, list(query.category_ids), list(query.tags)],
            lambda after, limit: self._store.list_offers(tenant, query, after, limit),
        )

    async def create(self, principal: Principal, decoded: Decoded[Offer]) -> Offer:
        require(principal, Permission.CATALOG_WRITE)

        def work(tx: CatalogTx) -> Change[Offer]:
            prepared, violations = offer_rules.prepare_new_offer(decoded.value)
            v = ViolationCollector()
            v.violations.extend(violations)
            prepared = conform_offer(tx, prepared, v, joining=True, check_fields=True)
            raise_if_invalid(decoded.violations, v.violations)
            ensure_name_free(tx, Kind.OFFER, prepared.name, None)
            now = self._clock.now()
            offer = replace(prepared, id=fresh_id(tx, Kind.OFFER, OFFER_PREFIX), created_at=now, updated_at=now)
            tx.save_offer(offer, new=True)
            return Change(offer, lambda records: records.put_offer(offer))

        return await self._writer.write(principal.tenant, work)

    async def update(self, principal: Principal, decoded: Decoded[Offer], mask: list[str] | None) -> Offer:
        """A partial update (domain.field_masks); lifecycle moves are updates of `status`."""
        require(principal, Permission.CATALOG_WRITE)
        patch = decoded.value
        if not patch.id:
            raise id_required(Kind.OFFER)
        paths = offer_rules.OFFER_UPDATES.paths(patch, mask)

        def work(tx: CatalogTx) -> Change[Offer]:
            current = tx.offer(patch.id)
            if current is None:
                raise not_found(Kind.OFFER, patch.id)
            updated = offer_rules.apply_update(current, patch, paths)
            v = ViolationCollector()
            v.violations.extend(offer_rules.validate_offer(updated))
            moved = updated.category_id != current.category_id
            touches_fields = moved or offer_rules.touches_custom_fields(paths)
            if touches_fields or updated.sub_category_id != current.sub_category_id:
                updated = conform_offer(tx, updated, v, joining=moved, check_fields=touches_fields)
            raise_if_invalid(decoded.violations, v.violations)
            assert current.status is not None and updated.status is not None
            offer_rules.check_transition(current.status, updated.status)
            if updated == current:
                return Change(current)
            if updated.name != current.name:
                ensure_name_free(tx, Kind.OFFER, updated.name, current.id)
            updated = replace(updated, updated_at=self._clock.now())
            tx.save_offer(updated, new=False)
            return Change(updated, lambda records: records.put_offer(updated))

        return await self._writer.write(principal.tenant, work)

    async def delete(self, principal: Principal, offer_id: str, *, force: bool) -> None:
        """Delete for good; an offer with interaction history needs `force` (its outcomes stay, its counters go)."""
        require(principal, Permission.CATALOG_WRITE)
        tenant = principal.tenant

        def forget(records: TenantRecords) -> None:
            records.remove(Kind.OFFER, offer_id)
            self._counters.forget_offer(tenant, offer_id)

        def work(tx: CatalogTx) -> Change[None]:
            if tx.offer(offer_id) is None:
                raise not_found(Kind.OFFER, offer_id)
            if not force and tx.has_outcomes(offer_id):
                raise FailedPrecondition(
                    f"offer {offer_id} has interaction history: archive it (status archived) to keep "
                    "it for reporting, or delete with force",
                    reason="OFFER_HAS_HISTORY",
                    metadata={"id": offer_id},
                )
            tx.delete(Kind.OFFER, offer_id)
            return Change(None, forget)

        await self._writer.write(tenant, work)
