"""Offer persistence: create, read, list, update and delete (storage layer).

Writes are jobs on the writer thread that read the current row, apply the
domain rules and write, all inside the job's savepoint, so concurrent updates
never lose each other's changes; once committed, the in-memory cache is
updated on the event loop before the caller hears back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from sqlite_utils import Database

from ..domain import offer_rules
from ..domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ViolationCollector,
    merge_violations,
)
from ..domain.ids import OFFER_PREFIX, new_id
from ..domain.offers import Offer, OfferStatus
from ..domain.timekeeping import to_epoch_micros
from .catalog_repository import CatalogRepository
from .offer_cache import OfferCache
from .offer_codec import offer_from_row, offer_to_json
from .paging import list_page
from .reader import Reader
from .rows import name_owner
from .writer import Writer

MAX_FILTER_VALUES = 100

# Called inside a delete job: does the offer have interaction history?
HistoryCheck = Callable[[Database, str, str], bool]
# Called inside a delete job, after the offer row is gone (drops its counters' rows).
DeleteHook = Callable[[Database, str, str], None]
# Called on the loop after an offer is deleted (drops its in-memory counters).
DeleteListener = Callable[[str, str], None]


def _not_found(offer_id: str) -> NotFound:
    return NotFound(f"offer {offer_id!r} not found", reason="OFFER_NOT_FOUND", metadata={"id": offer_id})


class OfferRepository:
    """Offers of every tenant: SQLite is the record, OfferCache the fast copy."""

    def __init__(
        self,
        writer: Writer,
        reader: Reader,
        cache: OfferCache,
        catalog: CatalogRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self._writer = writer
        self._catalog = catalog
        self._reader = reader
        self._cache = cache
        self._clock = clock
        self.history_check: HistoryCheck = lambda db, tenant, offer_id: False
        self.delete_hooks: list[DeleteHook] = []
        self.delete_listeners: list[DeleteListener] = []

    # -- reads ------------------------------------------------------------

    def get(self, tenant: str, offer_id: str) -> Offer:
        offer = self._cache.get(tenant, offer_id)
        if offer is None:
            raise _not_found(offer_id)
        return offer

    async def list_page(
        self,
        tenant: str,
        *,
        status: OfferStatus | None,
        category_ids: list[str],
        tags: list[str],
        requested_page_size: int,
        page_token: str,
    ) -> tuple[list[Offer], str]:
        """One page of offers ordered by (created_at, id), and the next page's token ("" at the end)."""
        for name, values in (("categoryIds", category_ids), ("tags", tags)):
            if len(values) > MAX_FILTER_VALUES:
                raise InvalidArgument.single(name, f"at most {MAX_FILTER_VALUES} values, got {len(values)}")
        category_ids, tags = sorted(set(category_ids)), sorted(set(tags))
        conditions: list[str] = []
        params: list[object] = []
        if status is not None:
            conditions.append("status = ?")
            params.append(status.value)
        if category_ids:
            conditions.append(f"category_id IN ({','.join('?' * len(category_ids))})")
            params.extend(category_ids)
        if tags:
            conditions.append(
                f"id IN (SELECT offer_id FROM offer_tags WHERE tenant = ? AND tag IN "
                f"({','.join('?' * len(tags))}) GROUP BY offer_id HAVING count(*) = ?)"
            )
            params.extend([tenant, *tags, len(tags)])
        rows, next_token = await list_page(
            self._reader,
            table="offers",
            columns="id, created_us, updated_us, body",
            tenant=tenant,
            conditions=conditions,
            params=params,
            requested_page_size=requested_page_size,
            page_token=page_token,
            filters=[status.value if status else None, category_ids, tags],
        )
        return [offer_from_row(*row) for row in rows], next_token

    # -- writes -----------------------------------------------------------

    async def create(self, tenant: str, draft: Offer, decode_violations: Sequence[FieldViolation] = ()) -> Offer:
        """Create an offer; `decode_violations` (problems met decoding the request) are reported with the rest."""

        def work(db: Database) -> Offer:
            prepared, violations = offer_rules.prepare_new_offer(draft)
            v = ViolationCollector()
            v.violations.extend(violations)
            prepared = self._catalog.conform_offer(db, tenant, prepared, v, joining=True, check_fields=True)
            if problems := merge_violations(decode_violations, v.violations):
                raise InvalidArgument(problems)
            _check_name_free(db, tenant, prepared.name, None)
            offer_id = new_id(OFFER_PREFIX)
            while _read_row(db, tenant, offer_id) is not None:
                offer_id = new_id(OFFER_PREFIX)
            now = self._clock()
            offer = replace(prepared, id=offer_id, created_at=now, updated_at=now)
            _write(db, tenant, offer, insert=True)
            return offer

        return await self._writer.run(work, lambda offer: self._cache.put(tenant, offer))

    async def update(
        self, tenant: str, patch: Offer, mask: list[str] | None, decode_violations: Sequence[FieldViolation] = ()
    ) -> Offer:
        if not patch.id:
            raise InvalidArgument.single("id", "is required: it names the offer to update")
        paths = offer_rules.normalize_mask(mask) if mask else offer_rules.present_paths(patch)

        def work(db: Database) -> Offer:
            current = _read_row(db, tenant, patch.id)
            if current is None:
                raise _not_found(patch.id)
            updated = offer_rules.apply_update(current, patch, paths)
            v = ViolationCollector()
            v.violations.extend(offer_rules.validate_offer(updated))
            moved = updated.category_id != current.category_id
            touches_fields = moved or any(p == "custom_fields" or p.startswith("custom_fields.") for p in paths)
            if touches_fields or updated.sub_category_id != current.sub_category_id:
                updated = self._catalog.conform_offer(
                    db, tenant, updated, v, joining=moved, check_fields=touches_fields
                )
            if problems := merge_violations(decode_violations, v.violations):
                raise InvalidArgument(problems)
            assert current.status is not None and updated.status is not None
            offer_rules.check_transition(current.status, updated.status)
            if updated == current:
                return current
            if updated.name != current.name:
                _check_name_free(db, tenant, updated.name, current.id)
            updated = replace(updated, updated_at=self._clock())
            _write(db, tenant, updated, insert=False)
            return updated

        return await self._writer.run(work, lambda offer: self._cache.put(tenant, offer))

    async def delete(self, tenant: str, offer_id: str, *, force: bool) -> None:
        def work(db: Database) -> str:
            if _read_row(db, tenant, offer_id) is None:
                raise _not_found(offer_id)
            if not force and self.history_check(db, tenant, offer_id):
                raise FailedPrecondition(
                    f"offer {offer_id} has interaction history: archive it (status archived) to keep "
                    "it for reporting, or delete with force",
                    reason="OFFER_HAS_HISTORY",
                    metadata={"id": offer_id},
                )
            db.execute("DELETE FROM offers WHERE tenant = ? AND id = ?", [tenant, offer_id])
            db.execute("DELETE FROM offer_tags WHERE tenant = ? AND offer_id = ?", [tenant, offer_id])
            for hook in self.delete_hooks:
                hook(db, tenant, offer_id)
            return offer_id

        def apply(deleted: str) -> None:
            self._cache.remove(tenant, deleted)
            for listener in self.delete_listeners:
                listener(tenant, deleted)

        await self._writer.run(work, apply)

    def load(self) -> int:
        """Fill the cache from the database (start-up, before serving)."""
        return self._reader.run_now(self._cache.load)


