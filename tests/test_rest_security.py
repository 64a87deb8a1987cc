"""REST API security, end to end: keys, roles, tenancy, the loopback rule, TLS and rate limits over HTTP.

The contract: the roles table in protos/arbiter/v1/api_keys.proto and docs/rules.md "Security and limits"
and "REST API and Studio". Every matrix below enumerates the REST route table
(arbiter.server.transport.http.routes.ROUTES), so a new route is covered without editing this file, and
fails loudly here when the test does not know how to build a valid request for it.

All servers are real subprocesses WITH authentication. Each test makes its own tenants (uuid-based) and
bootstraps their admin keys with the keys CLI run in this process (`keys_main`, the code behind
`arbiter keys create`; no Python start-up per test); other keys are minted through the REST API itself.
HTTP goes through the standard library only, with a timeout on every call.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import ssl
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import backends
import grpc
import pytest
from serverproc import ServerProcess

from arbiter.server.keys_cli import keys_main
from arbiter.server.transport.http.routes import ROUTES, Route

pytest.register_assert_rewrite("auth_helpers")  # before its import, as the other security modules do
from auth_helpers import (  # noqa: E402
    SECRET_PATTERN,
    arbiter_methods,
    bearer,
    call,
    expired_key,
    key_id_of,
    method_label,
    new_tenant,
    random_secret,
)
from test_tls import issue, make_ca  # noqa: E402

TIMEOUT = 10.0  # seconds, for every HTTP call
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"

# --------------------------------------------------------------------------
# The roles per call, one row per line of the roles table in api_keys.proto
# --------------------------------------------------------------------------

ADMIN, EDITOR, DECIDE = "admin", "editor", "decide"
ROLES = (ADMIN, EDITOR, DECIDE)
CATALOG = ("Offer", "Category", "SubCategory", "ContactPolicy")  # "offer/category/sub-category/policy"

SPEC_ROLES: tuple[tuple[frozenset[str], frozenset[str]], ...] = (
    # offer/category/sub-category/policy create, update, delete: admin, editor
    (
        frozenset(f"{verb}{kind}" for verb in ("Create", "Update", "Delete") for kind in CATALOG),
        frozenset({ADMIN, EDITOR}),
    ),
    # offer/category/sub-category/policy get and list: admin, editor; decide: offers only
    (frozenset({"GetOffer", "ListOffers"}), frozenset(ROLES)),
    (
        frozenset(
            {
                "GetCategory",
                "ListCategories",
                "GetSubCategory",
                "ListSubCategories",
                "GetContactPolicy",
                "ListContactPolicies",
            }
        ),
        frozenset({ADMIN, EDITOR}),
    ),
    # Decide, RecordOutcome(s): admin, decide
    (
        frozenset({"Decide", "BatchDecide", "StreamDecide", "RecordOutcome", "RecordOutcomes"}),
        frozenset({ADMIN, DECIDE}),
    ),
    # GetOfferStats: everyone
    (frozenset({"GetOfferStats"}), frozenset(ROLES)),
    # GetDecision, WhyNot (the decision log): everyone, like GetOfferStats
    (frozenset({"GetDecision", "WhyNot"}), frozenset(ROLES)),
    # GetTenantSettings: admin, editor
    (frozenset({"GetTenantSettings"}), frozenset({ADMIN, EDITOR})),
    # UpdateTenantSettings, API keys: admin
    (
        frozenset({"UpdateTenantSettings", "CreateApiKey", "GetApiKey", "ListApiKeys", "RevokeApiKey"}),
        frozenset({ADMIN}),
    ),
)
ALLOWED: dict[str, frozenset[str]] = {rpc: roles for rpcs, roles in SPEC_ROLES for rpc in rpcs}

# Credentials that must not authenticate, and the reason the server must give.
REFUSED: dict[str, str] = {
    "no-key": "KEY_MISSING",
    "malformed": "KEY_MALFORMED",
    "unknown": "KEY_UNKNOWN",
    "revoked": "KEY_REVOKED",
    "expired": "KEY_EXPIRED",
}


def route_id(route: Route) -> str:
    """How messages name a route: "PUT /api/v1/actions/{id} (UpdateOffer)"."""
    return f"{route.method} {route.path} ({route.rpc})"


def operation_id(route: Route) -> str:
    """How test ids name a route: its OpenAPI operationId ("replaceOffer")."""
    return route.name


ITEM_ROUTES = [r for r in ROUTES if "{id}" in r.path]
LIST_ROUTES = [r for r in ROUTES if r.listed]
BODY_ROUTES = [r for r in ROUTES if r.body is not None]
GET_PATHS = frozenset(r.path for r in ROUTES if r.method == "GET")
FORBIDDEN = [(r, role) for r in ROUTES for role in ROLES if role not in ALLOWED.get(r.rpc, ROLES)]
PATH_PARAM = re.compile(r"\{(\w+)\}")
# The collection a path parameter follows names the kind of resource it is.
KINDS = {
    "actions": "offer",
    "categories": "category",
    "sub-categories": "sub_category",
    "contact-policies": "contact_policy",
    "api-keys": "api_key",
    "decisions": "decision",
    "customers": "customer",
    "why-not": "offer",
}


def success_status(route: Route) -> int:
    """What the route answers when the call is served: 204 when it has no body, else its own status."""
    return 204 if route.response is None else route.status


# --------------------------------------------------------------------------
# HTTP with the standard library
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers (lower-case names), the parsed JSON body (None when empty)."""

    request: str
    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes

    def __repr__(self) -> str:
        return f"<{self.request} -> {self.status} {self.raw[:600]!r}>"

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and isinstance(self.body.get("error"), dict), self
        error: dict[str, Any] = self.body["error"]
        return error

    @property
    def reason(self) -> str:
        return next((str(d.get("reason")) for d in self.error["details"] if d.get("@type") == ERROR_INFO), "")


