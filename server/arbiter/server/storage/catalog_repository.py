"""Categories and sub-categories: persistence, the in-memory copy, and offers' referential checks (storage layer)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from ..domain.catalog import (
    CATEGORY_PREFIX,
    SUB_CATEGORY_PREFIX,
    Category,
    CategoryStatus,
    SubCategory,
    check_caller_id,
    conform_custom_fields,
    validate_category,
)
from ..domain.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ViolationCollector
from ..domain.field_masks import mask_paths
from ..domain.formulas import ComputedFields
from ..domain.ids import new_id
from ..domain.offers import Offer
from ..domain.timekeeping import to_epoch_micros
from .catalog_codec import category_from_row, category_to_json, sub_category_from_row, sub_category_to_json
from .paging import list_page
from .reader import Reader
from .rows import name_owner, row_exists
from .writer import Writer

CATEGORY_PATHS = ("name", "description", "status", "display_order", "custom_fields")
SUB_CATEGORY_PATHS = ("name", "description")
_CATEGORY_COLUMNS = "id, created_us, updated_us, body"
_SUB_COLUMNS = "id, created_us, updated_us, category_id, body"


@dataclass(slots=True)
class TenantCatalog:
    """One tenant's categories (with their compiled computed fields) and sub-categories."""

    categories: dict[str, Category] = field(default_factory=dict)
    computed: dict[str, ComputedFields] = field(default_factory=dict)
    sub_categories: dict[str, SubCategory] = field(default_factory=dict)
    version: int = 0


def _category_not_found(category_id: str) -> NotFound:
    return NotFound(f"category {category_id!r} not found", reason="CATEGORY_NOT_FOUND", metadata={"id": category_id})


def _sub_not_found(sub_id: str) -> NotFound:
    return NotFound(f"sub-category {sub_id!r} not found", reason="SUB_CATEGORY_NOT_FOUND", metadata={"id": sub_id})


