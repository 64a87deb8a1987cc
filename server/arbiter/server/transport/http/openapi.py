"""The OpenAPI 3.1 document of the REST API, made from the route table and the message descriptors (transport layer).

The router serves the same table, so the document cannot drift from what
answers; schemas follow json_mapping's rules (camelCase keys, enum words,
numbers as numbers, RFC 3339 instants).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from ...domain.access import ROLE_PERMISSIONS
from .gateway import OUTPUT_ONLY_KEYS, camel_path
from .json_mapping import LIST_VALUE, STRUCT, TIMESTAMP, VALUE, FieldType, MessageType, enum_words
from .routes import Route

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.CPPTYPE_STRING: {"type": "string"},
    FieldDescriptor.CPPTYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.CPPTYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.CPPTYPE_FLOAT: {"type": "number"},
    FieldDescriptor.CPPTYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.CPPTYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.CPPTYPE_UINT32: {"type": "integer", "minimum": 0},
    FieldDescriptor.CPPTYPE_UINT64: {"type": "integer", "minimum": 0},
}
API_VERSION = "v1"
_STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content"}


def _schema_name(descriptor: MessageType) -> str:
    return descriptor.full_name.removeprefix("arbiter.v1.").replace(".", "")


class _Schemas:
    """Component schemas of every message reached from the routes, each written once."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: MessageType) -> dict[str, Any]:
        name = _schema_name(descriptor)
        if name not in self.components:
            self.components[name] = {}  # reserve first: messages may refer to themselves
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _message(self, descriptor: MessageType) -> dict[str, Any]:
        properties = {field.json_name: self._field(field) for field in descriptor.fields}
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def _field(self, field: FieldType) -> dict[str, Any]:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            return {"type": "object", "additionalProperties": self._single(message_type.fields_by_name["value"])}
        if field.is_repeated:
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: FieldType) -> dict[str, Any]:
        message_type = field.message_type
        if message_type is not None:
            name = message_type.full_name
            if name == TIMESTAMP:
                return {"type": "string", "format": "date-time"}
            if name == STRUCT:
                return {"type": "object"}
            if name == LIST_VALUE:
                return {"type": "array"}
            if name == VALUE:
                return {}
            return self.ref(message_type)
        if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            return {"type": "string", "enum": enum_words(field.enum_type)}
        return dict(_SCALARS[field.cpp_type])


def _field_schema(schemas: _Schemas, descriptor: MessageType, dotted: str) -> dict[str, Any]:
    *parents, last = dotted.split(".")
    for name in parents:
        descriptor = descriptor.fields_by_name[name].message_type
    field = descriptor.fields_by_name[last]
    if field.is_repeated:
        return {"type": "array", "items": schemas._single(field)}
    return schemas._single(field)


def _body_descriptor(route: Route) -> MessageType:
    descriptor: MessageType = route.request.DESCRIPTOR
    if route.body not in (None, "*"):
        descriptor = descriptor.fields_by_name[route.body].message_type
    return descriptor


def _response_schema(schemas: _Schemas, route: Route) -> dict[str, Any] | None:
    if route.response is None:
        return None
    response = route.request.DESCRIPTOR.file.services_by_name[route.service].methods_by_name[route.rpc].output_type
    if route.response == "*":
        return schemas.ref(response)
    field = response.fields_by_name[route.response]
    item = schemas._single(field)
    if not route.listed:
        return item
    return {
        "type": "object",
        "properties": {"data": {"type": "array", "items": item}, "pagination": {"$ref": "#/components/schemas/Page"}},
        "required": ["data", "pagination"],
    }


