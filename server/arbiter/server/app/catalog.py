"""The business hierarchy's use cases: categories and sub-categories (application layer)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..domain.access import Permission, Principal, require
from ..domain.catalog import (
    CATEGORY_PREFIX,
    CATEGORY_UPDATES,
    SUB_CATEGORY_PREFIX,
    SUB_CATEGORY_UPDATES,
    Category,
    CategoryStatus,
    SubCategory,
    check_caller_id,
    count_nonconforming,
    sub_category_violations,
    validate_category,
)
from ..domain.errors import (
    Decoded,
    FailedPrecondition,
    InvalidArgument,
    ViolationCollector,
    raise_if_invalid,
    violations_of,
)
from ..domain.resources import Kind, already_exists, id_required, not_found
from .paging import Page, PageRequest, fetch_page
from .ports import CatalogTx
from .writes import Change, ConfigUseCases, ensure_name_free, fresh_id


@dataclass(frozen=True, slots=True)
class UpdatedCategory:
    category: Category
    nonconforming_offers: int  # offers whose custom fields the (new) schema would reject; they are left as they are


# What a category or sub-category may still hold when it is deleted: (one, many, what to do, reason suffix).
_CONTENTS = {
    "offers": ("offer", "offers", "move or delete them first", "OFFERS"),
    "subCategories": ("sub-category", "sub-categories", "delete them first", "SUB_CATEGORIES"),
}


def _refuse_while(kind: Kind, resource_id: str, contents: str, count: int) -> None:
    """A category or sub-category is deleted only once it holds nothing."""
    if not count:
        return
    one, many, hint, suffix = _CONTENTS[contents]
    raise FailedPrecondition(
        f"{kind.noun} {resource_id} still has {count} {one if count == 1 else many}; {hint}",
        reason=f"{kind.reason_prefix}_HAS_{suffix}",
        metadata={"id": resource_id, contents: str(count)},
    )


class CatalogUseCases(ConfigUseCases):
    """Categories and sub-categories of the caller's tenant."""

    # -- categories ----------------------------------------------------------

    def get_category(self, principal: Principal, category_id: str) -> Category:
        require(principal, Permission.CATALOG_READ)
        return self._views.current(principal.tenant).category(category_id)

    async def list_categories(
        self, principal: Principal, status: Decoded[CategoryStatus | None], page: PageRequest
    ) -> Page[Category]:
        return await self._list_by_status(principal, status, page, "categories", self._store.list_categories)

    async def create_category(self, principal: Principal, decoded: Decoded[Category], chosen_id: str) -> Category:
        require(principal, Permission.CATALOG_WRITE)
        category = replace(decoded.value, status=decoded.value.status or CategoryStatus.ACTIVE)
        raise_if_invalid(
            decoded.violations,
            violations_of(
                lambda: check_caller_id(CATEGORY_PREFIX, chosen_id, "categoryId") if chosen_id else None,
                lambda: validate_category(category),
            ),
        )

        def work(tx: CatalogTx) -> Change[Category]:
            category_id = chosen_id or fresh_id(tx, Kind.CATEGORY, CATEGORY_PREFIX)
            if tx.exists(Kind.CATEGORY, category_id):
                raise already_exists(Kind.CATEGORY, category_id)
            ensure_name_free(tx, Kind.CATEGORY, category.name, None)
            now = self._clock.now()
            created = replace(category, id=category_id, created_at=now, updated_at=now)
            tx.save_category(created, new=True)
            return Change(created, lambda records: records.put_category(created))

        return await self._writer.write(principal.tenant, work)

    async def update_category(
        self, principal: Principal, decoded: Decoded[Category], mask: list[str] | None
    ) -> UpdatedCategory:
        require(principal, Permission.CATALOG_WRITE)
        patch = decoded.value
        if not patch.id:
            raise id_required(Kind.CATEGORY)
        paths = CATEGORY_UPDATES.paths(patch, mask)
        CATEGORY_UPDATES.check_required(patch, paths, decoded.violations)

        def work(tx: CatalogTx) -> Change[Category]:
            current = tx.category(patch.id)
            if current is None:
                raise not_found(Kind.CATEGORY, patch.id)
            result = CATEGORY_UPDATES.apply(current, patch, paths)
            raise_if_invalid(decoded.violations, violations_of(lambda: validate_category(result)))
            if result == current:
                return Change(current)
            if result.name != current.name:
                ensure_name_free(tx, Kind.CATEGORY, result.name, current.id)
            result = replace(result, updated_at=self._clock.now())
            tx.save_category(result, new=False)
            return Change(result, lambda records: records.put_category(result))

        tenant = principal.tenant
        category = await self._writer.write(tenant, work)
        offers = [o.custom_fields for o in self._views.current(tenant).offers.values() if o.category_id == category.id]
        return UpdatedCategory(category, count_nonconforming(category, offers))

    async def delete_category(self, principal: Principal, category_id: str) -> None:
        """Refused while the category has offers or sub-categories."""
        require(principal, Permission.CATALOG_WRITE)

        def work(tx: CatalogTx) -> Change[None]:
            if not tx.exists(Kind.CATEGORY, category_id):
                raise not_found(Kind.CATEGORY, category_id)
            _refuse_while(Kind.CATEGORY, category_id, "offers", tx.count_offers(category_id=category_id))
            _refuse_while(Kind.CATEGORY, category_id, "subCategories", tx.count_sub_categories(category_id))
            tx.delete(Kind.CATEGORY, category_id)
            return Change(None, lambda records: records.remove(Kind.CATEGORY, category_id))

        await self._writer.write(principal.tenant, work)

    # -- sub-categories ------------------------------------------------------

    def get_sub_category(self, principal: Principal, sub_id: str) -> SubCategory:
        require(principal, Permission.CATALOG_READ)
        return self._views.current(principal.tenant).sub_category(sub_id)

    async def list_sub_categories(self, principal: Principal, category_id: str, page: PageRequest) -> Page[SubCategory]:
        require(principal, Permission.CATALOG_READ)
        tenant = principal.tenant
        return await fetch_page(
            page,
            tenant,
            "sub_categories",
            [category_id],
            lambda after, limit: self._store.list_sub_categories(tenant, category_id, after, limit),
        )

    async def create_sub_category(self, principal: Principal, draft: SubCategory, chosen_id: str) -> SubCategory:
        require(principal, Permission.CATALOG_WRITE)
        if chosen_id:
            check_caller_id(SUB_CATEGORY_PREFIX, chosen_id, "subCategoryId")
        v = ViolationCollector()
        v.violations.extend(sub_category_violations(draft))
        if not draft.category_id:
            v.add("categoryId", "is required: a sub-category belongs to a category")
        v.raise_if_any()

        def work(tx: CatalogTx) -> Change[SubCategory]:
            if not tx.exists(Kind.CATEGORY, draft.category_id):
                raise InvalidArgument.single("categoryId", f"category {draft.category_id!r} does not exist")
            sub_id = chosen_id or fresh_id(tx, Kind.SUB_CATEGORY, SUB_CATEGORY_PREFIX)
            if tx.exists(Kind.SUB_CATEGORY, sub_id):
                raise already_exists(Kind.SUB_CATEGORY, sub_id)
            ensure_name_free(tx, Kind.SUB_CATEGORY, draft.name, None, category_id=draft.category_id)
            now = self._clock.now()
            created = replace(draft, id=sub_id, created_at=now, updated_at=now)
            tx.save_sub_category(created, new=True)
            return Change(created, lambda records: records.put_sub_category(created))

        return await self._writer.write(principal.tenant, work)

    async def update_sub_category(
        self, principal: Principal, patch: SubCategory, mask: list[str] | None
    ) -> SubCategory:
        require(principal, Permission.CATALOG_WRITE)
        if not patch.id:
            raise id_required(Kind.SUB_CATEGORY)
        if mask and any(p in ("category_id", "categoryId") for p in mask):
            raise _cannot_move()
        paths = SUB_CATEGORY_UPDATES.paths(patch, mask)
        current = self._views.current(principal.tenant).sub_category(patch.id)
        if patch.category_id and patch.category_id != current.category_id:
            raise _cannot_move()
        raise_if_invalid((), sub_category_violations(SUB_CATEGORY_UPDATES.apply(current, patch, paths)))

        def work(tx: CatalogTx) -> Change[SubCategory]:
            row = tx.sub_category(patch.id)
            if row is None:
                raise not_found(Kind.SUB_CATEGORY, patch.id)
            result = SUB_CATEGORY_UPDATES.apply(row, patch, paths)
            if result == row:
                return Change(row)
            if result.name != row.name:
                ensure_name_free(tx, Kind.SUB_CATEGORY, result.name, row.id, category_id=row.category_id)
            result = replace(result, updated_at=self._clock.now())
            tx.save_sub_category(result, new=False)
            return Change(result, lambda records: records.put_sub_category(result))

        return await self._writer.write(principal.tenant, work)

    async def delete_sub_category(self, principal: Principal, sub_id: str) -> None:
        """Refused while the sub-category has offers."""
        require(principal, Permission.CATALOG_WRITE)

        def work(tx: CatalogTx) -> Change[None]:
            if not tx.exists(Kind.SUB_CATEGORY, sub_id):
                raise not_found(Kind.SUB_CATEGORY, sub_id)
            _refuse_while(Kind.SUB_CATEGORY, sub_id, "offers", tx.count_offers(sub_category_id=sub_id))
            tx.delete(Kind.SUB_CATEGORY, sub_id)
            return Change(None, lambda records: records.remove(Kind.SUB_CATEGORY, sub_id))

        await self._writer.write(principal.tenant, work)


def _cannot_move() -> InvalidArgument:
    return InvalidArgument.single("categoryId", "a sub-category cannot move to another category")