class CatalogRepository:
    """Every tenant's business hierarchy: SQLite is the record, TenantCatalog the fast copy."""

    def __init__(self, writer: Writer, reader: Reader, clock: Callable[[], datetime]) -> None:
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._tenants: defaultdict[str, TenantCatalog] = defaultdict(TenantCatalog)

    def tenant(self, tenant: str) -> TenantCatalog:
        return self._tenants[tenant]

    # -- categories ----------------------------------------------------------

    def get_category(self, tenant: str, category_id: str) -> Category:
        category = self.tenant(tenant).categories.get(category_id)
        if category is None:
            raise _category_not_found(category_id)
        return category

    async def list_categories(
        self, tenant: str, status: CategoryStatus | None, requested_page_size: int, page_token: str
    ) -> tuple[list[Category], str]:
        rows, token = await list_page(
            self._reader,
            table="categories",
            columns=_CATEGORY_COLUMNS,
            tenant=tenant,
            conditions=["status = ?"] if status else [],
            params=[status.value] if status else [],
            requested_page_size=requested_page_size,
            page_token=page_token,
            filters=[status.value if status else None],
        )
        return [category_from_row(*row) for row in rows], token

    async def create_category(self, tenant: str, draft: Category, chosen_id: str) -> Category:
        if chosen_id:
            check_caller_id(CATEGORY_PREFIX, chosen_id, "categoryId")
        category = replace(draft, status=draft.status or CategoryStatus.ACTIVE)
        computed = validate_category(category)

        def work(db: Database) -> Category:
            category_id = chosen_id or _fresh_id(db, "categories", tenant, CATEGORY_PREFIX)
            if row_exists(db, "categories", tenant, category_id):
                raise AlreadyExists(
                    f"category {category_id!r} already exists", reason="CATEGORY_EXISTS", metadata={"id": category_id}
                )
            _check_category_name_free(db, tenant, category.name, None)
            now = self._clock()
            created = replace(category, id=category_id, created_at=now, updated_at=now)
            _write_category(db, tenant, created, insert=True)
            return created

        return await self._writer.run(work, lambda c: self._put_category(tenant, c, computed))

    async def update_category(self, tenant: str, patch: Category, mask: list[str] | None) -> Category:
        if not patch.id:
            raise InvalidArgument.single("id", "is required: it names the category to update")
        present = [
            path
            for path, value in (
                ("name", patch.name),
                ("description", patch.description),
                ("status", patch.status),
                ("display_order", patch.display_order),
                ("custom_fields", patch.custom_fields),
            )
            if value not in ("", None, 0, ())
        ]
        paths = mask_paths(mask, CATEGORY_PATHS) if mask else present
        if "status" in paths and patch.status is None:
            raise InvalidArgument.single("status", "must be set when the update mask names it")

        def work(db: Database) -> tuple[Category, ComputedFields]:
            row = _read_category(db, tenant, patch.id)
            if row is None:
                raise _category_not_found(patch.id)
            result = replace(row, **{p: getattr(patch, p) for p in paths})
            computed = validate_category(result)
            if result == row:
                return row, computed
            if result.name != row.name:
                _check_category_name_free(db, tenant, result.name, row.id)
            result = replace(result, updated_at=self._clock())
            _write_category(db, tenant, result, insert=False)
            return result, computed

        category, _ = await self._writer.run(work, lambda done: self._put_category(tenant, *done))
        return category

    async def delete_category(self, tenant: str, category_id: str) -> None:
        def work(db: Database) -> str:
            if not row_exists(db, "categories", tenant, category_id):
                raise _category_not_found(category_id)
            offers = _count(db, "SELECT count(*) FROM offers WHERE tenant = ? AND category_id = ?", tenant, category_id)
            if offers:
                raise FailedPrecondition(
                    f"category {category_id} still has {offers} offer{'s' if offers != 1 else ''}; "
                    "move or delete them first",
                    reason="CATEGORY_HAS_OFFERS",
                    metadata={"id": category_id, "offers": str(offers)},
                )
            subs = _count(
                db, "SELECT count(*) FROM sub_categories WHERE tenant = ? AND category_id = ?", tenant, category_id
            )
            if subs:
                raise FailedPrecondition(
                    f"category {category_id} still has {subs} sub-categor{'ies' if subs != 1 else 'y'}; "
                    "delete them first",
                    reason="CATEGORY_HAS_SUB_CATEGORIES",
                    metadata={"id": category_id, "subCategories": str(subs)},
                )
            db.execute("DELETE FROM categories WHERE tenant = ? AND id = ?", [tenant, category_id])
            return category_id

        def apply(deleted: str) -> None:
            catalog = self.tenant(tenant)
            catalog.categories.pop(deleted, None)
            catalog.computed.pop(deleted, None)
            catalog.version += 1

        await self._writer.run(work, apply)

    def _put_category(self, tenant: str, category: Category, computed: ComputedFields) -> None:
        catalog = self.tenant(tenant)
        catalog.categories[category.id] = category
        catalog.computed[category.id] = computed
        catalog.version += 1

    # -- sub-categories ------------------------------------------------------

    def get_sub_category(self, tenant: str, sub_id: str) -> SubCategory:
        sub = self.tenant(tenant).sub_categories.get(sub_id)
        if sub is None:
            raise _sub_not_found(sub_id)
        return sub

    async def list_sub_categories(
        self, tenant: str, category_id: str, requested_page_size: int, page_token: str
    ) -> tuple[list[SubCategory], str]:
        rows, token = await list_page(
            self._reader,
            table="sub_categories",
            columns=_SUB_COLUMNS,
            tenant=tenant,
            conditions=["category_id = ?"] if category_id else [],
            params=[category_id] if category_id else [],
            requested_page_size=requested_page_size,
            page_token=page_token,
            filters=[category_id],
        )
        return [sub_category_from_row(*row) for row in rows], token

    async def create_sub_category(self, tenant: str, draft: SubCategory, chosen_id: str) -> SubCategory:
        if chosen_id:
            check_caller_id(SUB_CATEGORY_PREFIX, chosen_id, "subCategoryId")
        v = ViolationCollector()
        _validate_sub_category(v, draft)
        if not draft.category_id:
            v.add("categoryId", "is required: a sub-category belongs to a category")
        v.raise_if_any()

        def work(db: Database) -> SubCategory:
            if not row_exists(db, "categories", tenant, draft.category_id):
                raise InvalidArgument.single("categoryId", f"category {draft.category_id!r} does not exist")
            sub_id = chosen_id or _fresh_id(db, "sub_categories", tenant, SUB_CATEGORY_PREFIX)
            if row_exists(db, "sub_categories", tenant, sub_id):
                raise AlreadyExists(
                    f"sub-category {sub_id!r} already exists", reason="SUB_CATEGORY_EXISTS", metadata={"id": sub_id}
                )
            _check_sub_name_free(db, tenant, draft.category_id, draft.name, None)
            now = self._clock()
            created = replace(draft, id=sub_id, created_at=now, updated_at=now)
            _write_sub_category(db, tenant, created, insert=True)
            return created

        return await self._writer.run(work, lambda s: self._put_sub(tenant, s))

    async def update_sub_category(self, tenant: str, patch: SubCategory, mask: list[str] | None) -> SubCategory:
        if not patch.id:
            raise InvalidArgument.single("id", "is required: it names the sub-category to update")
        if mask and any(p in ("category_id", "categoryId") for p in mask):
            raise InvalidArgument.single("categoryId", "a sub-category cannot move to another category")
        present = [p for p, value in (("name", patch.name), ("description", patch.description)) if value]
        paths = mask_paths(mask, SUB_CATEGORY_PATHS) if mask else present
        current = self.get_sub_category(tenant, patch.id)
        if patch.category_id and patch.category_id != current.category_id:
            raise InvalidArgument.single("categoryId", "a sub-category cannot move to another category")
        v = ViolationCollector()
        _validate_sub_category(v, replace(current, **{p: getattr(patch, p) for p in paths}))
        v.raise_if_any()

        def work(db: Database) -> SubCategory:
            row = _read_sub(db, tenant, patch.id)
            if row is None:
                raise _sub_not_found(patch.id)
            result = replace(row, **{p: getattr(patch, p) for p in paths})
            if result == row:
                return row
            if result.name != row.name:
                _check_sub_name_free(db, tenant, row.category_id, result.name, row.id)
            result = replace(result, updated_at=self._clock())
            _write_sub_category(db, tenant, result, insert=False)
            return result

        return await self._writer.run(work, lambda s: self._put_sub(tenant, s))

    async def delete_sub_category(self, tenant: str, sub_id: str) -> None:
        def work(db: Database) -> str:
            if not row_exists(db, "sub_categories", tenant, sub_id):
                raise _sub_not_found(sub_id)
            offers = _count(db, "SELECT count(*) FROM offers WHERE tenant = ? AND sub_category_id = ?", tenant, sub_id)
            if offers:
                raise FailedPrecondition(
                    f"sub-category {sub_id} still has {offers} offer{'s' if offers != 1 else ''}; "
                    "move or delete them first",
                    reason="SUB_CATEGORY_HAS_OFFERS",
                    metadata={"id": sub_id, "offers": str(offers)},
                )
            db.execute("DELETE FROM sub_categories WHERE tenant = ? AND id = ?", [tenant, sub_id])
            return sub_id

        def apply(deleted: str) -> None:
            catalog = self.tenant(tenant)
            catalog.sub_categories.pop(deleted, None)
            catalog.version += 1

        await self._writer.run(work, apply)

    def _put_sub(self, tenant: str, sub: SubCategory) -> None:
        catalog = self.tenant(tenant)
        catalog.sub_categories[sub.id] = sub
        catalog.version += 1

    # -- offers' references ------------------------------------------------------

    def conform_offer(
        self,
        db: Database,
        tenant: str,
        offer: Offer,
        v: ViolationCollector,
        *,
        joining: bool,
        check_fields: bool,
    ) -> Offer:
        """Check an offer's category references (in a writer job) and, when asked, its custom fields.

        `joining` means the offer is new or moves to another category: the
        category must then be active. Custom fields are checked (and defaults
        filled in) when the write touches them or the category.
        """
        if not offer.category_id:
            if offer.custom_fields and check_fields:
                v.add("customFields", "an offer without a category has no schema, so it cannot carry custom fields")
            return offer
        # An id already reported as malformed (too long) names nothing worth looking up.
        reported = {violation.field for violation in v.violations}
        category = None if "categoryId" in reported else _read_category(db, tenant, offer.category_id)
        if category is None and "categoryId" not in reported:
            v.add("categoryId", f"category {offer.category_id!r} does not exist")
        if category is not None and joining and category.status is CategoryStatus.ARCHIVED:
            v.add("categoryId", f"category {offer.category_id} is archived; offers cannot join it")
        if offer.sub_category_id and "subCategoryId" not in reported:
            sub = _read_sub(db, tenant, offer.sub_category_id)
            if sub is None:
                v.add("subCategoryId", f"sub-category {offer.sub_category_id!r} does not exist")
            elif sub.category_id != offer.category_id:
                v.add(
                    "subCategoryId",
                    f"sub-category {sub.id} belongs to category {sub.category_id}, not {offer.category_id}",
                )
        if category is None:
            return offer
        if check_fields:
            return replace(offer, custom_fields=conform_custom_fields(category, offer.custom_fields, v))
        return offer

    def load(self, conn: sqlite3.Connection) -> None:
        """Fill the in-memory copy from the database (start-up)."""
        for tenant, *row in conn.execute("SELECT tenant, id, created_us, updated_us, body FROM categories"):
            category = category_from_row(*row)
            try:
                computed = validate_category(category)
            except InvalidArgument:  # stored before a rule tightened: keep it, without computed fields
                computed = ComputedFields(())
            self._put_category(tenant, category, computed)
        for tenant, *row in conn.execute(
            "SELECT tenant, id, created_us, updated_us, category_id, body FROM sub_categories"
        ):
            self._put_sub(tenant, sub_category_from_row(*row))


