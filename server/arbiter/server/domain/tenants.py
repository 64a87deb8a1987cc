"""Tenant settings (today: the time zone) and their rules (domain layer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from .errors import FieldViolation
from .field_masks import UpdateRule
from .timekeeping import load_timezone

DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """One tenant's settings; a tenant nobody configured has the defaults (and no `updated_at`)."""

    tenant: str
    timezone: str = DEFAULT_TIMEZONE
    updated_at: datetime | None = None

    @property
    def zone(self) -> ZoneInfo:
        return load_timezone(self.timezone) or ZoneInfo(DEFAULT_TIMEZONE)


@dataclass(frozen=True, slots=True)
class SettingsPatch:
    """The settings an update names; "" is unset (without a mask) or the default (named by a mask)."""

    tenant_id: str = ""
    timezone: str = ""
    updated_at: datetime | None = None


# Settings are few and each is named on purpose: "*" is not a path here.
SETTINGS_UPDATES = UpdateRule(SettingsPatch, output_only=("tenant_id", "updated_at"), star=False)


def updated_settings(current: TenantSettings, patch: SettingsPatch, paths: list[str]) -> TenantSettings:
    """The settings after an update of `paths`; an empty time zone restores the default."""
    timezone = current.timezone
    if "timezone" in paths:
        timezone = patch.timezone or DEFAULT_TIMEZONE
    return TenantSettings(current.tenant, timezone, current.updated_at)


def settings_violations(settings: TenantSettings) -> list[FieldViolation]:
    if load_timezone(settings.timezone) is None:
        return [FieldViolation("timezone", f"unknown IANA time zone {settings.timezone!r}")]
    return []
