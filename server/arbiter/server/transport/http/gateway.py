"""A REST request -> the RPC's request message, and its response -> the REST answer (transport layer).

Pure translation, no I/O: what a route (routes.py) says about its path
parameters, query, headers and body is applied here, and every problem is
collected as a field violation named the way the REST caller wrote it
(`limit`, not `pageSize`; `offerId`, not `outcome.offerId`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from ...domain.errors import FieldViolation
from .json_mapping import (
    FREE_FORM,
    STRUCT,
    TIMESTAMP,
    FieldType,
    MessageType,
    bad_enum_word,
    enum_number,
    fields_by_key,
    message_from_json,
    message_to_json,
)
from .routes import Param, Route

# Keys of a resource that the server sets: ignored in request bodies, as the seed's examples expect.
OUTPUT_ONLY_KEYS = ("id", "createdAt", "updatedAt", "revokedAt", "tenantId")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


@dataclass(frozen=True)
class RestRequest:
    """What arrived, already split: path parameters, query pairs (in order, repeats kept), headers, body."""

    path_params: Mapping[str, str]
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: Any = None  # the parsed JSON body, None when there is none


def camel_path(path: str) -> str:
    """A dotted proto field path in its JSON (camelCase) spelling."""
    head, *rest = path.split("_")
    return head + "".join(word.capitalize() for word in rest)


def build_request(route: Route, rest: RestRequest) -> tuple[Message, list[FieldViolation]]:
    """The RPC's request message for a REST request, and every problem found building it."""
    request = route.request()
    violations: list[FieldViolation] = []
    if route.body is not None:
        violations.extend(_apply_body(route, request, rest.body))
    violations.extend(_apply_query(route, request, rest.query))
    for param in route.headers:
        value = rest.headers.get(param.name)
        if value is None:
            continue
        current = _get(request, param.field)
        if current and current != value:
            key = camel_path(param.field.rsplit(".", 1)[-1])
            violations.append(FieldViolation(key, f"differs from the {param.name} header ({value!r})"))
        else:
            _set_scalar(request, param.field, value)
    for name, field_path in route.path_fields.items():
        _set_scalar(request, field_path, rest.path_params[name])
    return request, violations


def _apply_body(route: Route, request: Message, body: Any) -> list[FieldViolation]:
    if body is None:
        return [FieldViolation("body", "a JSON object is required")]
    if not isinstance(body, Mapping):
        return [FieldViolation("body", "must be a JSON object")]
    target = request if route.body == "*" else getattr(request, route.body or "")
    ignore = () if route.body == "*" else OUTPUT_ONLY_KEYS
    if route.merge:
        paths, cleaned = update_paths(body, target.DESCRIPTOR, ignore)
        violations = message_from_json(cleaned, target, ignore=ignore)
        request.update_mask.paths.extend(paths)  # type: ignore[attr-defined]
        if not paths and not violations:
            violations.append(FieldViolation("body", "names no field to change"))
        return violations
    violations = message_from_json(body, target, ignore=ignore)
    if route.body != "*":
        target.SetInParent()
    return violations


def update_paths(
    body: Mapping[str, Any], descriptor: MessageType, ignore: Iterable[str] = (), prefix: str = ""
) -> tuple[list[str], dict[str, Any]]:
    """The update mask a merge body stands for, and the body to decode.

    Nested objects merge key by key (`{"budget": {"maxImpressions": 10}}` names
    only `budget.maxImpressions`), free-form objects too (`customFields.fee`),
    a key of a oneof replaces the oneof (a policy's `rule`), and JSON null
    names the field so that it is cleared. Nulls are dropped from the body to
    decode, so the named field is left unset there.
    """
    fields: dict[str, FieldType] = fields_by_key(descriptor)
    paths: list[str] = []
    cleaned: dict[str, Any] = {}
    skip = set(ignore) if not prefix else set()
    for key, value in body.items():
        if key in skip:
            continue
        field = fields.get(key)
        if field is None:  # reported by decoding, which sees the key
            cleaned[key] = value
            continue
        path = f"{prefix}{field.json_name}"
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_"):
            paths.append(f"{prefix}{oneof.name}")
        elif isinstance(value, Mapping) and _merges(field):
            if field.message_type.full_name == STRUCT:
                paths.extend(f"{path}.{k}" for k in value)
                cleaned[key] = {k: item for k, item in value.items() if item is not None}
            else:
                nested, cleaned[key] = update_paths(value, field.message_type, prefix=f"{path}.")
                paths.extend(nested)
            continue
        else:
            paths.append(path)
        if value is not None:
            cleaned[key] = value
    return list(dict.fromkeys(paths)), cleaned


def _merges(field: FieldType) -> bool:
    message_type = field.message_type
    if message_type is None or field.is_repeated or message_type.GetOptions().map_entry:
        return False
    return message_type.full_name == STRUCT or (
        message_type.full_name not in FREE_FORM and message_type.full_name != TIMESTAMP
    )


