"""Tenant settings' use cases (application layer)."""

from __future__ import annotations

from ..domain.access import Permission, Principal, require
from ..domain.errors import Decoded, raise_if_invalid
from ..domain.tenants import SETTINGS_UPDATES, SettingsPatch, TenantSettings, settings_violations, updated_settings
from .ports import CatalogTx
from .writes import Change, ConfigUseCases


class TenantUseCases(ConfigUseCases):
    """The caller's tenant settings."""

    def get_settings(self, principal: Principal) -> TenantSettings:
        require(principal, Permission.SETTINGS_READ)
        return self._views.current(principal.tenant).settings

    async def update_settings(
        self, principal: Principal, decoded: Decoded[SettingsPatch], mask: list[str] | None
    ) -> TenantSettings:
        """Change the settings the update names; setting the time zone to "" restores UTC."""
        require(principal, Permission.SETTINGS_WRITE)
        tenant = principal.tenant
        paths = SETTINGS_UPDATES.paths(decoded.value, mask)
        current = self._views.current(tenant).settings
        wanted = updated_settings(current, decoded.value, paths)
        raise_if_invalid(decoded.violations, settings_violations(wanted))
        if wanted.timezone == current.timezone and current.updated_at is not None:
            return current

        def work(tx: CatalogTx) -> Change[TenantSettings]:
            settings = TenantSettings(tenant, wanted.timezone, self._clock.now())
            tx.save_settings(settings)
            return Change(settings, lambda records: records.put_settings(settings))

        return await self._writer.write(tenant, work)
