"""Contact policies: persistence and the in-memory copy the snapshot compiles (storage layer)."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlite_utils import Database

from ..domain.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ViolationCollector,
    merge_violations,
)
from ..domain.field_masks import mask_paths
from ..domain.ids import new_id
from ..domain.policies import POLICY_PREFIX, ContactPolicy, MutualExclusion, PolicyScope, PolicyStatus, validate_policy
from ..domain.timekeeping import to_epoch_micros
from .paging import list_page
from .policy_codec import policy_from_row, policy_to_json
from .reader import Reader
from .rows import name_owner, row_exists
from .writer import Writer

POLICY_PATHS = ("name", "description", "status", "priority", "scope", "scope_id", "bypassable", "rule")
_COLUMNS = "id, created_us, updated_us, body"
_SCOPE_TABLES = {
    PolicyScope.CATEGORY: ("categories", "category"),
    PolicyScope.SUB_CATEGORY: ("sub_categories", "sub-category"),
    PolicyScope.OFFER: ("offers", "offer"),
}


@dataclass(slots=True)
class TenantPolicies:
    by_id: dict[str, ContactPolicy] = field(default_factory=dict)
    version: int = 0


def _not_found(policy_id: str) -> NotFound:
    return NotFound(f"contact policy {policy_id!r} not found", reason="POLICY_NOT_FOUND", metadata={"id": policy_id})


class PolicyRepository:
    """Every tenant's contact policies: SQLite is the record, TenantPolicies the fast copy."""

    def __init__(self, writer: Writer, reader: Reader, clock: Callable[[], datetime]) -> None:
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._tenants: defaultdict[str, TenantPolicies] = defaultdict(TenantPolicies)

    def tenant(self, tenant: str) -> TenantPolicies:
        return self._tenants[tenant]

    def get(self, tenant: str, policy_id: str) -> ContactPolicy:
        policy = self.tenant(tenant).by_id.get(policy_id)
        if policy is None:
            raise _not_found(policy_id)
        return policy

    async def list_page(
        self, tenant: str, status: PolicyStatus | None, requested_page_size: int, page_token: str
    ) -> tuple[list[ContactPolicy], str]:
        rows, token = await list_page(
            self._reader,
            table="contact_policies",
            columns=_COLUMNS,
            tenant=tenant,
            conditions=["status = ?"] if status else [],
            params=[status.value] if status else [],
            requested_page_size=requested_page_size,
            page_token=page_token,
            filters=[status.value if status else None],
        )
        return [policy_from_row(*row) for row in rows], token

    async def create(self, tenant: str, draft: ContactPolicy, decode: ViolationCollector) -> ContactPolicy:
        policy = replace(draft, status=draft.status or PolicyStatus.ACTIVE)

        def work(db: Database) -> ContactPolicy:
            _check(db, tenant, policy, decode)
            _check_name_free(db, tenant, policy.name, None)
            policy_id = new_id(POLICY_PREFIX)
            now = self._clock()
            created = replace(policy, id=policy_id, created_at=now, updated_at=now)
            _write(db, tenant, created, insert=True)
            return created

        return await self._writer.run(work, lambda p: self._put(tenant, p))

    async def update(
        self, tenant: str, patch: ContactPolicy, mask: list[str] | None, decode: ViolationCollector
    ) -> ContactPolicy:
        if not patch.id:
            raise InvalidArgument.single("id", "is required: it names the policy to update")
        paths = _paths(patch, mask)
        if "status" in paths and patch.status is None:
            raise InvalidArgument.single("status", "must be set when the update mask names it")

        def work(db: Database) -> ContactPolicy:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM contact_policies WHERE tenant = ? AND id = ?", [tenant, patch.id]
            ).fetchone()
            if row is None:
                raise _not_found(patch.id)
            current = policy_from_row(*row)
            if current.status is PolicyStatus.ARCHIVED:
                raise FailedPrecondition(
                    f"contact policy {current.id} is archived and read-only; it can only be deleted",
                    reason="POLICY_ARCHIVED",
                )
            updated = replace(current, **{p: getattr(patch, p) for p in paths})
            _check(db, tenant, updated, decode)
            if updated == current:
                return current
            if updated.name != current.name:
                _check_name_free(db, tenant, updated.name, current.id)
            updated = replace(updated, updated_at=self._clock())
            _write(db, tenant, updated, insert=False)
            return updated

        return await self._writer.run(work, lambda p: self._put(tenant, p))

    async def delete(self, tenant: str, policy_id: str) -> None:
        def work(db: Database) -> str:
            cursor = db.execute("DELETE FROM contact_policies WHERE tenant = ? AND id = ?", [tenant, policy_id])
            if cursor.rowcount == 0:
                raise _not_found(policy_id)
            return policy_id

        def apply(deleted: str) -> None:
            policies = self.tenant(tenant)
            policies.by_id.pop(deleted, None)
            policies.version += 1

        await self._writer.run(work, apply)

    def _put(self, tenant: str, policy: ContactPolicy) -> None:
        policies = self.tenant(tenant)
        policies.by_id[policy.id] = policy
        policies.version += 1

    def load(self, conn: sqlite3.Connection) -> None:
        """Fill the in-memory copy from the database (start-up)."""
        for tenant, *row in conn.execute(f"SELECT tenant, {_COLUMNS} FROM contact_policies"):
            self._put(tenant, policy_from_row(*row))