def _apply_query(route: Route, request: Message, query: Iterable[tuple[str, str]]) -> list[FieldViolation]:
    params = {p.name: p for p in route.query}
    violations: list[FieldViolation] = []
    for name, raw in query:
        param = params.get(name)
        if param is None:
            allowed = ", ".join(params) or "none"
            violations.append(FieldViolation(name, f"unknown query parameter {name!r} (this route takes: {allowed})"))
            continue
        if not raw:  # an empty value (`?status=`, as HTML forms send) means "not given"
            continue
        problem = _set_query_value(request, param, raw)
        if problem:
            violations.append(FieldViolation(name, problem))
    return violations


def _field_at(request: Message, dotted: str) -> tuple[Message, FieldType]:
    *parents, last = dotted.split(".")
    message = request
    for name in parents:
        message = getattr(message, name)
    return message, message.DESCRIPTOR.fields_by_name[last]


def _get(request: Message, dotted: str) -> Any:
    message, field = _field_at(request, dotted)
    return getattr(message, field.name)


def _set_scalar(request: Message, dotted: str, value: str) -> None:
    message, field = _field_at(request, dotted)
    setattr(message, field.name, value)


def _set_query_value(request: Message, param: Param, raw: str) -> str | None:
    """Set a query value on its field; a problem description when it does not fit.

    Scalars and enum words as written; repeated strings as a comma list (or the
    parameter repeated); a Timestamp as RFC 3339 text; a Struct as a JSON object's text.
    """
    message, field = _field_at(request, param.field)
    message_type = field.message_type
    if message_type is not None and not field.is_repeated:
        if message_type.full_name == TIMESTAMP:
            try:
                getattr(message, field.name).FromJsonString(raw)
            except ValueError:
                return f"must be an RFC 3339 timestamp such as 2026-03-15T00:00:00Z, got {raw!r}"
            return None
        if message_type.full_name == STRUCT:
            try:
                parsed = json.loads(raw, parse_constant=_no_constant)
            except ValueError:
                return "must be a JSON object (as text), which this is not"
            if not isinstance(parsed, dict):
                return "must be a JSON object (as text)"
            problems = message_from_json({field.json_name: parsed}, message)
            return problems[0].description if problems else None
    if field.is_repeated:
        getattr(message, field.name).extend(part for part in (s.strip() for s in raw.split(",")) if part)
        return None
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        number = enum_number(field.enum_type, raw)
        if number is None:
            return bad_enum_word(field.enum_type, raw)
        setattr(message, field.name, number)
    elif field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        if raw.lower() not in (*_TRUE, *_FALSE):
            return f"must be true or false, got {raw!r}"
        setattr(message, field.name, raw.lower() in _TRUE)
    elif field.cpp_type == FieldDescriptor.CPPTYPE_INT32:
        try:
            number = int(raw)
        except ValueError:
            return f"must be a whole number, got {raw!r}"
        if not -(2**31) <= number < 2**31:
            return f"is out of range: {raw}"
        setattr(message, field.name, number)
    else:
        setattr(message, field.name, raw)
    return None


def _no_constant(word: str) -> Any:
    raise ValueError(f"{word} is not JSON")


def rest_violations(route: Route, violations: Iterable[FieldViolation]) -> list[FieldViolation]:
    """Violations named as the REST caller wrote them: query parameters by their own names, and a
    body that fills one request field without that field's prefix (`offerId`, not `outcome.offerId`)."""
    renamed = {camel_path(p.field): p.name for p in route.query}
    prefix = f"{camel_path(route.body)}." if route.body not in (None, "*") else ""
    out: list[FieldViolation] = []
    for violation in violations:
        name = renamed.get(violation.field, violation.field)
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :]
        out.append(replace(violation, field=name) if name != violation.field else violation)
    return out


def response_body(route: Route, response: Message) -> Any:
    """The JSON answer of a route from the RPC's response (None for 204 routes)."""
    if route.response is None:
        return None
    if route.response == "*":
        return message_to_json(response)
    value = getattr(response, route.response)
    if not route.listed:
        return message_to_json(value)
    token = getattr(response, "next_page_token", "")
    pagination: dict[str, Any] = {"hasMore": bool(token)}
    if token:
        pagination["nextCursor"] = token
    return {"data": [message_to_json(item) for item in value], "pagination": pagination}


def location_of(route: Route, response: Message) -> str | None:
    """The Location of a created resource, from its JSON (`/api/v1/actions/act_…`)."""
    if route.location is None:
        return None
    resource = message_to_json(getattr(response, route.resource or route.response or ""))
    return route.location.format(**{k: v for k, v in resource.items() if isinstance(v, str)})
