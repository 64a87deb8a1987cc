"""TenantService end to end: defaults, time zone changes, validation of zones and update masks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf import field_mask_pb2
from serverproc import ServerProcess

from arbiter.client import Client, InvalidArgumentError, error_from_rpc
from arbiter.v1 import tenants_pb2


def _update(
    client: Client, tenant: str, settings: tenants_pb2.TenantSettings, paths: Sequence[str] | None
) -> tenants_pb2.TenantSettings:
    """UpdateTenantSettings with any settings and mask (the client's helper always sends ["timezone"])."""
    request = tenants_pb2.UpdateTenantSettingsRequest(settings=settings)
    if paths is not None:
        request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=list(paths)))
    try:
        response = client.tenants.UpdateTenantSettings(request, timeout=5, metadata=(("x-tenant-id", tenant),))
    except grpc.RpcError as exc:
        raise error_from_rpc(exc) from exc
    return response.settings


def test_a_new_tenant_has_the_defaults(client: Client, tenant: str) -> None:
    settings = client.get_tenant_settings()

    assert settings.tenant_id == tenant
    assert settings.timezone == "UTC"
    assert not settings.HasField("updated_at")


def test_the_timezone_changes_and_changes_back(client: Client, tenant: str) -> None:
    before = datetime.now(UTC)

    paris = client.update_tenant_settings(timezone="Europe/Paris")

    assert (paris.tenant_id, paris.timezone) == (tenant, "Europe/Paris")
    changed = paris.updated_at.ToDatetime(tzinfo=UTC)
    assert before - timedelta(seconds=2) <= changed <= datetime.now(UTC) + timedelta(seconds=2)
    assert client.get_tenant_settings() == paris

    utc = client.update_tenant_settings(timezone="UTC")
    assert utc.timezone == "UTC" and client.get_tenant_settings() == utc
    assert utc.updated_at.ToDatetime(tzinfo=UTC) >= changed

    client.update_tenant_settings(timezone="Asia/Kolkata")
    default = client.update_tenant_settings(timezone="")  # a named field left empty returns to its default
    assert default.timezone == "UTC" and client.get_tenant_settings().timezone == "UTC"


def test_settings_are_per_tenant(server: ServerProcess, client: Client) -> None:
    client.update_tenant_settings(timezone="Australia/Sydney")

    with Client(server.target, tenant="t-" + uuid.uuid4().hex[:16]) as other:
        assert other.get_tenant_settings().timezone == "UTC"
        other.update_tenant_settings(timezone="America/Chicago")

    assert client.get_tenant_settings().timezone == "Australia/Sydney"


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "Europe/Pariss", " Europe/Paris", "Europe/Paris ", "../../etc/passwd", "+02:00", "x" * 200]
)
def test_an_unknown_zone_is_invalid_and_changes_nothing(client: Client, zone: str) -> None:
    kept = client.update_tenant_settings(timezone="Europe/Paris")

    with pytest.raises(InvalidArgumentError) as info:
        client.update_tenant_settings(timezone=zone)

    assert info.value.fields == ["timezone"]
    assert client.get_tenant_settings() == kept


@pytest.mark.parametrize(
    "paths",
    [
        ["tenant_id"],
        ["tenantId"],
        ["updated_at"],
        ["updatedAt"],
        ["bogus"],
        ["timezone.name"],
        ["timezone", "bogus"],
        ["updated_at", "timezone"],
        ["*"],
    ],
)
def test_unknown_or_output_only_mask_paths_are_invalid(client: Client, tenant: str, paths: list[str]) -> None:
    before = client.get_tenant_settings()

    with pytest.raises(InvalidArgumentError) as info:
        _update(client, tenant, tenants_pb2.TenantSettings(timezone="Europe/Paris", tenant_id="x"), paths)

    assert info.value.fields == ["updateMask"]
    assert client.get_tenant_settings() == before


def test_without_a_mask_what_is_set_changes(client: Client, tenant: str) -> None:
    changed = _update(client, tenant, tenants_pb2.TenantSettings(timezone="Asia/Tokyo", tenant_id="not-me"), None)
    assert (changed.tenant_id, changed.timezone) == (tenant, "Asia/Tokyo")  # output-only tenant_id is ignored

    unchanged = _update(client, tenant, tenants_pb2.TenantSettings(), None)
    assert unchanged.timezone == "Asia/Tokyo"

    reset = _update(client, tenant, tenants_pb2.TenantSettings(), ["timezone"])
    assert reset.timezone == "UTC"
    assert client.get_tenant_settings().timezone == "UTC"
