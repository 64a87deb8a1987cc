"""Offers, categories, sub-categories, contact policies and tenant settings in SQL (storage layer).

Transactions are writer jobs: the use case's work reads and writes through a
`SqlCatalogTx` on the writer thread, inside the job's savepoint, so
concurrent updates never lose each other's changes and a failed job leaves
nothing behind.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from ...app.ports import CatalogTx, OfferQuery, StoredTenant
from ...domain.catalog import Category, CategoryStatus, SubCategory
from ...domain.offers import Offer
from ...domain.pagination import PageCursor
from ...domain.policies import ContactPolicy, PolicyStatus
from ...domain.resources import Kind
from ...domain.tenants import TenantSettings
from ...domain.timekeeping import from_epoch_micros, to_epoch_micros
from .catalog_codec import category_from_row, category_to_json, sub_category_from_row, sub_category_to_json
from .connection import SqlConnection
from .offer_codec import offer_from_row, offer_to_json
from .paging import rows_after
from .policy_codec import policy_from_row, policy_to_json
from .reader import Reader
from .writer import Writer

T = TypeVar("T")

TABLES = {
    Kind.OFFER: "offers",
    Kind.CATEGORY: "categories",
    Kind.SUB_CATEGORY: "sub_categories",
    Kind.POLICY: "contact_policies",
}
_OFFER_COLUMNS = "id, created_us, updated_us, body"
_CATEGORY_COLUMNS = "id, created_us, updated_us, body"
_SUB_COLUMNS = "id, created_us, updated_us, category_id, body"
_POLICY_COLUMNS = "id, created_us, updated_us, body"


def _stamps(resource: Offer | Category | SubCategory | ContactPolicy) -> tuple[int, int]:
    assert resource.created_at is not None and resource.updated_at is not None
    return to_epoch_micros(resource.created_at), to_epoch_micros(resource.updated_at)


class SqlCatalogTx(CatalogTx):
    """One tenant's configuration inside a writer job."""

    def __init__(self, db: SqlConnection, tenant: str) -> None:
        self._db = db
        self._tenant = tenant

    def _one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._db.execute(sql, [self._tenant, *params]).fetchone()
        return row

    def offer(self, offer_id: str) -> Offer | None:
        row = self._one(f"SELECT {_OFFER_COLUMNS} FROM offers WHERE tenant = ? AND id = ?", offer_id)
        return None if row is None else offer_from_row(*row)

    def category(self, category_id: str) -> Category | None:
        row = self._one(f"SELECT {_CATEGORY_COLUMNS} FROM categories WHERE tenant = ? AND id = ?", category_id)
        return None if row is None else category_from_row(*row)

    def sub_category(self, sub_id: str) -> SubCategory | None:
        row = self._one(f"SELECT {_SUB_COLUMNS} FROM sub_categories WHERE tenant = ? AND id = ?", sub_id)
        return None if row is None else sub_category_from_row(*row)

    def policy(self, policy_id: str) -> ContactPolicy | None:
        row = self._one(f"SELECT {_POLICY_COLUMNS} FROM contact_policies WHERE tenant = ? AND id = ?", policy_id)
        return None if row is None else policy_from_row(*row)

    def exists(self, kind: Kind, resource_id: str) -> bool:
        return self._one(f"SELECT 1 FROM {TABLES[kind]} WHERE tenant = ? AND id = ?", resource_id) is not None

    def name_owner(self, kind: Kind, name: str, *, category_id: str = "") -> str | None:
        if kind is Kind.SUB_CATEGORY:
            row = self._one(
                "SELECT id FROM sub_categories WHERE tenant = ? AND name = ? AND category_id = ?", name, category_id
            )
        else:
            row = self._one(f"SELECT id FROM {TABLES[kind]} WHERE tenant = ? AND name = ?", name)
        return None if row is None else str(row[0])

    def count_offers(self, *, category_id: str = "", sub_category_id: str = "") -> int:
        column, value = ("sub_category_id", sub_category_id) if sub_category_id else ("category_id", category_id)
        row = self._one(f"SELECT count(*) FROM offers WHERE tenant = ? AND {column} = ?", value)
        assert row is not None
        return int(row[0])

    def count_sub_categories(self, category_id: str) -> int:
        row = self._one("SELECT count(*) FROM sub_categories WHERE tenant = ? AND category_id = ?", category_id)
        assert row is not None
        return int(row[0])

    def has_outcomes(self, offer_id: str) -> bool:
        return self._one("SELECT 1 FROM outcomes WHERE tenant = ? AND offer_id = ? LIMIT 1", offer_id) is not None

    def _save(self, table: str, columns: dict[str, Any], resource_id: str, *, new: bool) -> None:
        if new:
            names = [*columns, "tenant", "id"]
            self._db.execute(
                f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                [*columns.values(), self._tenant, resource_id],
            )
        else:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            self._db.execute(
                f"UPDATE {table} SET {assignments} WHERE tenant = ? AND id = ?",
                [*columns.values(), self._tenant, resource_id],
            )

    def save_offer(self, offer: Offer, *, new: bool) -> None:
        assert offer.status is not None
        created_us, updated_us = _stamps(offer)
        columns = {
            "name": offer.name,
            "status": offer.status.value,
            "category_id": offer.category_id,
            "sub_category_id": offer.sub_category_id,
            "created_us": created_us,
            "updated_us": updated_us,
            "body": offer_to_json(offer),
        }
        self._save("offers", columns, offer.id, new=new)
        if not new:
            self._db.execute("DELETE FROM offer_tags WHERE tenant = ? AND offer_id = ?", [self._tenant, offer.id])
        self._db.executemany(
            "INSERT INTO offer_tags (tenant, tag, offer_id) VALUES (?, ?, ?)",
            [(self._tenant, tag, offer.id) for tag in offer.tags],
        )

    def save_category(self, category: Category, *, new: bool) -> None:
        assert category.status is not None
        created_us, updated_us = _stamps(category)
        columns = {
            "name": category.name,
            "status": category.status.value,
            "created_us": created_us,
            "updated_us": updated_us,
            "body": category_to_json(category),
        }
        self._save("categories", columns, category.id, new=new)

    def save_sub_category(self, sub: SubCategory, *, new: bool) -> None:
        created_us, updated_us = _stamps(sub)
        columns = {
            "category_id": sub.category_id,
            "name": sub.name,
            "created_us": created_us,
            "updated_us": updated_us,
            "body": sub_category_to_json(sub),
        }
        self._save("sub_categories", columns, sub.id, new=new)

    def save_policy(self, policy: ContactPolicy, *, new: bool) -> None:
        assert policy.status is not None
        created_us, updated_us = _stamps(policy)
        columns = {
            "name": policy.name,
            "status": policy.status.value,
            "created_us": created_us,
            "updated_us": updated_us,
            "body": policy_to_json(policy),
        }
        self._save("contact_policies", columns, policy.id, new=new)

    def save_settings(self, settings: TenantSettings) -> None:
        assert settings.updated_at is not None
        self._db.execute(
            "INSERT INTO tenant_settings (tenant, timezone, updated_us) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant) DO UPDATE SET timezone = excluded.timezone, updated_us = excluded.updated_us",
            [self._tenant, settings.timezone, to_epoch_micros(settings.updated_at)],
        )

    def delete(self, kind: Kind, resource_id: str) -> bool:
        params = [self._tenant, resource_id]
        cursor = self._db.execute(f"DELETE FROM {TABLES[kind]} WHERE tenant = ? AND id = ?", params)
        if kind is Kind.OFFER and cursor.rowcount:
            # Its tags and durable counters go with it; its outcomes stay for reporting.
            for table in ("offer_tags", "offer_daily", "model_stats"):
                self._db.execute(f"DELETE FROM {table} WHERE tenant = ? AND offer_id = ?", params)
        return bool(cursor.rowcount)