def send(
    base_url: str,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    context: ssl.SSLContext | None = None,
) -> Reply:
    """One request (`body` sent as JSON) on a fresh connection; raises if no HTTP answer comes back."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    sent = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        answer_headers = {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()
    parsed = json.loads(raw) if raw and "json" in answer_headers.get("content-type", "") else None
    return Reply(f"{method} {path}", response.status, answer_headers, parsed, raw)


def assert_error(reply: Reply, status: int, code: str, reason: str | None = None) -> None:
    """An AIP-193 error answer: {"error": {"code", "status", "message", "details": [ErrorInfo …]}}."""
    assert reply.status == status, reply
    assert reply.headers.get("content-type", "").startswith("application/json"), reply
    error = reply.error
    assert (error["code"], error["status"]) == (status, code), reply
    assert isinstance(error["message"], str) and error["message"], reply
    infos = [d for d in error["details"] if d.get("@type") == ERROR_INFO]
    assert infos and infos[0]["domain"] == "arbiter", reply
    if reason is not None:
        assert reply.reason == reason, reply


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:10]}"


def bootstrap_admin(db: Path, tenant: str) -> str:
    """A new admin key of `tenant`, made by the keys CLI (`arbiter keys create`) run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = keys_main(
            ["--db", str(backends.database(db)), "create", "--tenant", tenant, "--role", "admin", "--name", "bootstrap"]
        )
    assert code == 0, err.getvalue()
    secret = out.getvalue().strip()
    assert SECRET_PATTERN.fullmatch(secret), out.getvalue()
    return secret


# --------------------------------------------------------------------------
# Tenants and their resources, made through the REST API by their admin key
# --------------------------------------------------------------------------


@dataclass
class Tenant:
    """One fresh tenant on a server: its id, its CLI-made admin key, and helpers that create resources."""

    server: ServerProcess
    id: str
    admin: str
    base_url: str = ""
    context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url or self.server.http_url

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """A call with `key` (the admin key unless given) as `Authorization: Bearer`, unless headers say otherwise."""
        sent = {"Authorization": f"Bearer {key or self.admin}", **(headers or {})}
        return send(self.base_url, method, path, headers=sent, body=body, context=self.context)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = self.call("POST", path, body)
        assert reply.status == 201, reply
        created: dict[str, Any] = reply.body
        return created

    def new_offer(self) -> str:
        return str(self.create("/api/v1/actions", {"name": unique("offer"), "status": "active"})["id"])

    def new_category(self) -> str:
        return str(self.create("/api/v1/categories", {"name": unique("category")})["id"])

    def new_sub_category(self, category_id: str) -> str:
        path = f"/api/v1/categories/{category_id}/sub-categories"
        return str(self.create(path, {"name": unique("sub-category")})["id"])

    def new_decision(self) -> str:
        """A decision the server keeps (the module's server logs every decision)."""
        reply = self.call("POST", "/api/v1/decide", {"customerId": unique("customer").replace(" ", "-")})
        assert reply.status == 200, reply
        return str(reply.body["decisionId"])

    def new_policy(self) -> str:
        return str(self.create("/api/v1/contact-policies", policy_body())["id"])

    def new_key(self, role: str) -> str:
        """A new key of this tenant with `role`, minted with POST /api/v1/api-keys; its secret."""
        created = self.create("/api/v1/api-keys", {"role": role, "name": f"{role} key"})
        secret = str(created["secret"])
        assert key_id_of(secret) == created["apiKey"]["id"]
        return secret

    def key_of(self, role: str) -> str:
        return self.admin if role == ADMIN else self.new_key(role)

    def new(self, kind: str) -> str:
        """A new resource of `kind` (a value of KINDS, sub-categories aside); its id."""
        makers: dict[str, Callable[[], str]] = {
            "offer": self.new_offer,
            "category": self.new_category,
            "contact_policy": self.new_policy,
            "api_key": lambda: key_id_of(self.new_key(DECIDE)),
            "decision": self.new_decision,
            "customer": lambda: unique("customer").replace(" ", "-"),
        }
        assert kind in makers, f"no way to make a {kind} for a path parameter: add one to Tenant.new"
        return makers[kind]()

    def look(self, paths: list[str]) -> list[Any]:
        """What the admin key sees at each path (GET); each must answer 200."""
        seen = []
        for path in paths:
            reply = self.call("GET", path)
            assert reply.status == 200, reply
            seen.append(reply.body)
        return seen


