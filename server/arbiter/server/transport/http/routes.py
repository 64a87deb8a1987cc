"""The REST routes: one table, from which both the router and the OpenAPI document are made (transport layer).

Each route translates to one RPC of the gRPC API, served in process by the
same servicers (so every rule, check and shape exists once): the path
parameters, query parameters, headers and JSON body fill the RPC's request
message, and one field of its response (or all of it) is the answer's body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from arbiter.v1 import api_keys_pb2, catalog_pb2, contact_policies_pb2, decisions_pb2, offers_pb2, tenants_pb2

from ...domain.access import Permission

API = "/api/v1"


@dataclass(frozen=True)
class Param:
    """A query parameter (or header) and the request field it fills (a dotted path)."""

    name: str
    field: str
    description: str


LIMIT = Param("limit", "page_size", "items per page: 0 or absent means 50, above 1,000 means 1,000")
CURSOR = Param("cursor", "page_token", "the `nextCursor` of the previous page")
PAGING = (LIMIT, CURSOR)


@dataclass(frozen=True)
class Route:
    """One REST operation and the RPC it translates to.

    `body` names the request field the JSON body fills ("*": the whole
    request); with `merge` (PUT and PATCH), the keys present in the body
    become the update mask, so only they change and JSON null clears.
    `response` names the response field that is the answer's body ("*": the
    whole response, None: 204 No Content); with `listed`, that repeated field
    goes under "data" beside the pagination.
    """

    name: str  # the OpenAPI operationId
    method: str
    path: str
    service: str
    rpc: str
    request: type[Message]
    summary: str
    # What the RPC's use case requires. The use case checks it; the door checks it too, first, when the
    # request cannot even be translated, so that a caller without the role hears 403, not about the body.
    permission: Permission
    path_fields: Mapping[str, str] = field(default_factory=dict)
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    body: str | None = None
    merge: bool = False
    response: str | None = None
    listed: bool = False
    status: int = 200
    location: str | None = None  # a path template filled from the created resource's JSON
    resource: str | None = None  # the response field holding that resource (default: `response`)
    parent: str | None = None  # a path parameter the resource's categoryId must equal (else 404)
    fits: Callable[[Any], bool] | None = None  # for routes sharing a method and path: whether a body is theirs
    tag: str = ""


def _crud(
    *,
    tag: str,
    plural: str,
    singular: str,
    service: str,
    collection: str,
    resource_field: str,
    messages: Any,
    type_name: str,
    list_query: tuple[Param, ...],
    list_rpc: str,
    list_field: str,
    read: Permission,
    create_query: tuple[Param, ...] = (),
    parent: Param | None = None,
) -> list[Route]:
    """The five verbs of a resource (create, list, get, update as PUT and PATCH, delete)."""
    item = f"{collection}/{{id}}"
    parent_fields = {parent.name: parent.field} if parent else {}
    location = f"{API}/categories/{{categoryId}}/sub-categories/{{id}}" if parent else f"{item}"
    parent_check = parent.name if parent else None
    new = getattr(messages, f"Create{type_name}Request")
    update = getattr(messages, f"Update{type_name}Request")
    return [
        Route(
            f"create{type_name}",
            "POST",
            collection,
            service,
            f"Create{type_name}",
            new,
            f"Create {singular}",
            Permission.CATALOG_WRITE,
            path_fields={k: f"{resource_field}.{v}" for k, v in parent_fields.items()},
            query=create_query,
            body=resource_field,
            response=resource_field,
            status=201,
            location=location,
            tag=tag,
        ),
        Route(
            f"list{plural}",
            "GET",
            collection,
            service,
            list_rpc,
            getattr(messages, f"{list_rpc}Request"),
            f"List {tag.lower()}",
            read,
            path_fields=parent_fields,
            query=(*list_query, *PAGING),
            response=list_field,
            listed=True,
            tag=tag,
        ),
        Route(
            f"get{type_name}",
            "GET",
            item,
            service,
            f"Get{type_name}",
            getattr(messages, f"Get{type_name}Request"),
            f"Get {singular}",
            read,
            path_fields={"id": "id"},
            response=resource_field,
            parent=parent_check,
            tag=tag,
        ),
        *(
            Route(
                f"{verb}{type_name}",
                method,
                item,
                service,
                f"Update{type_name}",
                update,
                f"Update {singular}: only the keys present change, null clears",
                Permission.CATALOG_WRITE,
                path_fields={"id": f"{resource_field}.id"},
                body=resource_field,
                merge=True,
                response=resource_field,
                parent=parent_check,
                tag=tag,
            )
            for verb, method in (("replace", "PUT"), ("patch", "PATCH"))
        ),
        Route(
            f"delete{type_name}",
            "DELETE",
            item,
            service,
            f"Delete{type_name}",
            getattr(messages, f"Delete{type_name}Request"),
            f"Delete {singular}",
            Permission.CATALOG_WRITE,
            path_fields={"id": "id"},
            query=(Param("force", "force", "also delete an offer that has history"),) if type_name == "Offer" else (),
            parent=parent_check,
            tag=tag,
        ),
    ]


def _is_bulk(body: Any) -> bool:
    return isinstance(body, Mapping) and "outcomes" in body


ROUTES: tuple[Route, ...] = (
    *_crud(
        tag="Offers",
        plural="Offers",
        singular="an offer",
        service="OfferService",
        collection=f"{API}/actions",
        resource_field="offer",
        messages=offers_pb2,
        type_name="Offer",
        list_query=(
            Param("status", "status", "only offers in this status"),
            Param("categoryId", "category_ids", "offers in any of these categories (repeat or comma-separate)"),
            Param("tags", "tags", "offers carrying all of these tags (repeat or comma-separate)"),
        ),
        list_rpc="ListOffers",
        list_field="offers",
        read=Permission.OFFER_READ,
    ),
    Route(
        "getOfferStats",
        "GET",
        f"{API}/actions/{{id}}/stats",
        "DecisionService",
        "GetOfferStats",
        decisions_pb2.GetOfferStatsRequest,
        "An offer's counters: impressions, today's spend, what is left, the model's estimate",
        Permission.STATS,
        path_fields={"id": "offer_id"},
        response="stats",
        tag="Offers",
    ),
    *_crud(
        tag="Categories",
        plural="Categories",
        singular="a category",
        service="CatalogService",
        collection=f"{API}/categories",
        resource_field="category",
        messages=catalog_pb2,
        type_name="Category",
        list_query=(Param("status", "status", "only categories in this status"),),
        list_rpc="ListCategories",
        list_field="categories",
        read=Permission.CATALOG_READ,
        create_query=(Param("categoryId", "category_id", "the id to give it (cat_…); else one is assigned"),),
    ),
    *_crud(
        tag="Sub-categories",
        plural="SubCategories",
        singular="a sub-category",
        service="CatalogService",
        collection=f"{API}/categories/{{categoryId}}/sub-categories",
        resource_field="sub_category",
        messages=catalog_pb2,
        type_name="SubCategory",
        list_query=(),
        list_rpc="ListSubCategories",
        list_field="sub_categories",
        read=Permission.CATALOG_READ,
        create_query=(Param("subCategoryId", "sub_category_id", "the id to give it (sub_…); else one is assigned"),),
        parent=Param("categoryId", "category_id", "the parent category"),
    ),
    *_crud(
        tag="Contact policies",
        plural="ContactPolicies",
        singular="a contact policy",
        service="ContactPolicyService",
        collection=f"{API}/contact-policies",
        resource_field="contact_policy",
        messages=contact_policies_pb2,
        type_name="ContactPolicy",
        list_query=(Param("status", "status", "only policies in this status"),),
        list_rpc="ListContactPolicies",
        list_field="contact_policies",
        read=Permission.CATALOG_READ,
    ),
    Route(
        "getTenantSettings",
        "GET",
        f"{API}/tenant/settings",
        "TenantService",
        "GetTenantSettings",
        tenants_pb2.GetTenantSettingsRequest,
        "The calling tenant's settings",
        Permission.SETTINGS_READ,
        response="settings",
        tag="Tenant",
    ),
    Route(
        "updateTenantSettings",
        "PUT",
        f"{API}/tenant/settings",
        "TenantService",
        "UpdateTenantSettings",
        tenants_pb2.UpdateTenantSettingsRequest,
        "Change the calling tenant's settings (only the keys present)",
        Permission.SETTINGS_WRITE,
        body="settings",
        merge=True,
        response="settings",
        tag="Tenant",
    ),
    Route(
        "createApiKey",
        "POST",
        f"{API}/api-keys",
        "ApiKeyService",
        "CreateApiKey",
        api_keys_pb2.CreateApiKeyRequest,
        "Create an API key of the calling tenant; the answer holds its secret, shown only once",
        Permission.KEYS,
        body="api_key",
        response="*",
        status=201,
        location=f"{API}/api-keys/{{id}}",
        resource="api_key",
        tag="API keys",
    ),
    Route(
        "listApiKeys",
        "GET",
        f"{API}/api-keys",
        "ApiKeyService",
        "ListApiKeys",
        api_keys_pb2.ListApiKeysRequest,
        "List the calling tenant's API keys (never their secrets)",
        Permission.KEYS,
        query=PAGING,
        response="api_keys",
        listed=True,
        tag="API keys",
    ),
    Route(
        "getApiKey",
        "GET",
        f"{API}/api-keys/{{id}}",
        "ApiKeyService",
        "GetApiKey",
        api_keys_pb2.GetApiKeyRequest,
        "Get an API key",
        Permission.KEYS,
        path_fields={"id": "id"},
        response="api_key",
        tag="API keys",
    ),
    Route(
        "revokeApiKey",
        "DELETE",
        f"{API}/api-keys/{{id}}",
        "ApiKeyService",
        "RevokeApiKey",
        api_keys_pb2.RevokeApiKeyRequest,
        "Revoke an API key: it stops working at once and stays listed as revoked",
        Permission.KEYS,
        path_fields={"id": "id"},
        response="api_key",
        tag="API keys",
    ),
    Route(
        "decide",
        "POST",
        f"{API}/decide",
        "DecisionService",
        "Decide",
        decisions_pb2.DecideRequest,
        "The best offers for a customer now",
        Permission.DECIDE,
        body="*",
        response="*",
        tag="Decisions",
    ),
    Route(
        "batchDecide",
        "POST",
        f"{API}/decide:batch",
        "DecisionService",
        "BatchDecide",
        decisions_pb2.BatchDecideRequest,
        "Decide for up to 1,000 customers in one call, each as its own Decide would",
        Permission.DECIDE,
        body="*",
        response="*",
        tag="Decisions",
    ),
    Route(
        "getDecision",
        "GET",
        f"{API}/decisions/{{id}}",
        "DecisionService",
        "GetDecision",
        decisions_pb2.GetDecisionRequest,
        "A decision kept by the decision log: request, answer and every candidate's fate",
        Permission.STATS,
        path_fields={"id": "decision_id"},
        response="decision",
        tag="Decisions",
    ),
    Route(
        "whyNot",
        "GET",
        f"{API}/customers/{{id}}/why-not/{{offerId}}",
        "DecisionService",
        "WhyNot",
        decisions_pb2.WhyNotRequest,
        "Why an offer would not be shown to a customer (a dry run of the funnel), or its rank",
        Permission.STATS,
        path_fields={"id": "customer_id", "offerId": "offer_id"},
        query=(
            Param("decisionTime", "decision_time", "the instant to decide at (RFC 3339); absent: now"),
            Param("segments", "segments", "the customer's segments, a comma list"),
            Param("attributes", "attributes", "the customer's attributes, a JSON object as text"),
            Param("channel", "channel", "the channel (channel-scoped policies use it)"),
            Param("limit", "limit", "the Decide limit to rank against: 1 to 50; absent or 0 means 5"),
        ),
        response="*",
        tag="Decisions",
    ),
    Route(
        "recordOutcomes",
        "POST",
        f"{API}/outcomes",
        "DecisionService",
        "RecordOutcomes",
        decisions_pb2.RecordOutcomesRequest,
        'Record outcomes in bulk ({"outcomes": [...]}): all or none',
        Permission.DECIDE,
        body="*",
        response="*",
        fits=_is_bulk,
        tag="Decisions",
    ),
    Route(
        "recordOutcome",
        "POST",
        f"{API}/outcomes",
        "DecisionService",
        "RecordOutcome",
        decisions_pb2.RecordOutcomeRequest,
        "Record one outcome; a repeated idempotency key answers the first result as a duplicate",
        Permission.DECIDE,
        headers=(Param("Idempotency-Key", "outcome.idempotency_key", "the outcome's idempotency key"),),
        body="outcome",
        response="result",
        tag="Decisions",
    ),
)