def _paths(patch: ContactPolicy, mask: list[str] | None) -> list[str]:
    if not mask:
        present = {
            "name": patch.name,
            "description": patch.description,
            "status": patch.status,
            "priority": patch.priority or None,
            "scope": patch.scope,
            "scope_id": patch.scope_id,
            "bypassable": patch.bypassable,
            "rule": patch.rule,
        }
        return [path for path, value in present.items() if value not in (None, "")]
    return mask_paths(mask, POLICY_PATHS)


def _check(db: Database, tenant: str, policy: ContactPolicy, decode: ViolationCollector) -> None:
    """Every violation at once: decoding problems, the policy's own rules, and what its ids name."""
    v = validate_policy(policy)
    v.violations[:] = merge_violations(decode.violations, v.violations)
    table = _SCOPE_TABLES.get(policy.scope) if policy.scope else None
    if table is not None and policy.scope_id and not row_exists(db, table[0], tenant, policy.scope_id):
        v.add("scopeId", f"{table[1]} {policy.scope_id!r} does not exist")
    if isinstance(policy.rule, MutualExclusion):
        for i, offer_id in enumerate(policy.rule.offer_ids):
            if not row_exists(db, "offers", tenant, offer_id):
                v.add(f"mutualExclusion.offerIds[{i}]", f"offer {offer_id!r} does not exist")
    v.raise_if_any()


def _check_name_free(db: Database, tenant: str, name: str, own_id: str | None) -> None:
    owner = name_owner(db, "contact_policies", tenant, name)
    if owner is not None and owner != own_id:
        raise AlreadyExists(
            f"a contact policy named {name!r} already exists ({owner})",
            reason="POLICY_NAME_TAKEN",
            metadata={"name": name, "id": owner},
        )


def _write(db: Database, tenant: str, policy: ContactPolicy, *, insert: bool) -> None:
    assert policy.created_at is not None and policy.updated_at is not None and policy.status is not None
    values = [
        policy.name,
        policy.status.value,
        to_epoch_micros(policy.created_at),
        to_epoch_micros(policy.updated_at),
        policy_to_json(policy),
        tenant,
        policy.id,
    ]
    if insert:
        db.execute(
            "INSERT INTO contact_policies (name, status, created_us, updated_us, body, tenant, id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            values,
        )
    else:
        db.execute(
            "UPDATE contact_policies SET name = ?, status = ?, created_us = ?, updated_us = ?, body = ? "
            "WHERE tenant = ? AND id = ?",
            values,
        )
