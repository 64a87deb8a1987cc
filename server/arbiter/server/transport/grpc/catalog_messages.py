"""Category and sub-category messages <-> domain objects (transport layer)."""

from __future__ import annotations

from google.protobuf import json_format

from arbiter.v1 import catalog_pb2

from ...domain.catalog import Category, CategoryStatus, FieldDefinition, FieldType, OutputType, SubCategory
from ...domain.errors import Decoded, ViolationCollector
from .messages import enum_from_proto, set_timestamp, value_to_python

CATEGORY_STATUS_FROM_PROTO: dict[catalog_pb2.CategoryStatus, CategoryStatus] = {
    catalog_pb2.CATEGORY_STATUS_ACTIVE: CategoryStatus.ACTIVE,
    catalog_pb2.CATEGORY_STATUS_ARCHIVED: CategoryStatus.ARCHIVED,
}
CATEGORY_STATUS_TO_PROTO = {domain: wire for wire, domain in CATEGORY_STATUS_FROM_PROTO.items()}
FIELD_TYPE_FROM_PROTO: dict[catalog_pb2.FieldType, FieldType] = {
    catalog_pb2.FIELD_TYPE_TEXT: FieldType.TEXT,
    catalog_pb2.FIELD_TYPE_NUMBER: FieldType.NUMBER,
    catalog_pb2.FIELD_TYPE_BOOLEAN: FieldType.BOOLEAN,
    catalog_pb2.FIELD_TYPE_SELECT: FieldType.SELECT,
    catalog_pb2.FIELD_TYPE_DATE: FieldType.DATE,
    catalog_pb2.FIELD_TYPE_COMPUTED: FieldType.COMPUTED,
}
FIELD_TYPE_TO_PROTO = {domain: wire for wire, domain in FIELD_TYPE_FROM_PROTO.items()}
OUTPUT_TYPE_FROM_PROTO: dict[catalog_pb2.OutputType, OutputType] = {
    catalog_pb2.OUTPUT_TYPE_NUMBER: OutputType.NUMBER,
    catalog_pb2.OUTPUT_TYPE_TEXT: OutputType.TEXT,
    catalog_pb2.OUTPUT_TYPE_BOOLEAN: OutputType.BOOLEAN,
}
OUTPUT_TYPE_TO_PROTO = {domain: wire for wire, domain in OUTPUT_TYPE_FROM_PROTO.items()}


def category_status_from_proto(
    value: catalog_pb2.CategoryStatus, v: ViolationCollector, path: str
) -> CategoryStatus | None:
    return enum_from_proto(value, CATEGORY_STATUS_FROM_PROTO, v, path, "category status")


def category_from_proto(msg: catalog_pb2.Category) -> Decoded[Category]:
    v = ViolationCollector()
    fields = []
    for i, f in enumerate(msg.custom_fields):
        field_type = enum_from_proto(f.type, FIELD_TYPE_FROM_PROTO, v, f"customFields[{i}].type", "field type")
        output_type = enum_from_proto(
            f.output_type, OUTPUT_TYPE_FROM_PROTO, v, f"customFields[{i}].outputType", "output type"
        )
        default = (
            value_to_python(f.default_value, v, f"customFields[{i}].defaultValue")
            if f.HasField("default_value")
            else None
        )
        fields.append(
            FieldDefinition(
                key=f.key,
                label=f.label,
                type=field_type,
                required=f.required,
                default=default,
                options=tuple(f.options),
                formula=f.formula,
                output_type=output_type,
            )
        )
    category = Category(
        id=msg.id,
        name=msg.name,
        description=msg.description,
        status=category_status_from_proto(msg.status, v, "status"),
        display_order=msg.display_order,
        custom_fields=tuple(fields),
    )
    return Decoded(category, tuple(v.violations))


def category_to_proto(category: Category) -> catalog_pb2.Category:
    msg = catalog_pb2.Category(
        id=category.id,
        name=category.name,
        description=category.description,
        display_order=category.display_order,
    )
    if category.status is not None:
        msg.status = CATEGORY_STATUS_TO_PROTO[category.status]
    for f in category.custom_fields:
        out = msg.custom_fields.add(key=f.key, label=f.label, required=f.required, formula=f.formula)
        if f.type is not None:
            out.type = FIELD_TYPE_TO_PROTO[f.type]
        if f.output_type is not None:
            out.output_type = OUTPUT_TYPE_TO_PROTO[f.output_type]
        out.options.extend(f.options)
        if f.default is not None:
            json_format.ParseDict(f.default, out.default_value)
    if category.created_at is not None:
        set_timestamp(msg.created_at, category.created_at)
    if category.updated_at is not None:
        set_timestamp(msg.updated_at, category.updated_at)
    return msg


def sub_category_from_proto(msg: catalog_pb2.SubCategory) -> SubCategory:
    return SubCategory(id=msg.id, category_id=msg.category_id, name=msg.name, description=msg.description)


def sub_category_to_proto(sub: SubCategory) -> catalog_pb2.SubCategory:
    msg = catalog_pb2.SubCategory(id=sub.id, category_id=sub.category_id, name=sub.name, description=sub.description)
    if sub.created_at is not None:
        set_timestamp(msg.created_at, sub.created_at)
    if sub.updated_at is not None:
        set_timestamp(msg.updated_at, sub.updated_at)
    return msg