def make_tenant(server: ServerProcess, prefix: str = "rest", **kwargs: Any) -> Tenant:
    tenant = new_tenant(prefix)
    return Tenant(server, tenant, bootstrap_admin(server.db, tenant), **kwargs)


def policy_body() -> dict[str, Any]:
    return {"name": unique("policy"), "scope": "global", "frequencyCap": {"maxPerDay": 3}}


def outcome_body(offer_id: str) -> dict[str, Any]:
    """An impression: if it were recorded, the offer's stats would show it."""
    return {"customerId": "cust-1", "offerId": offer_id, "type": "impression", "idempotencyKey": uuid.uuid4().hex}


def _renamed(tenant: Tenant, probes: list[str]) -> dict[str, Any]:
    return {"name": unique("renamed")}


def _outcome(tenant: Tenant, probes: list[str]) -> dict[str, Any]:
    offer_id = tenant.new_offer()
    probes.append(f"/api/v1/actions/{offer_id}/stats")
    return outcome_body(offer_id)


def _outcomes(tenant: Tenant, probes: list[str]) -> dict[str, Any]:
    return {"outcomes": [_outcome(tenant, probes)]}


# A valid JSON body per RPC of a route that takes one. Builders may create what the body refers to, and
# add the paths whose GET would show the call's effect.
BODIES: dict[str, Callable[[Tenant, list[str]], dict[str, Any]]] = {
    "CreateOffer": lambda t, p: {"name": unique("offer"), "status": "active"},
    "CreateCategory": lambda t, p: {"name": unique("category")},
    "CreateSubCategory": lambda t, p: {"name": unique("sub-category")},
    "CreateContactPolicy": lambda t, p: policy_body(),
    **{f"Update{kind}": _renamed for kind in CATALOG},
    "UpdateTenantSettings": lambda t, p: {"timezone": "Europe/Paris"},
    "CreateApiKey": lambda t, p: {"role": DECIDE, "name": "made by the test"},
    "Decide": lambda t, p: {"customerId": "cust-1"},
    "BatchDecide": lambda t, p: {"requests": [{"customerId": "cust-1"}, {"customerId": "cust-2"}]},
    "RecordOutcome": _outcome,
    "RecordOutcomes": _outcomes,
}


@dataclass
class Request:
    """A request for one route, on real resources: method, filled path, body, and the paths showing its effect."""

    method: str
    path: str
    body: Any
    probes: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)


