"""Tenant settings (today: the time zone), persisted and cached (storage layer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlite_utils import Database

from ..domain.errors import InvalidArgument
from ..domain.timekeeping import from_epoch_micros, load_timezone, to_epoch_micros
from .writer import Writer

DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True, slots=True)
class TenantSettings:
    tenant: str
    timezone: str = DEFAULT_TIMEZONE
    updated_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return load_timezone(self.timezone) or ZoneInfo(DEFAULT_TIMEZONE)


class TenantSettingsRepository:
    """Every tenant's settings; tenants without a row have the defaults."""

    def __init__(self, writer: Writer, clock: Callable[[], datetime]) -> None:
        self._writer = writer
        self._clock = clock
        self._settings: dict[str, TenantSettings] = {}
        self.listeners: list[Callable[[str], None]] = []

    def get(self, tenant: str) -> TenantSettings:
        return self._settings.get(tenant) or TenantSettings(tenant)

    def zone(self, tenant: str) -> ZoneInfo:
        return self.get(tenant).zone

    async def update(self, tenant: str, timezone: str | None) -> TenantSettings:
        """Change the given settings (None leaves one as it is; "" restores the default)."""
        current = self.get(tenant)
        new_zone = current.timezone if timezone is None else (timezone or DEFAULT_TIMEZONE)
        if load_timezone(new_zone) is None:
            raise InvalidArgument.single("timezone", f"unknown IANA time zone {new_zone!r}")
        if new_zone == current.timezone and current.updated_at is not None:
            return current

        def work(db: Database) -> TenantSettings:
            now = self._clock()
            db.execute(
                "INSERT INTO tenant_settings (tenant, timezone, updated_us) VALUES (?, ?, ?) "
                "ON CONFLICT (tenant) DO UPDATE SET timezone = excluded.timezone, updated_us = excluded.updated_us",
                [tenant, new_zone, to_epoch_micros(now)],
            )
            return TenantSettings(tenant, new_zone, now)

        def apply(settings: TenantSettings) -> None:
            self._settings[tenant] = settings
            for listener in self.listeners:
                listener(tenant)

        return await self._writer.run(work, apply)

    def load(self, conn: sqlite3.Connection) -> None:
        for tenant, timezone, updated_us in conn.execute("SELECT tenant, timezone, updated_us FROM tenant_settings"):
            self._settings[tenant] = TenantSettings(tenant, timezone, from_epoch_micros(updated_us))
