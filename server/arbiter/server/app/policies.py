"""Contact policies' use cases (application layer)."""

from __future__ import annotations

from dataclasses import replace

from ..domain.access import Permission, Principal, require
from ..domain.errors import Decoded, FailedPrecondition, raise_if_invalid
from ..domain.policies import (
    POLICY_PREFIX,
    POLICY_UPDATES,
    ContactPolicy,
    MutualExclusion,
    PolicyScope,
    PolicyStatus,
    validate_policy,
)
from ..domain.resources import Kind, id_required, not_found
from .paging import Page, PageRequest
from .ports import CatalogTx
from .writes import Change, ConfigUseCases, ensure_name_free, fresh_id

# What a scope id names, for the scopes whose id must exist.
_SCOPE_KINDS = {
    PolicyScope.CATEGORY: Kind.CATEGORY,
    PolicyScope.SUB_CATEGORY: Kind.SUB_CATEGORY,
    PolicyScope.OFFER: Kind.OFFER,
}


def _check(tx: CatalogTx, policy: ContactPolicy, decoded: Decoded[ContactPolicy]) -> None:
    """Every violation at once: decoding problems, the policy's own rules, and what its ids name."""
    v = validate_policy(policy)
    kind = _SCOPE_KINDS.get(policy.scope) if policy.scope else None
    if kind is not None and policy.scope_id and not tx.exists(kind, policy.scope_id):
        v.add("scopeId", f"{kind.noun} {policy.scope_id!r} does not exist")
    if isinstance(policy.rule, MutualExclusion):
        for i, offer_id in enumerate(policy.rule.offer_ids):
            if not tx.exists(Kind.OFFER, offer_id):
                v.add(f"mutualExclusion.offerIds[{i}]", f"offer {offer_id!r} does not exist")
    raise_if_invalid(decoded.violations, v.violations)


class PolicyUseCases(ConfigUseCases):
    """Contact policies of the caller's tenant."""

    def get(self, principal: Principal, policy_id: str) -> ContactPolicy:
        require(principal, Permission.CATALOG_READ)
        return self._views.current(principal.tenant).policy(policy_id)

    async def list_policies(
        self, principal: Principal, status: Decoded[PolicyStatus | None], page: PageRequest
    ) -> Page[ContactPolicy]:
        return await self._list_by_status(principal, status, page, "contact_policies", self._store.list_policies)

    async def create(self, principal: Principal, decoded: Decoded[ContactPolicy]) -> ContactPolicy:
        require(principal, Permission.CATALOG_WRITE)
        policy = replace(decoded.value, status=decoded.value.status or PolicyStatus.ACTIVE)

        def work(tx: CatalogTx) -> Change[ContactPolicy]:
            _check(tx, policy, decoded)
            ensure_name_free(tx, Kind.POLICY, policy.name, None)
            now = self._clock.now()
            created = replace(policy, id=fresh_id(tx, Kind.POLICY, POLICY_PREFIX), created_at=now, updated_at=now)
            tx.save_policy(created, new=True)
            return Change(created, lambda records: records.put_policy(created))

        return await self._writer.write(principal.tenant, work)

    async def update(
        self, principal: Principal, decoded: Decoded[ContactPolicy], mask: list[str] | None
    ) -> ContactPolicy:
        """A partial update; archived policies are read-only."""
        require(principal, Permission.CATALOG_WRITE)
        patch = decoded.value
        if not patch.id:
            raise id_required(Kind.POLICY)
        paths = POLICY_UPDATES.paths(patch, mask)
        POLICY_UPDATES.check_required(patch, paths, decoded.violations)

        def work(tx: CatalogTx) -> Change[ContactPolicy]:
            current = tx.policy(patch.id)
            if current is None:
                raise not_found(Kind.POLICY, patch.id)
            if current.status is PolicyStatus.ARCHIVED:
                raise FailedPrecondition(
                    f"contact policy {current.id} is archived and read-only; it can only be deleted",
                    reason="POLICY_ARCHIVED",
                )
            updated = POLICY_UPDATES.apply(current, patch, paths)
            _check(tx, updated, decoded)
            if updated == current:
                return Change(current)
            if updated.name != current.name:
                ensure_name_free(tx, Kind.POLICY, updated.name, current.id)
            updated = replace(updated, updated_at=self._clock.now())
            tx.save_policy(updated, new=False)
            return Change(updated, lambda records: records.put_policy(updated))

        return await self._writer.write(principal.tenant, work)

    async def delete(self, principal: Principal, policy_id: str) -> None:
        require(principal, Permission.CATALOG_WRITE)

        def work(tx: CatalogTx) -> Change[None]:
            if not tx.delete(Kind.POLICY, policy_id):
                raise not_found(Kind.POLICY, policy_id)
            return Change(None, lambda records: records.remove(Kind.POLICY, policy_id))

        await self._writer.write(principal.tenant, work)