def request_for(route: Route, owner: Tenant, body_from: Tenant | None = None) -> Request:
    """A valid request for `route`: path parameters filled with fresh resources of `owner` (so the call reaches
    real objects), the body made for `body_from` (the owner unless given)."""
    ids: dict[str, str] = {}
    for name in PATH_PARAM.findall(route.path):
        segments = route.path.split("/")
        collection = segments[segments.index(f"{{{name}}}") - 1]
        assert collection in KINDS, f"{route_id(route)}: unknown collection {collection!r}; add it to KINDS"
        kind = KINDS[collection]
        ids[name] = owner.new_sub_category(ids["categoryId"]) if kind == "sub_category" else owner.new(kind)
    path = route.path.format(**ids)
    if route.rpc == "WhyNot":  # a pinned instant, so that looking twice shows the same answer
        path += "?decisionTime=2026-06-03T12:00:00Z"
    probes = [path] if route.path in GET_PATHS else []
    body = None
    if route.body is not None:
        assert route.rpc in BODIES, f"{route_id(route)}: no valid body known for {route.rpc}; add one to BODIES"
        body = BODIES[route.rpc](body_from or owner, probes)
    return Request(route.method, path, body, probes, ids)


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server with authentication and its REST listener, shared by this module (tenants are per test)."""
    db = tmp_path_factory.mktemp("rest-auth") / "arbiter.db"
    with ServerProcess(db, ["--decision-log-sample", "1"], auth=True, http=True) as process:
        yield process


# --------------------------------------------------------------------------
# The route table and the roles table
# --------------------------------------------------------------------------


def test_every_route_names_a_real_rpc_and_a_row_of_the_roles_table() -> None:
    """The matrices below mean something: each route translates to an RPC that exists and that the roles table lists."""
    rpcs = {method_label(m) for m in arbiter_methods()}
    assert len(ROUTES) >= 30
    for route in ROUTES:
        assert f"{route.service}.{route.rpc}" in rpcs, route_id(route)
        assert route.rpc in ALLOWED, f"{route_id(route)}: {route.rpc} has no row in SPEC_ROLES"
    # The table mirrors every RPC of the gRPC API, not only the routed ones.
    assert sorted(ALLOWED) == sorted(label.split(".")[1] for label in rpcs)


# --------------------------------------------------------------------------
# 1. Every route refuses a missing, malformed, unknown, revoked or expired key: 401, and nothing changes
# --------------------------------------------------------------------------


def _refused_headers(tenant: Tenant, credential: str) -> tuple[dict[str, str], str]:
    """The headers a refused credential sends (always naming the tenant in X-Tenant-Id, which must not help),
    and the secret it carries (never to be echoed)."""
    headers = {"X-Tenant-Id": tenant.id}
    if credential == "no-key":
        return headers, ""
    if credential == "malformed":  # a valid key, but not as "Bearer <key>"
        return {**headers, "Authorization": tenant.admin}, tenant.admin
    if credential == "unknown":
        secret = random_secret()
    elif credential == "revoked":
        secret = tenant.new_key(ADMIN)
        revoked = tenant.call("DELETE", f"/api/v1/api-keys/{key_id_of(secret)}")
        assert revoked.status == 200 and revoked.body["revokedAt"], revoked
    else:
        secret = expired_key(tenant.server.db, tenant.id, ADMIN)
    return {**headers, "Authorization": f"Bearer {secret}"}, secret


@pytest.mark.parametrize("credential", list(REFUSED))
@pytest.mark.parametrize("route", ROUTES, ids=operation_id)
def test_every_route_refuses_a_bad_credential_with_401(
    rest_server: ServerProcess, route: Route, credential: str
) -> None:
    """A valid request on real objects, with a bad credential, is 401 UNAUTHENTICATED in the AIP-193 shape,
    with the reason of the credential, never echoes the secret, and changes nothing."""
    tenant = make_tenant(rest_server)
    request = request_for(route, tenant)
    headers, secret = _refused_headers(tenant, credential)
    before = tenant.look(request.probes)

    reply = send(tenant.base_url, request.method, request.path, headers=headers, body=request.body)

    assert_error(reply, 401, "UNAUTHENTICATED", REFUSED[credential])
    assert not secret or secret.encode() not in reply.raw
    assert tenant.look(request.probes) == before, f"{reply} changed what {request.probes} show"


@pytest.mark.parametrize(
    "value",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer: {key}", "Bearer {key} extra", "Token {key}", "{key}"],
)
def test_an_authorization_not_of_the_form_bearer_key_is_malformed(rest_server: ServerProcess, value: str) -> None:
    """Authorization must be exactly "Bearer <key>": any other form of a valid key is 401 KEY_MALFORMED."""
    tenant = make_tenant(rest_server)
    headers = {"Authorization": value.format(key=tenant.admin)}
    reply = send(tenant.base_url, "GET", "/api/v1/actions", headers=headers)
    assert_error(reply, 401, "UNAUTHENTICATED", "KEY_MALFORMED")


def test_a_key_is_checked_on_every_request_of_a_kept_alive_connection(rest_server: ServerProcess) -> None:
    """Authentication belongs to the request, not the connection: after a served request, the next request on
    the same HTTP/1.1 connection without a key is 401."""
    tenant = make_tenant(rest_server)
    parts = urlsplit(tenant.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=TIMEOUT)
    try:
        connection.request("GET", "/api/v1/tenant/settings", headers={"Authorization": f"Bearer {tenant.admin}"})
        first = connection.getresponse()
        first.read()
        assert first.status == 200
        socket = connection.sock
        assert socket is not None and not first.will_close, "the server closed the connection"
        connection.request("GET", "/api/v1/tenant/settings", headers={"X-Tenant-Id": tenant.id})
        assert connection.sock is socket  # the same connection
        second = connection.getresponse()
        raw = second.read()
    finally:
        connection.close()
    reply = Reply(
        "GET /api/v1/tenant/settings (kept alive)",
        second.status,
        {"content-type": "application/json"},
        json.loads(raw),
        raw,
    )
    assert_error(reply, 401, "UNAUTHENTICATED", "KEY_MISSING")


def test_a_key_revoked_with_the_cli_is_refused_on_the_next_rest_call(rest_server: ServerProcess) -> None:
    """`arbiter keys revoke` on the server's database takes effect over REST before the next call."""
    tenant = make_tenant(rest_server)
    secret = tenant.new_key(EDITOR)
    assert tenant.call("GET", "/api/v1/tenant/settings", key=secret).status == 200
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = keys_main(["--db", str(backends.database(rest_server.db)), "revoke", key_id_of(secret)])
    assert code == 0, err.getvalue()
    assert_error(tenant.call("GET", "/api/v1/tenant/settings", key=secret), 401, "UNAUTHENTICATED", "KEY_REVOKED")


