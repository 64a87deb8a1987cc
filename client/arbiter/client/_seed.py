"""The seed's JSON shapes (camelCase, lowercase enum words) <-> protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from arbiter.v1 import catalog_pb2, contact_policies_pb2, offers_pb2

# Enum fields whose JSON form is a lowercase word: field name -> proto prefix.
_OFFER_ENUMS = {"priority": "PRIORITY_", "status": "OFFER_STATUS_"}
_CATEGORY_ENUMS = {"status": "CATEGORY_STATUS_"}
_FIELD_ENUMS = {"type": "FIELD_TYPE_", "outputType": "OUTPUT_TYPE_"}
_POLICY_ENUMS = {"status": "POLICY_STATUS_", "scope": "POLICY_SCOPE_"}


def _enum_to_wire(body: Mapping[str, Any], prefixes: dict[str, str]) -> dict[str, Any]:
    out = dict(body)
    for key, prefix in prefixes.items():
        value = out.get(key)
        if isinstance(value, str) and value and not value.startswith(prefix):
            out[key] = prefix + value.upper()
    return out


def _enum_to_seed(body: dict[str, Any], prefixes: dict[str, str]) -> dict[str, Any]:
    for key, prefix in prefixes.items():
        value = body.get(key)
        if isinstance(value, str) and value.startswith(prefix):
            body[key] = value[len(prefix) :].lower()
    return body


def offer_from_dict(body: Mapping[str, Any]) -> offers_pb2.Offer:
    """An Offer message from the seed's JSON body (`"priority": "high"` and all).

    Accepts camelCase or snake_case keys, lowercase or proto enum names, and
    RFC 3339 strings for dates. Unknown keys raise ValueError
    (google.protobuf.json_format.ParseError) naming the key.
    """
    return json_format.ParseDict(_enum_to_wire(body, _OFFER_ENUMS), offers_pb2.Offer())


def offer_to_dict(offer: offers_pb2.Offer) -> dict[str, Any]:
    """The seed's JSON shape of an Offer: camelCase keys, lowercase enums, numbers as numbers."""
    return _enum_to_seed(message_to_dict(offer), _OFFER_ENUMS)


def category_from_dict(body: Mapping[str, Any]) -> catalog_pb2.Category:
    """A Category message from JSON with lowercase enum words ("type": "number", "status": "active")."""
    wire = _enum_to_wire(body, _CATEGORY_ENUMS)
    wire["customFields"] = [_enum_to_wire(f, _FIELD_ENUMS) for f in body.get("customFields", [])]
    if not wire["customFields"]:
        del wire["customFields"]
    return json_format.ParseDict(wire, catalog_pb2.Category())


def category_to_dict(category: catalog_pb2.Category) -> dict[str, Any]:
    """A Category as JSON with lowercase enum words."""
    body = _enum_to_seed(message_to_dict(category), _CATEGORY_ENUMS)
    body["customFields"] = [_enum_to_seed(f, _FIELD_ENUMS) for f in body.get("customFields", [])]
    return body


def message_to_dict(message: Message) -> dict[str, Any]:
    """Any message as proto3 JSON, except that int64 values come back as numbers, not strings."""
    body = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _int64_strings_to_numbers(message, body)
    return body


def _int64_strings_to_numbers(message: Message, body: dict[str, Any]) -> None:
    # proto3 JSON writes 64-bit integers as strings; the seed's shapes use numbers.
    for field in message.DESCRIPTOR.fields:
        key = field.json_name
        if key not in body:
            continue
        if field.message_type is not None and field.message_type.full_name.startswith("google.protobuf."):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            continue  # maps: none of Arbiter's holds 64-bit integers (and their entries are no messages here)
        if field.message_type is not None:
            if field.is_repeated:
                for item_msg, item in zip(getattr(message, field.name), body[key], strict=False):
                    _int64_strings_to_numbers(item_msg, item)
            else:
                _int64_strings_to_numbers(getattr(message, field.name), body[key])
        elif field.cpp_type in (field.CPPTYPE_INT64, field.CPPTYPE_UINT64):
            value = body[key]
            body[key] = [int(x) for x in value] if isinstance(value, list) else int(value)


def policy_from_dict(body: Mapping[str, Any]) -> contact_policies_pb2.ContactPolicy:
    """A ContactPolicy from JSON with lowercase enum words ("scope": "category", "outcomeTypes": ["conversion"])."""
    wire = _enum_to_wire(body, _POLICY_ENUMS)
    suppression = wire.get("outcomeSuppression")
    if isinstance(suppression, Mapping) and "outcomeTypes" in suppression:
        wire["outcomeSuppression"] = {
            **suppression,
            "outcomeTypes": [
                t if not isinstance(t, str) or t.startswith("OUTCOME_TYPE_") else "OUTCOME_TYPE_" + t.upper()
                for t in suppression["outcomeTypes"]
            ],
        }
    return json_format.ParseDict(wire, contact_policies_pb2.ContactPolicy())


def policy_to_dict(policy: contact_policies_pb2.ContactPolicy) -> dict[str, Any]:
    """A ContactPolicy as JSON with lowercase enum words."""
    return _enum_to_seed(message_to_dict(policy), _POLICY_ENUMS)
