"""Contact policies to and from their stored JSON form (storage layer)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ...domain.policies import RULE_NAMES, ContactPolicy, PolicyScope, PolicyStatus, Rule
from ...domain.timekeeping import from_epoch_micros

_RULE_TYPES = {name: cls for cls, name in RULE_NAMES.items()}


def policy_to_json(policy: ContactPolicy) -> str:
    rule = policy.rule
    body: dict[str, Any] = {
        "name": policy.name,
        "description": policy.description,
        "status": policy.status.value if policy.status else None,
        "priority": policy.priority,
        "scope": policy.scope.value if policy.scope else None,
        "scope_id": policy.scope_id,
        "bypassable": policy.bypassable,
        "rule_type": policy.rule_name,
        "rule": dataclasses.asdict(rule) if rule is not None else None,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def policy_from_row(policy_id: str, created_us: int, updated_us: int, body_json: str) -> ContactPolicy:
    body = json.loads(body_json)
    rule: Rule | None = None
    if body["rule_type"]:
        cls = _RULE_TYPES[body["rule_type"]]
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in body["rule"].items()}
        rule = cls(**values)
    return ContactPolicy(
        id=policy_id,
        name=body["name"],
        description=body["description"],
        status=PolicyStatus(body["status"]),
        priority=body["priority"],
        scope=PolicyScope(body["scope"]),
        scope_id=body["scope_id"],
        bypassable=body["bypassable"],
        rule=rule,
        created_at=from_epoch_micros(created_us),
        updated_at=from_epoch_micros(updated_us),
    )