class SqlCatalogStore:
    """The catalogue's system of record."""

    def __init__(self, writer: Writer, reader: Reader) -> None:
        self._writer = writer
        self._reader = reader

    def load(self) -> dict[str, StoredTenant]:
        return self._reader.run_now(load_tenants)

    def reload(
        self, tenant: str | None, apply: Callable[[dict[str, StoredTenant]], None]
    ) -> Awaitable[dict[str, StoredTenant]]:
        # On the writer thread, so the read and `apply` fall in line with this server's own commits.
        return self._writer.submit(lambda db: load_tenants(db, tenant), apply)

    async def transact(
        self, tenant: str, work: Callable[[CatalogTx], T], apply: Callable[[T], None] | None = None
    ) -> T:
        return await self._writer.run(lambda db: work(SqlCatalogTx(db, tenant)), apply)

    async def list_offers(self, tenant: str, query: OfferQuery, after: PageCursor | None, limit: int) -> list[Offer]:
        conditions: list[str] = []
        params: list[object] = []
        if query.status is not None:
            conditions.append("status = ?")
            params.append(query.status.value)
        if query.category_ids:
            conditions.append(f"category_id IN ({','.join('?' * len(query.category_ids))})")
            params.extend(query.category_ids)
        if query.tags:
            conditions.append(
                f"id IN (SELECT offer_id FROM offer_tags WHERE tenant = ? AND tag IN "
                f"({','.join('?' * len(query.tags))}) GROUP BY offer_id HAVING count(*) = ?)"
            )
            params.extend([tenant, *query.tags, len(query.tags)])
        rows = await rows_after(
            self._reader,
            table="offers",
            columns=_OFFER_COLUMNS,
            tenant=tenant,
            conditions=conditions,
            params=params,
            after=after,
            limit=limit,
        )
        return [offer_from_row(*row) for row in rows]

    async def list_categories(
        self, tenant: str, status: CategoryStatus | None, after: PageCursor | None, limit: int
    ) -> list[Category]:
        rows = await self._by_status("categories", _CATEGORY_COLUMNS, tenant, status, after, limit)
        return [category_from_row(*row) for row in rows]

    async def list_sub_categories(
        self, tenant: str, category_id: str, after: PageCursor | None, limit: int
    ) -> list[SubCategory]:
        rows = await rows_after(
            self._reader,
            table="sub_categories",
            columns=_SUB_COLUMNS,
            tenant=tenant,
            conditions=["category_id = ?"] if category_id else [],
            params=[category_id] if category_id else [],
            after=after,
            limit=limit,
        )
        return [sub_category_from_row(*row) for row in rows]

    async def list_policies(
        self, tenant: str, status: PolicyStatus | None, after: PageCursor | None, limit: int
    ) -> list[ContactPolicy]:
        rows = await self._by_status("contact_policies", _POLICY_COLUMNS, tenant, status, after, limit)
        return [policy_from_row(*row) for row in rows]

    async def _by_status(
        self,
        table: str,
        columns: str,
        tenant: str,
        status: CategoryStatus | PolicyStatus | None,
        after: PageCursor | None,
        limit: int,
    ) -> list[tuple[Any, ...]]:
        return await rows_after(
            self._reader,
            table=table,
            columns=columns,
            tenant=tenant,
            conditions=["status = ?"] if status else [],
            params=[status.value] if status else [],
            after=after,
            limit=limit,
        )