def _validate_sub_category(v: ViolationCollector, sub: SubCategory) -> None:
    if not sub.name.strip():
        v.add("name", "is required and must not be only whitespace" if sub.name else "is required")
    elif len(sub.name) > 255:
        v.add("name", f"must be at most 255 characters, got {len(sub.name)}")
    if len(sub.description) > 2_000:
        v.add("description", "must be at most 2000 characters")


def _count(db: Database, sql: str, *params: Any) -> int:
    return int(db.execute(sql, list(params)).fetchone()[0])


def _fresh_id(db: Database, table: str, tenant: str, prefix: str) -> str:
    while True:
        candidate = new_id(prefix)
        if not row_exists(db, table, tenant, candidate):
            return candidate


def _read_category(db: Database, tenant: str, category_id: str) -> Category | None:
    row = db.execute(
        f"SELECT {_CATEGORY_COLUMNS} FROM categories WHERE tenant = ? AND id = ?", [tenant, category_id]
    ).fetchone()
    return None if row is None else category_from_row(*row)


def _read_sub(db: Database, tenant: str, sub_id: str) -> SubCategory | None:
    row = db.execute(
        f"SELECT {_SUB_COLUMNS} FROM sub_categories WHERE tenant = ? AND id = ?", [tenant, sub_id]
    ).fetchone()
    return None if row is None else sub_category_from_row(*row)