# --------------------------------------------------------------------------
# 2. Roles: every route × every role, as the roles table says
# --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", ROUTES, ids=operation_id)
def test_every_route_applies_the_roles_table(rest_server: ServerProcess, route: Route, role: str) -> None:
    """A valid request on real objects of the key's own tenant: served (the route's success status) when the roles
    table lets the role make the call, else 403 PERMISSION_DENIED and nothing changes."""
    tenant = make_tenant(rest_server)
    key = tenant.key_of(role)
    request = request_for(route, tenant)
    before = tenant.look(request.probes)

    reply = tenant.call(request.method, request.path, request.body, key=key)

    if role in ALLOWED[route.rpc]:
        assert reply.status not in (401, 403), reply
        assert reply.status == success_status(route), reply
    else:
        assert_error(reply, 403, "PERMISSION_DENIED")
        assert tenant.look(request.probes) == before, f"{reply} changed what {request.probes} show"


@pytest.mark.parametrize(
    ("route", "role"),
    [(r, role) for r, role in FORBIDDEN if r.body is not None],
    ids=lambda value: operation_id(value) if isinstance(value, Route) else str(value),
)
def test_a_forbidden_role_is_refused_before_its_body_is_read(
    rest_server: ServerProcess, route: Route, role: str
) -> None:
    """The role is checked before the input, on both doors: the empty request of an RPC the role may not call
    is PERMISSION_DENIED over gRPC, so the same route without a body must be 403 over REST, not a 400 that
    describes what the body should have held."""
    tenant = make_tenant(rest_server)
    key = tenant.key_of(role)
    request = request_for(route, tenant)
    (method,) = [m for m in arbiter_methods() if method_label(m) == f"{route.service}.{route.rpc}"]
    with grpc.insecure_channel(rest_server.target) as channel:
        over_grpc = call(channel, method, bearer(key))
    assert over_grpc.code == grpc.StatusCode.PERMISSION_DENIED, over_grpc

    reply = tenant.call(request.method, request.path, key=key)  # no body

    assert_error(reply, 403, "PERMISSION_DENIED")


# --------------------------------------------------------------------------
# 3. Tenancy: another tenant's ids are 404 on every item route, lists show only one's own, X-Tenant-Id is ignored
# --------------------------------------------------------------------------


SPOOF = {"plain": False, "x-tenant-id": True}


@pytest.mark.parametrize("spoof", list(SPOOF))
@pytest.mark.parametrize("route", ITEM_ROUTES, ids=operation_id)
def test_another_tenants_ids_are_404_on_every_item_route(rest_server: ServerProcess, route: Route, spoof: str) -> None:
    """Tenant B's admin key, with ids of tenant A in the path (and, spoofing, `X-Tenant-Id: A`): 404 NOT_FOUND,
    and A's objects are unchanged."""
    a, b = make_tenant(rest_server, "rest-a"), make_tenant(rest_server, "rest-b")
    request = request_for(route, a, body_from=b)
    before = a.look(request.probes)
    headers = {"X-Tenant-Id": a.id} if SPOOF[spoof] else {}

    reply = b.call(request.method, request.path, request.body, headers=headers)

    assert_error(reply, 404, "NOT_FOUND")
    assert a.look(request.probes) == before, f"{reply} changed tenant A's {request.probes}"


@dataclass
class Catalogue:
    """One of each resource kind in a tenant: kind -> id (the category holds the sub-category)."""

    tenant: Tenant
    ids: dict[str, str]


def catalogue(tenant: Tenant) -> Catalogue:
    category = tenant.new_category()
    return Catalogue(
        tenant,
        {
            "offer": tenant.new_offer(),
            "category": category,
            "sub_category": tenant.new_sub_category(category),
            "contact_policy": tenant.new_policy(),
            "api_key": tenant.new("api_key"),
        },
    )


def _listed_ids(reply: Reply) -> set[str]:
    assert reply.status == 200, reply
    assert reply.body["pagination"]["hasMore"] is False, reply
    return {str(item["id"]) for item in reply.body["data"]}


@pytest.mark.parametrize("spoof", list(SPOOF))
@pytest.mark.parametrize("route", LIST_ROUTES, ids=operation_id)
def test_lists_show_only_the_callers_own_tenant(rest_server: ServerProcess, route: Route, spoof: str) -> None:
    """Every list route of tenant B (also when it sends `X-Tenant-Id: A`) holds B's resource and none of A's;
    listing under A's category from B shows nothing of A either."""
    a, b = catalogue(make_tenant(rest_server, "rest-a")), catalogue(make_tenant(rest_server, "rest-b"))
    headers = {"X-Tenant-Id": a.tenant.id} if SPOOF[spoof] else {}
    kind = KINDS[route.path.rsplit("/", 1)[-1]]
    foreign = set(a.ids.values())

    own = _listed_ids(b.tenant.call("GET", route.path.format(**{"categoryId": b.ids["category"]}), headers=headers))
    assert b.ids[kind] in own
    assert not own & foreign, own & foreign

    if "{categoryId}" in route.path:
        under_a = b.tenant.call("GET", route.path.format(categoryId=a.ids["category"]), headers=headers)
        if under_a.status != 404:
            assert not _listed_ids(under_a) & foreign, under_a


