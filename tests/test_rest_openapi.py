"""The route table, the router and the OpenAPI document agree: one table makes both."""

from __future__ import annotations

import re
from typing import Any

from openapi_spec_validator import validate
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.server.transport.http.openapi import openapi_document
from arbiter.server.transport.http.routes import ROUTES

PARAMETER = re.compile(r"\{(\w+)\}")


def test_the_served_document_is_valid_openapi_3_1(server: ServerProcess, tenant: str) -> None:
    answer = RestClient(server.http_url, tenant=tenant).get("/api/v1/openapi.json")

    assert answer.status == 200
    document = answer.body
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises on any schema violation


def test_the_document_has_exactly_the_routes_of_the_table() -> None:
    document = openapi_document(ROUTES)

    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == {(r.method, r.path) for r in ROUTES}


def test_every_schema_reference_resolves() -> None:
    document = openapi_document(ROUTES)
    schemas = document["components"]["schemas"]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    missing = {r for r in refs(document) if r.removeprefix("#/components/schemas/") not in schemas}
    assert missing == set()


def test_enum_fields_are_documented_as_their_lowercase_words() -> None:
    offer = openapi_document(ROUTES)["components"]["schemas"]["Offer"]["properties"]

    assert offer["priority"] == {"type": "string", "enum": ["low", "medium", "high", "critical"]}
    assert offer["createdAt"] == {"type": "string", "format": "date-time"}


def test_every_route_in_the_table_answers(server: ServerProcess, tenant: str) -> None:
    """Each (method, path) reaches its handler: the answer is the route's own, never the router's 404/405."""
    rest = RestClient(server.http_url, tenant=tenant)
    rest.post("/api/v1/categories?categoryId=cat_routes", {"name": "Routes"})
    rest.post("/api/v1/categories/cat_routes/sub-categories?subCategoryId=sub_routes", {"name": "Sub"})
    ids = {
        "/api/v1/actions/{id}": rest.post("/api/v1/actions", {"name": "routes"}).body["id"],
        "/api/v1/categories/{id}": "cat_routes",
        "/api/v1/categories/{categoryId}/sub-categories/{id}": "sub_routes",
        "/api/v1/contact-policies/{id}": rest.post(
            "/api/v1/contact-policies", {"name": "p", "scope": "global", "cooldown": {"minHours": 1}}
        ).body["id"],
        "/api/v1/api-keys/{id}": rest.post("/api/v1/api-keys", {"name": "k", "role": "decide"}).body["apiKey"]["id"],
    }
    ids["/api/v1/actions/{id}/stats"] = ids["/api/v1/actions/{id}"]
    ids["/api/v1/customers/{id}/why-not/{offerId}"] = ids["/api/v1/actions/{id}"]  # both parameters get it
    ids["/api/v1/decisions/{id}"] = "dec_0000000000000000"
    answered = []
    # Deletes last, so the other routes still find their resources.
    for route in sorted(ROUTES, key=lambda r: r.method == "DELETE"):
        item = ids.get(route.path, "")
        path = PARAMETER.sub(lambda m: "cat_routes" if m.group(1) == "categoryId" else item, route.path)  # noqa: B023
        body: dict[str, Any] | None = {} if route.body is not None else None
        answer = rest.call(route.method, path, body)
        assert answer.status < 500, (route.name, answer.body)
        reason = answer.reason() if answer.body and "error" in answer.body else ""
        assert reason not in ("ROUTE_NOT_FOUND", "METHOD_NOT_ALLOWED"), (route.name, answer.body)
        answered.append(route.name)
    assert len(answered) == len(ROUTES)