def _check_category_name_free(db: Database, tenant: str, name: str, own_id: str | None) -> None:
    owner = name_owner(db, "categories", tenant, name)
    if owner is not None and owner != own_id:
        raise AlreadyExists(
            f"a category named {name!r} already exists ({owner})",
            reason="CATEGORY_NAME_TAKEN",
            metadata={"name": name, "id": owner},
        )


def _check_sub_name_free(db: Database, tenant: str, category_id: str, name: str, own_id: str | None) -> None:
    owner = name_owner(db, "sub_categories", tenant, name, category_id=category_id)
    if owner is not None and owner != own_id:
        raise AlreadyExists(
            f"category {category_id} already has a sub-category named {name!r} ({owner})",
            reason="SUB_CATEGORY_NAME_TAKEN",
            metadata={"name": name, "id": owner},
        )


def _write_category(db: Database, tenant: str, category: Category, *, insert: bool) -> None:
    assert category.created_at is not None and category.updated_at is not None and category.status is not None
    values = [
        category.name,
        category.status.value,
        to_epoch_micros(category.created_at),
        to_epoch_micros(category.updated_at),
        category_to_json(category),
        tenant,
        category.id,
    ]
    if insert:
        db.execute(
            "INSERT INTO categories (name, status, created_us, updated_us, body, tenant, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    else:
        db.execute(
            "UPDATE categories SET name = ?, status = ?, created_us = ?, updated_us = ?, body = ? "
            "WHERE tenant = ? AND id = ?",
            values,
        )


def _write_sub_category(db: Database, tenant: str, sub: SubCategory, *, insert: bool) -> None:
    assert sub.created_at is not None and sub.updated_at is not None
    values = [
        sub.category_id,
        sub.name,
        to_epoch_micros(sub.created_at),
        to_epoch_micros(sub.updated_at),
        sub_category_to_json(sub),
        tenant,
        sub.id,
    ]
    if insert:
        db.execute(
            "INSERT INTO sub_categories (category_id, name, created_us, updated_us, body, tenant, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    else:
        db.execute(
            "UPDATE sub_categories SET category_id = ?, name = ?, created_us = ?, updated_us = ?, body = ? "
            "WHERE tenant = ? AND id = ?",
            values,
        )