def test_x_tenant_id_never_moves_a_key_to_another_tenant(rest_server: ServerProcess) -> None:
    """With auth on, `X-Tenant-Id: A` sent with B's key is ignored: B's settings, B's writes land in B, and
    A's objects stay invisible."""
    a, b = make_tenant(rest_server, "rest-a"), make_tenant(rest_server, "rest-b")
    a_offer = a.new_offer()
    spoof = {"X-Tenant-Id": a.id}

    settings = b.call("GET", "/api/v1/tenant/settings", headers=spoof)
    assert settings.status == 200 and settings.body["tenantId"] == b.id, settings

    created = b.call("POST", "/api/v1/actions", {"name": unique("spoofed")}, headers=spoof)
    assert created.status == 201, created
    offer_id = created.body["id"]
    assert b.call("GET", f"/api/v1/actions/{offer_id}").status == 200  # it landed in B …
    assert_error(a.call("GET", f"/api/v1/actions/{offer_id}"), 404, "NOT_FOUND", "OFFER_NOT_FOUND")  # … not in A
    assert_error(b.call("GET", f"/api/v1/actions/{a_offer}", headers=spoof), 404, "NOT_FOUND", "OFFER_NOT_FOUND")

    key = b.call("POST", "/api/v1/api-keys", {"role": ADMIN}, headers=spoof)
    assert key.status == 201, key
    minted = Tenant(rest_server, b.id, key.body["secret"])
    assert minted.call("GET", "/api/v1/tenant/settings").body["tenantId"] == b.id


def test_writes_naming_another_tenants_objects_are_refused(rest_server: ServerProcess) -> None:
    """B cannot reach A's objects through a body or a parent path either: outcomes for A's offer, a
    sub-category under A's category, an offer in A's category, a policy scoped to A's offer all fail, and
    A's objects are unchanged."""
    a, b = make_tenant(rest_server, "rest-a"), make_tenant(rest_server, "rest-b")
    offer, category = a.new_offer(), a.new_category()
    probes = [f"/api/v1/actions/{offer}/stats", f"/api/v1/categories/{category}/sub-categories", "/api/v1/actions"]
    before = a.look(probes)

    assert_error(b.call("POST", "/api/v1/outcomes", outcome_body(offer)), 404, "NOT_FOUND", "OFFER_NOT_FOUND")
    bulk = b.call("POST", "/api/v1/outcomes", {"outcomes": [outcome_body(offer)]})
    assert_error(bulk, 400, "INVALID_ARGUMENT")
    sub = b.call("POST", f"/api/v1/categories/{category}/sub-categories", {"name": unique("intruder")})
    assert sub.status in (400, 404), sub
    in_category = b.call("POST", "/api/v1/actions", {"name": unique("intruder"), "categoryId": category})
    assert_error(in_category, 400, "INVALID_ARGUMENT")
    scoped = {**policy_body(), "scope": "offer", "scopeId": offer}
    assert_error(b.call("POST", "/api/v1/contact-policies", scoped), 400, "INVALID_ARGUMENT")

    assert a.look(probes) == before


# --------------------------------------------------------------------------
# 4. Both auth headers: Authorization: Bearer and X-API-Key
# --------------------------------------------------------------------------


def test_bearer_and_x_api_key_both_authenticate(rest_server: ServerProcess) -> None:
    """`Authorization: Bearer <key>` and `X-API-Key: <key>` act for the key's tenant (a write through one is read
    through the other); the scheme word is case-insensitive."""
    tenant = make_tenant(rest_server)
    forms = {
        "bearer": {"Authorization": f"Bearer {tenant.admin}"},
        "lower-case scheme": {"Authorization": f"bearer {tenant.admin}"},
        "x-api-key": {"X-API-Key": tenant.admin},
    }
    for form, headers in forms.items():
        reply = send(tenant.base_url, "GET", "/api/v1/tenant/settings", headers=headers)
        assert reply.status == 200 and reply.body["tenantId"] == tenant.id, (form, reply)

    created = send(
        tenant.base_url, "POST", "/api/v1/actions", headers=forms["x-api-key"], body={"name": unique("via x-api-key")}
    )
    assert created.status == 201, created
    assert tenant.call("GET", f"/api/v1/actions/{created.body['id']}").status == 200


def test_x_api_key_carries_the_keys_role_and_is_checked_like_bearer(rest_server: ServerProcess) -> None:
    """Through X-API-Key a decide key keeps its role (offers yes, settings no), and an unknown, revoked or
    expired key, or a "Bearer …" value in it, is 401."""
    tenant = make_tenant(rest_server)
    decide = tenant.new_key(DECIDE)
    assert send(tenant.base_url, "GET", "/api/v1/actions", headers={"X-API-Key": decide}).status == 200
    denied = send(tenant.base_url, "GET", "/api/v1/tenant/settings", headers={"X-API-Key": decide})
    assert_error(denied, 403, "PERMISSION_DENIED")

    revoked = tenant.new_key(ADMIN)
    assert tenant.call("DELETE", f"/api/v1/api-keys/{key_id_of(revoked)}").status == 200
    refused = {
        "KEY_UNKNOWN": random_secret(),
        "KEY_REVOKED": revoked,
        "KEY_EXPIRED": expired_key(rest_server.db, tenant.id, ADMIN),
    }
    for reason, secret in refused.items():
        reply = send(tenant.base_url, "GET", "/api/v1/actions", headers={"X-API-Key": secret})
        assert_error(reply, 401, "UNAUTHENTICATED", reason)
    scheme = send(tenant.base_url, "GET", "/api/v1/actions", headers={"X-API-Key": f"Bearer {tenant.admin}"})
    assert_error(scheme, 401, "UNAUTHENTICATED")


