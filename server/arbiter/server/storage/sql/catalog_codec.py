"""Categories and sub-categories to and from their stored JSON form (storage layer)."""

from __future__ import annotations

import json
from typing import Any

from ...domain.catalog import Category, CategoryStatus, FieldDefinition, FieldType, OutputType, SubCategory
from ...domain.timekeeping import from_epoch_micros


def category_to_json(category: Category) -> str:
    body: dict[str, Any] = {
        "name": category.name,
        "description": category.description,
        "status": category.status.value if category.status else None,
        "display_order": category.display_order,
        "custom_fields": [
            {
                "key": f.key,
                "label": f.label,
                "type": f.type.value if f.type else None,
                "required": f.required,
                "default": f.default,
                "options": list(f.options),
                "formula": f.formula,
                "output_type": f.output_type.value if f.output_type else None,
            }
            for f in category.custom_fields
        ],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def category_from_row(category_id: str, created_us: int, updated_us: int, body_json: str) -> Category:
    body = json.loads(body_json)
    return Category(
        id=category_id,
        name=body["name"],
        description=body["description"],
        status=CategoryStatus(body["status"]),
        display_order=body["display_order"],
        custom_fields=tuple(
            FieldDefinition(
                key=f["key"],
                label=f["label"],
                type=FieldType(f["type"]),
                required=f["required"],
                default=f["default"],
                options=tuple(f["options"]),
                formula=f["formula"],
                output_type=OutputType(f["output_type"]) if f["output_type"] else None,
            )
            for f in body["custom_fields"]
        ),
        created_at=from_epoch_micros(created_us),
        updated_at=from_epoch_micros(updated_us),
    )


def sub_category_to_json(sub: SubCategory) -> str:
    return json.dumps({"name": sub.name, "description": sub.description}, ensure_ascii=False)


def sub_category_from_row(
    sub_id: str, created_us: int, updated_us: int, category_id: str, body_json: str
) -> SubCategory:
    body = json.loads(body_json)
    return SubCategory(
        id=sub_id,
        category_id=category_id,
        name=body["name"],
        description=body["description"],
        created_at=from_epoch_micros(created_us),
        updated_at=from_epoch_micros(updated_us),
    )
