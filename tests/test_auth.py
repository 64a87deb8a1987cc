"""Authentication and roles: every RPC × every kind of credential, key management, and what keys bind to.

The contract: docs/rules.md "Security and limits", and the roles table in the header of
protos/arbiter/v1/api_keys.proto.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from inprocess import InProcessServer
from serverproc import ServerProcess

from arbiter.client import (
    Client,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    UnauthenticatedError,
)
from arbiter.v1 import api_keys_pb2

pytest.register_assert_rewrite("auth_helpers")  # before its import: it is also loaded as a plugin below
from auth_helpers import (  # noqa: E402
    KEY_ID_PATTERN,
    SECRET_PATTERN,
    Keyring,
    Metadata,
    arbiter_methods,
    bearer,
    call,
    cli_create_key,
    client_for,
    forged_secret,
    key_id_of,
    keys_cli,
    method_label,
    mint,
    new_tenant,
    random_secret,
)

pytest_plugins = ["auth_helpers"]

ADMIN, EDITOR, DECIDE = "admin", "editor", "decide"
CATALOG_WRITERS = frozenset({ADMIN, EDITOR})
CATALOG_READERS = frozenset({ADMIN, EDITOR})
OFFER_READERS = frozenset({ADMIN, EDITOR, DECIDE})
DECIDERS = frozenset({ADMIN, DECIDE})
EVERYONE = frozenset({ADMIN, EDITOR, DECIDE})
ADMINS = frozenset({ADMIN})

# The roles per call (protos/arbiter/v1/api_keys.proto), written out per RPC. A new RPC must be added here:
# test_the_roles_table_names_every_rpc fails until it is.
ALLOWED_ROLES: dict[str, frozenset[str]] = {
    # offer/category/sub-category/policy create, update, delete: admin, editor
    "OfferService.CreateOffer": CATALOG_WRITERS,
    "OfferService.UpdateOffer": CATALOG_WRITERS,
    "OfferService.DeleteOffer": CATALOG_WRITERS,
    "CatalogService.CreateCategory": CATALOG_WRITERS,
    "CatalogService.UpdateCategory": CATALOG_WRITERS,
    "CatalogService.DeleteCategory": CATALOG_WRITERS,
    "CatalogService.CreateSubCategory": CATALOG_WRITERS,
    "CatalogService.UpdateSubCategory": CATALOG_WRITERS,
    "CatalogService.DeleteSubCategory": CATALOG_WRITERS,
    "ContactPolicyService.CreateContactPolicy": CATALOG_WRITERS,
    "ContactPolicyService.UpdateContactPolicy": CATALOG_WRITERS,
    "ContactPolicyService.DeleteContactPolicy": CATALOG_WRITERS,
    # the same, get and list: admin, editor; decide: offers only
    "OfferService.GetOffer": OFFER_READERS,
    "OfferService.ListOffers": OFFER_READERS,
    "CatalogService.GetCategory": CATALOG_READERS,
    "CatalogService.ListCategories": CATALOG_READERS,
    "CatalogService.GetSubCategory": CATALOG_READERS,
    "CatalogService.ListSubCategories": CATALOG_READERS,
    "ContactPolicyService.GetContactPolicy": CATALOG_READERS,
    "ContactPolicyService.ListContactPolicies": CATALOG_READERS,
    # Decide, RecordOutcome(s): admin, decide
    "DecisionService.Decide": DECIDERS,
    "DecisionService.RecordOutcome": DECIDERS,
    "DecisionService.RecordOutcomes": DECIDERS,
    "DecisionService.BatchDecide": DECIDERS,
    "DecisionService.StreamDecide": DECIDERS,
    # GetOfferStats: everyone
    "DecisionService.GetOfferStats": EVERYONE,
    # GetDecision, WhyNot (the decision log): everyone, like GetOfferStats
    "DecisionService.GetDecision": EVERYONE,
    "DecisionService.WhyNot": EVERYONE,
    # GetTenantSettings: admin, editor
    "TenantService.GetTenantSettings": frozenset({ADMIN, EDITOR}),
    # UpdateTenantSettings, API keys: admin
    "TenantService.UpdateTenantSettings": ADMINS,
    "ApiKeyService.CreateApiKey": ADMINS,
    "ApiKeyService.GetApiKey": ADMINS,
    "ApiKeyService.ListApiKeys": ADMINS,
    "ApiKeyService.RevokeApiKey": ADMINS,
}

METHODS = arbiter_methods()
SERVICES = sorted({m.containing_service.full_name for m in METHODS})

# Credentials that must not authenticate, and the reason the server must give.
REFUSED: dict[str, str] = {
    "no-key": "KEY_MISSING",
    "malformed": "KEY_MALFORMED",
    "unknown": "KEY_UNKNOWN",
    "forged": "KEY_UNKNOWN",
    "revoked": "KEY_REVOKED",
    "expired": "KEY_EXPIRED",
}
ROLES = (ADMIN, EDITOR, DECIDE)
# Answers that show an allowed call got past authentication and was actually served.
NOT_PAST_AUTH = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.INTERNAL,
}


def _metadata(credential: str, keys: Keyring) -> tuple[Metadata, str]:
    """The metadata a credential sends, and the secret it carries (to check it is never echoed)."""
    if credential == "no-key":
        return (), ""
    if credential == "malformed":  # a valid key, but not as "Bearer <key>"
        return (("authorization", keys.admin),), keys.admin
    secret = {
        "unknown": random_secret(),
        "forged": forged_secret(keys.admin),
        "revoked": keys.revoked,
        "expired": keys.expired,
    }.get(credential) or keys.of_role(credential)
    return bearer(secret), secret


# --------------------------------------------------------------------------
# The matrix: every RPC × every credential
# --------------------------------------------------------------------------


def test_the_methods_come_from_every_arbiter_service() -> None:
    expected = [
        "ApiKeyService",
        "CatalogService",
        "ContactPolicyService",
        "DecisionService",
        "OfferService",
        "TenantService",
    ]
    assert [name.removeprefix("arbiter.v1.") for name in SERVICES] == expected
    assert len(METHODS) >= 30


def test_the_roles_table_names_every_rpc() -> None:
    assert sorted(ALLOWED_ROLES) == sorted(method_label(m) for m in METHODS)


@pytest.mark.parametrize("credential", [*REFUSED, *ROLES])
@pytest.mark.parametrize("method", METHODS, ids=method_label)
def test_every_rpc_checks_the_key_and_the_role(
    auth_channel: grpc.Channel, keyring: Keyring, method: MethodDescriptor, credential: str
) -> None:
    metadata, secret = _metadata(credential, keyring)

    answer = call(auth_channel, method, metadata)

    if credential in REFUSED:
        assert (answer.code, answer.reason) == (grpc.StatusCode.UNAUTHENTICATED, REFUSED[credential]), answer
        assert not secret or secret not in answer.message
    elif credential in ALLOWED_ROLES[method_label(method)]:
        assert answer.code not in NOT_PAST_AUTH, answer
    else:
        assert answer.code == grpc.StatusCode.PERMISSION_DENIED, answer


@pytest.mark.parametrize("credential", list(REFUSED))
def test_x_tenant_id_never_stands_in_for_a_refused_key(
    auth_channel: grpc.Channel, keyring: Keyring, credential: str
) -> None:
    (method,) = [m for m in METHODS if method_label(m) == "TenantService.GetTenantSettings"]
    metadata, _ = _metadata(credential, keyring)
    answer = call(auth_channel, method, (*metadata, ("x-tenant-id", keyring.tenant)))
    assert (answer.code, answer.reason) == (grpc.StatusCode.UNAUTHENTICATED, REFUSED[credential]), answer


@pytest.mark.parametrize("kind", ["revoked", "expired"])
def test_a_wrong_secret_for_a_dead_key_says_nothing_about_that_key(
    auth_channel: grpc.Channel, keyring: Keyring, kind: str
) -> None:
    """Without the secret, a caller learns only "unknown", not that the key it names is revoked or expired."""
    (method,) = [m for m in METHODS if method_label(m) == "OfferService.ListOffers"]
    answer = call(auth_channel, method, bearer(forged_secret(keyring.of_role(kind))))
    assert (answer.code, answer.reason) == (grpc.StatusCode.UNAUTHENTICATED, "KEY_UNKNOWN"), answer


@pytest.mark.parametrize(
    "value",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer: {secret}", "Bearer {secret} extra", "Token {secret}"],
)
def test_an_authorization_not_of_the_form_bearer_key_is_malformed(
    auth_channel: grpc.Channel, keyring: Keyring, value: str
) -> None:
    (method,) = [m for m in METHODS if method_label(m) == "OfferService.ListOffers"]
    answer = call(auth_channel, method, (("authorization", value.format(secret=keyring.admin)),))
    assert (answer.code, answer.reason) == (grpc.StatusCode.UNAUTHENTICATED, "KEY_MALFORMED"), answer


@pytest.mark.parametrize("secret", ["not-an-arbiter-key", "arb_", "arb_0123456789abcdef_short"])
def test_a_bearer_that_is_no_issued_key_is_refused(auth_server: ServerProcess, secret: str) -> None:
    with client_for(auth_server, secret) as client, pytest.raises(UnauthenticatedError) as info:
        client.list_offers()
    assert info.value.reason in {"KEY_UNKNOWN", "KEY_MALFORMED"}


# --------------------------------------------------------------------------
# Open to all: health and reflection
# --------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", [(), bearer("junk")], ids=["no-key", "bad-key"])
def test_health_needs_no_key(auth_channel: grpc.Channel, metadata: Metadata) -> None:
    stub = health_pb2_grpc.HealthStub(auth_channel)
    for service in ("", *SERVICES):
        request = health_pb2.HealthCheckRequest(service=service)
        assert stub.Check(request, metadata=metadata, timeout=5).status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_needs_no_key(auth_channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(auth_channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="arbiter.v1.ApiKeyService"),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=5))

    names = {s.name for s in listed.list_services_response.service}
    assert set(SERVICES) <= names
    assert "grpc.health.v1.Health" in names
    assert described.file_descriptor_response.file_descriptor_proto  # not an error_response
    assert not described.HasField("error_response")


# --------------------------------------------------------------------------
# The key's tenant is the call's tenant
# --------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["claimed-tenant", "NOT A TENANT!"])
def test_x_tenant_id_is_ignored_when_a_key_is_present(
    auth_server: ServerProcess, keyring: Keyring, other_admin: str, header: str
) -> None:
    with client_for(auth_server, other_admin) as other:
        other_tenant = other.get_tenant_settings().tenant_id
    for named in (header, other_tenant):
        with (
            client_for(auth_server, keyring.admin, tenant=named) as spoofing,
            client_for(auth_server, keyring.admin) as plain,
            client_for(auth_server, other_admin) as victim,
        ):
            assert spoofing.get_tenant_settings().tenant_id == keyring.tenant
            offer = spoofing.create_offer({"name": f"spoofed {named} {random_secret()[-8:]}"})
            assert plain.get_offer(offer.id).name == offer.name  # it landed in the key's tenant
            with pytest.raises(NotFoundError) as missing:
                victim.get_offer(offer.id)
            assert missing.value.reason == "OFFER_NOT_FOUND"
            assert offer.id not in {o.id for o in victim.iter_offers()}


# --------------------------------------------------------------------------
# ApiKeyService: create, shown once, revoke, tenants
# --------------------------------------------------------------------------


def test_create_api_key_shows_a_working_secret_once(auth_server: ServerProcess, keyring: Keyring) -> None:
    expires_at = datetime.now(UTC) + timedelta(days=30)
    with client_for(auth_server, keyring.admin) as admin:
        created = admin.create_api_key("editor", name="ci pipeline", expires_at=expires_at)
        key, secret = created.api_key, created.secret

        assert SECRET_PATTERN.fullmatch(secret), secret
        assert secret.startswith("arb_")
        assert KEY_ID_PATTERN.fullmatch(key.id), key.id
        assert key_id_of(secret) == key.id
        assert (key.name, key.role) == ("ci pipeline", api_keys_pb2.ROLE_EDITOR)
        assert key.expires_at.ToDatetime(tzinfo=UTC) == expires_at
        assert key.HasField("created_at") and not key.HasField("revoked_at")

        # Shown once: no later answer carries it, nor its random part.
        fetched = admin.get_api_key(key.id)
        assert fetched == key
        listed = [k for k in _all_keys(admin) if k.id == key.id]
        assert listed == [key]
        metadata = bearer(keyring.admin)
        raw_answers = [
            admin.keys.GetApiKey(api_keys_pb2.GetApiKeyRequest(id=key.id), metadata=metadata, timeout=5),
            admin.keys.ListApiKeys(api_keys_pb2.ListApiKeysRequest(page_size=1000), metadata=metadata, timeout=5),
        ]
        for raw in (answer.SerializeToString() for answer in raw_answers):
            assert key.id.encode() in raw
            assert secret.encode() not in raw
            assert secret[-43:].encode() not in raw

    # It works, with its role.
    with client_for(auth_server, secret) as editor:
        assert editor.get_tenant_settings().tenant_id == keyring.tenant
        editor.create_category({"name": f"made by editor {key.id}"})
        with pytest.raises(PermissionDeniedError):
            editor.decide("cust-1")
        with pytest.raises(PermissionDeniedError):
            editor.list_api_keys()


def _all_keys(admin: Client) -> list[api_keys_pb2.ApiKey]:
    keys: list[api_keys_pb2.ApiKey] = []
    token = ""
    while True:
        page = admin.list_api_keys(page_size=1000, page_token=token)
        keys.extend(page.api_keys)
        token = page.next_page_token
        if not token:
            return keys


@pytest.mark.parametrize(
    ("role", "name", "expires_in", "field"),
    [
        ("ROLE_UNSPECIFIED", "", None, "role"),
        ("decide", "", timedelta(seconds=-1), "expiresAt"),
        ("decide", "n" * 256, None, "name"),
    ],
    ids=["no-role", "expiry-in-the-past", "name-too-long"],
)
def test_create_api_key_rejects_a_bad_key(
    auth_server: ServerProcess, keyring: Keyring, role: str, name: str, expires_in: timedelta | None, field: str
) -> None:
    with client_for(auth_server, keyring.admin) as admin:
        before = len(_all_keys(admin))
        expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
        with pytest.raises(InvalidArgumentError) as info:
            admin.create_api_key(role, name=name, expires_at=expires_at)
        assert info.value.fields == [field]
        assert len(_all_keys(admin)) == before


def test_a_key_works_until_the_instant_it_expires(tmp_path: Path) -> None:
    # The server's clock is set, not waited for: the key is refused from its expiresAt on.
    db = tmp_path / "arbiter.db"
    with InProcessServer(db, start=datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) as server:
        admin_secret = cli_create_key(db, new_tenant("expiry"), "admin", name="bootstrap")
        expires_at = server.clock.now() + timedelta(hours=1)
        with Client(server.target, api_key=admin_secret) as admin:
            secret = mint(admin, "decide", name="expiring", expires_at=expires_at)
        with Client(server.target, api_key=secret) as client:
            client.list_offers()
            server.clock.set(expires_at - timedelta(microseconds=1))
            client.list_offers()  # still valid, a microsecond before
            server.clock.set(expires_at)
            with pytest.raises(UnauthenticatedError) as info:
                client.list_offers()
    assert info.value.reason == "KEY_EXPIRED"


def test_revoking_through_the_api_takes_effect_on_the_next_call(auth_server: ServerProcess, keyring: Keyring) -> None:
    with client_for(auth_server, keyring.admin) as admin:
        secret = mint(admin, "decide", name="doomed")
        key_id = key_id_of(secret)
        with client_for(auth_server, secret) as doomed:
            doomed.list_offers()

            revoked = admin.revoke_api_key(key_id)

            with pytest.raises(UnauthenticatedError) as info:
                doomed.list_offers()
            assert info.value.reason == "KEY_REVOKED"
        assert revoked.HasField("revoked_at")
        assert admin.get_api_key(key_id).revoked_at == revoked.revoked_at
        assert [k.revoked_at for k in _all_keys(admin) if k.id == key_id] == [revoked.revoked_at]
        # Revoking again changes nothing.
        assert admin.revoke_api_key(key_id) == revoked


def test_revoking_with_the_cli_takes_effect_on_the_next_call(auth_server: ServerProcess, keyring: Keyring) -> None:
    with client_for(auth_server, keyring.admin) as admin:
        secret = mint(admin, "editor", name="revoked by the cli")
    with client_for(auth_server, secret) as doomed:
        doomed.get_tenant_settings()

        result = keys_cli(auth_server.db, "revoke", key_id_of(secret))
        assert result.returncode == 0, result.stderr

        with pytest.raises(UnauthenticatedError) as info:
            doomed.get_tenant_settings()
    assert info.value.reason == "KEY_REVOKED"


def test_a_revoked_admin_cannot_undo_it(auth_server: ServerProcess, keyring: Keyring) -> None:
    with client_for(auth_server, keyring.admin) as admin:
        secret = mint(admin, "admin", name="admin to revoke")
    with client_for(auth_server, secret) as doomed:
        doomed.revoke_api_key(key_id_of(secret))  # an admin may revoke its own key …
        with pytest.raises(UnauthenticatedError):
            doomed.create_api_key("admin")  # … and is then out
        with pytest.raises(UnauthenticatedError):
            doomed.get_api_key(key_id_of(secret))


def test_keys_of_one_tenant_are_invisible_to_another(
    auth_server: ServerProcess, keyring: Keyring, other_admin: str
) -> None:
    with client_for(auth_server, keyring.admin) as mine, client_for(auth_server, other_admin) as theirs:
        their_key = mint(theirs, "decide", name="theirs")
        my_key = mint(mine, "decide", name="mine")
        for client, foreign in ((mine, their_key), (theirs, my_key)):
            foreign_id = key_id_of(foreign)
            with pytest.raises(NotFoundError) as missing:
                client.get_api_key(foreign_id)
            assert missing.value.reason == "KEY_NOT_FOUND"
            with pytest.raises(NotFoundError) as missing:
                client.revoke_api_key(foreign_id)
            assert missing.value.reason == "KEY_NOT_FOUND"
            assert foreign_id not in {k.id for k in _all_keys(client)}
            assert key_id_of(other_admin if client is mine else keyring.admin) not in {k.id for k in _all_keys(client)}
        # Neither revoke attempt touched the keys.
        for secret in (their_key, my_key):
            with client_for(auth_server, secret) as client:
                client.list_offers()
        assert not theirs.get_api_key(key_id_of(their_key)).HasField("revoked_at")
        assert not mine.get_api_key(key_id_of(my_key)).HasField("revoked_at")


def test_a_key_minted_by_an_admin_belongs_to_the_admins_tenant(
    auth_server: ServerProcess, keyring: Keyring, other_admin: str
) -> None:
    with client_for(auth_server, other_admin, tenant=keyring.tenant) as theirs:
        secret = mint(theirs, "admin", name="x-tenant-id is no way in")
        their_tenant = theirs.get_tenant_settings().tenant_id
    with client_for(auth_server, secret) as minted:
        assert minted.get_tenant_settings().tenant_id == their_tenant != keyring.tenant