# --------------------------------------------------------------------------
# 5. No authentication is for loopback only, on the HTTP listener too
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--http-address", "0.0.0.0:0"], {}),
        (["--http-address", "[::]:0"], {}),
        ([], {"ARBITER_HTTP_ADDRESS": "0.0.0.0:0"}),
    ],
    ids=["flag-0.0.0.0", "flag-ipv6-any", "env-0.0.0.0"],
)
def test_no_auth_is_refused_on_a_non_loopback_http_address(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    """`--insecure-no-auth` with a loopback gRPC address but a non-loopback HTTP address exits 2, naming the
    HTTP address, before the database is created."""
    db = tmp_path / "x.db"
    command = [sys.executable, "-m", "arbiter.server", "--address", "127.0.0.1:0", *args]
    command += ["--insecure-no-auth", "--db", str(db)]
    environment = {**os.environ, **env}
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=environment)
    address = args[1] if args else env["ARBITER_HTTP_ADDRESS"]
    assert result.returncode == 2, result
    assert f"refusing to listen on {address} with --insecure-no-auth" in result.stderr, result.stderr
    assert not db.exists()  # refused before touching anything


def test_no_auth_on_loopback_http_is_served(tmp_path: Path) -> None:
    """The control: without auth on a loopback HTTP address the server starts, and X-Tenant-Id picks the tenant."""
    tenant = new_tenant("noauth")
    with ServerProcess(tmp_path / "arbiter.db", http=True) as process:
        reply = send(process.http_url, "GET", "/api/v1/tenant/settings", headers={"X-Tenant-Id": tenant})
    assert reply.status == 200 and reply.body["tenantId"] == tenant, reply