def _read_row(db: Database, tenant: str, offer_id: str) -> Offer | None:
    row = db.execute(
        "SELECT id, created_us, updated_us, body FROM offers WHERE tenant = ? AND id = ?", [tenant, offer_id]
    ).fetchone()
    return None if row is None else offer_from_row(*row)


def _check_name_free(db: Database, tenant: str, name: str, own_id: str | None) -> None:
    owner = name_owner(db, "offers", tenant, name)
    if owner is not None and owner != own_id:
        raise AlreadyExists(
            f"an offer named {name!r} already exists ({owner}); names are unique per tenant",
            reason="OFFER_NAME_TAKEN",
            metadata={"name": name, "id": owner},
        )


def _write(db: Database, tenant: str, offer: Offer, *, insert: bool) -> None:
    assert offer.created_at is not None and offer.updated_at is not None and offer.status is not None
    values = [
        offer.name,
        offer.status.value,
        offer.category_id,
        offer.sub_category_id,
        to_epoch_micros(offer.created_at),
        to_epoch_micros(offer.updated_at),
        offer_to_json(offer),
        tenant,
        offer.id,
    ]
    if insert:
        db.execute(
            "INSERT INTO offers (name, status, category_id, sub_category_id, created_us, updated_us, body, tenant, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    else:
        db.execute(
            "UPDATE offers SET name = ?, status = ?, category_id = ?, sub_category_id = ?, created_us = ?, "
            "updated_us = ?, body = ? WHERE tenant = ? AND id = ?",
            values,
        )
        db.execute("DELETE FROM offer_tags WHERE tenant = ? AND offer_id = ?", [tenant, offer.id])
    db.conn.executemany(
        "INSERT INTO offer_tags (tenant, tag, offer_id) VALUES (?, ?, ?)",
        [(tenant, tag, offer.id) for tag in offer.tags],
    )