def load_tenants(conn: SqlConnection, only: str | None = None) -> dict[str, StoredTenant]:
    """Every tenant's configuration (or only the tenant `only`'s), each kind in (tenant, id) order."""
    tenants: defaultdict[str, StoredTenant] = defaultdict(StoredTenant)
    where, params = ("WHERE tenant = ? ", [only]) if only is not None else ("", [])

    def rows(columns: str, table: str) -> Iterable[Sequence[Any]]:
        return conn.execute(f"SELECT tenant, {columns} FROM {table} {where}ORDER BY tenant, id", params)

    for tenant, *row in rows(_OFFER_COLUMNS, "offers"):
        tenants[tenant].offers.append(offer_from_row(*row))
    for tenant, *row in rows(_CATEGORY_COLUMNS, "categories"):
        tenants[tenant].categories.append(category_from_row(*row))
    for tenant, *row in rows(_SUB_COLUMNS, "sub_categories"):
        tenants[tenant].sub_categories.append(sub_category_from_row(*row))
    for tenant, *row in rows(_POLICY_COLUMNS, "contact_policies"):
        tenants[tenant].policies.append(policy_from_row(*row))
    for tenant, timezone, updated_us in conn.execute(
        f"SELECT tenant, timezone, updated_us FROM tenant_settings {where}", params
    ):
        tenants[tenant].settings = TenantSettings(tenant, timezone, from_epoch_micros(updated_us))
    return dict(tenants)