# --------------------------------------------------------------------------
# 6. TLS: --tls-cert/--tls-key make the REST listener speak HTTPS (and --tls-client-ca makes it mutual)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a server certificate (127.0.0.1, localhost), a client one and another CA."""

    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_client_cert: Path  # signed by other_ca
    other_client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("rest-pki")
    ca, other_ca = make_ca("Arbiter REST test CA"), make_ca("Somebody else's CA")
    server, client = issue(ca, "arbiter server", server=True).pem(), issue(ca, "arbiter client", server=False).pem()
    intruder = issue(other_ca, "intruder", server=False).pem()
    files = {
        "ca.pem": ca.pem().cert,
        "other-ca.pem": other_ca.pem().cert,
        "server.pem": server.cert,
        "server.key": server.key,
        "client.pem": client.cert,
        "client.key": client.key,
        "intruder.pem": intruder.cert,
        "intruder.key": intruder.key,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return Pki(*(folder / name for name in files))


class TlsRestServer(ServerProcess):
    """An authenticating server with TLS on both listeners; its readiness check goes over TLS too."""

    def __init__(self, db: Path, pki: Pki, *, mutual: bool) -> None:
        args = ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
        if mutual:
            args += ["--tls-client-ca", str(pki.ca)]
        super().__init__(db, args, auth=True, http=True)
        client = (pki.client_key.read_bytes(), pki.client_cert.read_bytes()) if mutual else (None, None)
        self.credentials = grpc.ssl_channel_credentials(pki.ca.read_bytes(), *client)

    def channel(self) -> grpc.Channel:
        return grpc.secure_channel(self.target, self.credentials)

    @property
    def https_url(self) -> str:
        return self.http_url.replace("http://", "https://", 1)


def trusting(ca: Path, client: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """A client context whose only trust root is `ca` (with a client certificate and key if given)."""
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(*client)
    return context


def no_http_answer(base_url: str, context: ssl.SSLContext | None = None) -> BaseException:
    """Call the listener once: it must fail at the connection (TLS or socket error), never answer HTTP."""
    with pytest.raises((OSError, http.client.HTTPException)) as info:
        send(base_url, "GET", "/api/v1/tenant/settings", context=context)
    return info.value


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsRestServer]:
    process = TlsRestServer(tmp_path_factory.mktemp("rest-tls") / "arbiter.db", pki, mutual=False)
    with process:
        yield process


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[TlsRestServer]:
    process = TlsRestServer(tmp_path_factory.mktemp("rest-mtls") / "arbiter.db", pki, mutual=True)
    with process:
        yield process


def test_https_with_the_ca_as_trust_root_is_served_and_keys_still_apply(tls_server: TlsRestServer, pki: Pki) -> None:
    """With --tls-cert/--tls-key, HTTPS to the REST listener verifies against the CA and serves; a call without
    a key is still 401 and a decide key still has its role."""
    tenant = make_tenant(tls_server, base_url=tls_server.https_url, context=trusting(pki.ca))
    settings = tenant.call("GET", "/api/v1/tenant/settings")
    assert settings.status == 200 and settings.body["tenantId"] == tenant.id, settings
    assert tenant.call("GET", f"/api/v1/actions/{tenant.new_offer()}").status == 200

    anonymous = send(tenant.base_url, "GET", "/api/v1/actions", context=tenant.context)
    assert_error(anonymous, 401, "UNAUTHENTICATED", "KEY_MISSING")
    denied = tenant.call("PUT", "/api/v1/tenant/settings", {"timezone": "Europe/Paris"}, key=tenant.new_key(DECIDE))
    assert_error(denied, 403, "PERMISSION_DENIED")


def test_plain_http_to_the_tls_listener_fails(tls_server: TlsRestServer, pki: Pki) -> None:
    """Plain http:// to the TLS listener gets no HTTP answer (the listener speaks only TLS), and the listener
    keeps serving HTTPS."""
    tenant = make_tenant(tls_server, base_url=tls_server.https_url, context=trusting(pki.ca))
    no_http_answer(tls_server.http_url)
    assert tenant.call("GET", "/api/v1/tenant/settings").status == 200


def test_https_trusting_another_ca_fails_verification(tls_server: TlsRestServer, pki: Pki) -> None:
    """A client whose trust root is another CA refuses the server's certificate."""
    error = no_http_answer(tls_server.https_url, trusting(pki.other_ca))
    assert isinstance(error, ssl.SSLCertVerificationError), repr(error)


def test_mutual_tls_on_http_needs_a_client_certificate(mtls_server: TlsRestServer, pki: Pki) -> None:
    """With --tls-client-ca, HTTPS with a client certificate signed by the CA is served; without one, or with
    one from another CA, the connection fails; the key is still checked."""
    with_cert = trusting(pki.ca, (pki.client_cert, pki.client_key))
    tenant = make_tenant(mtls_server, base_url=mtls_server.https_url, context=with_cert)
    settings = tenant.call("GET", "/api/v1/tenant/settings")
    assert settings.status == 200 and settings.body["tenantId"] == tenant.id, settings
    assert_error(send(tenant.base_url, "GET", "/api/v1/actions", context=with_cert), 401, "UNAUTHENTICATED")

    no_http_answer(mtls_server.https_url, trusting(pki.ca))
    no_http_answer(mtls_server.https_url, trusting(pki.ca, (pki.other_client_cert, pki.other_client_key)))
    assert tenant.call("GET", "/api/v1/tenant/settings").status == 200


# --------------------------------------------------------------------------
# 7. Rate limits over HTTP: 429 RESOURCE_EXHAUSTED with Retry-After
# --------------------------------------------------------------------------

BURST = 8  # calls sent back to back; at 1 call/s with a burst of 1, all but about the first are over the limit


@pytest.fixture(scope="module")
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("rest-limited") / "arbiter.db"
    with ServerProcess(db, ["--rate-limit", "1", "--rate-burst", "1"], auth=True, http=True) as process:
        yield process


def _burst(tenant: Tenant) -> list[Reply]:
    return [tenant.call("GET", "/api/v1/tenant/settings") for _ in range(BURST)]


def test_a_burst_over_the_rate_limit_gets_429_with_retry_after(limited_server: ServerProcess) -> None:
    """A fresh tenant's first call is served (a full bucket); calls over the limit are 429 RESOURCE_EXHAUSTED
    with RATE_LIMITED, a RetryInfo, and a Retry-After of whole seconds, at least 1 (at most 1 at 1 call/s)."""
    replies = _burst(make_tenant(limited_server, "limited"))

    assert replies[0].status == 200, replies[0]
    limited = [r for r in replies if r.status == 429]
    assert limited, replies
    assert all(r.status in (200, 429) for r in replies), replies
    for reply in limited:
        assert_error(reply, 429, "RESOURCE_EXHAUSTED", "RATE_LIMITED")
        assert any(d.get("@type") == RETRY_INFO for d in reply.error["details"]), reply
        retry_after = reply.headers.get("retry-after", "")
        assert retry_after.isdigit(), reply.headers
        assert int(retry_after) >= 1, reply.headers
        assert int(retry_after) == 1, reply.headers  # at 1 call/s a token is never more than 1 s away


def test_the_rate_limit_is_per_tenant(limited_server: ServerProcess) -> None:
    """One tenant over its limit leaves another tenant's first call served."""
    busy, quiet = make_tenant(limited_server, "busy"), make_tenant(limited_server, "quiet")
    assert any(r.status == 429 for r in _burst(busy))
    reply = quiet.call("GET", "/api/v1/tenant/settings")
    assert reply.status == 200 and reply.body["tenantId"] == quiet.id, reply