def _operation(schemas: _Schemas, routes: list[Route]) -> dict[str, Any]:
    route = routes[0]
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in _path_names(route.path)
    ]
    request_descriptor = route.request.DESCRIPTOR
    for param in route.query:
        param_schema = _field_schema(schemas, request_descriptor, param.field)
        entry: dict[str, Any] = {"name": param.name, "in": "query", "description": param.description}
        if param_schema.get("type") == "array":
            entry.update(schema=param_schema, style="form", explode=True)
        elif param_schema.get("type") == "object":  # a Struct, given as a JSON object's text
            entry["content"] = {"application/json": {"schema": param_schema}}
        else:
            entry["schema"] = param_schema
        parameters.append(entry)
    for route_option in routes:
        for header in route_option.headers:
            parameters.append(
                {"name": header.name, "in": "header", "description": header.description, "schema": {"type": "string"}}
            )
    operation: dict[str, Any] = {
        "operationId": route.name if len(routes) == 1 else "".join(r.name for r in routes),
        "summary": " | ".join(r.summary for r in routes),
        "tags": [route.tag],
        "description": (
            "Serves the gRPC method "
            + ", ".join(f"arbiter.v1.{r.service}/{r.rpc}" for r in routes)
            + ". Roles allowed: "
            + ", ".join(role.value for role, granted in ROLE_PERMISSIONS.items() if route.permission in granted)
            + "."
        ),
        "parameters": parameters,
    }
    bodies = [_body_schema(schemas, r) for r in routes if r.body is not None]
    if bodies:
        body = bodies[0] if len(bodies) == 1 else {"oneOf": bodies}
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    responses: dict[str, Any] = {}
    for r in routes:
        schema = _response_schema(schemas, r)
        entry = {"description": _STATUS_TEXT.get(r.status, "OK")}
        if schema is not None:
            previous = responses.get(str(r.status), {}).get("content", {}).get("application/json", {}).get("schema")
            combined = {"oneOf": [previous, schema]} if previous else schema
            entry["content"] = {"application/json": {"schema": combined}}
        if r.location:
            entry["headers"] = {"Location": {"description": "the new resource", "schema": {"type": "string"}}}
        responses[str(r.status)] = entry
    responses["default"] = {
        "description": "An error (AIP-193)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    operation["responses"] = responses
    return operation


def _body_schema(schemas: _Schemas, route: Route) -> dict[str, Any]:
    schema = schemas.ref(_body_descriptor(route))
    if route.merge:
        return {"description": "only the keys present change; null clears a field", **schema}
    return schema


def _path_names(path: str) -> Iterable[str]:
    for part in path.split("/"):
        if part.startswith("{") and part.endswith("}"):
            yield part[1:-1]


def openapi_document(routes: Iterable[Route]) -> dict[str, Any]:
    """The whole document; every (method, path) of the table is one operation."""
    schemas = _Schemas()
    grouped: dict[tuple[str, str], list[Route]] = {}
    for route in routes:
        grouped.setdefault((route.path, route.method), []).append(route)
    paths: dict[str, dict[str, Any]] = {}
    for (path, method), group in grouped.items():
        paths.setdefault(path, {})[method.lower()] = _operation(schemas, group)
    components = schemas.components
    components["Page"] = {
        "type": "object",
        "properties": {
            "nextCursor": {"type": "string", "description": "absent on the last page"},
            "hasMore": {"type": "boolean"},
        },
        "required": ["hasMore"],
    }
    components["Error"] = {
        "type": "object",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "code": {"type": "integer", "description": "the HTTP status"},
                    "status": {"type": "string", "description": "the gRPC status name"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
                "required": ["code", "status", "message", "details"],
            }
        },
        "required": ["error"],
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Arbiter REST API",
            "version": API_VERSION,
            "description": (
                "The seed's REST API over the same core as gRPC. JSON keys are camelCase, enum values "
                "lowercase words, numbers JSON numbers, instants RFC 3339 in UTC. Output-only keys ("
                + ", ".join(OUTPUT_ONLY_KEYS)
                + ") are ignored in request bodies; "
                + camel_path("update_mask")
                + " is derived from the keys a PUT or PATCH body holds."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an Arbiter API key (arb_…)"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
