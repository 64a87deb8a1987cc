"""Partial updates: which fields an update names, and how they are copied (domain layer).

One rule for every resource (offers, categories, sub-categories, contact
policies, tenant settings), as docs/rules.md states it:

- with an update mask, exactly the named paths change; a path named but unset
  in the request clears that field; `*` names every top-level field; unknown
  and output-only paths are INVALID_ARGUMENT (paths may be snake_case or
  camelCase);
- without a mask, the fields that are set change: a field is "set" when it
  differs from its dataclass default, so an update without a mask can never
  clear one (0 is a value where the default is None, e.g. a cap of zero);
- fields listed as `required` must hold a value when a mask names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any

from .errors import FieldViolation, ViolationCollector, raise_if_invalid

OUTPUT_ONLY = ("id", "created_at", "updated_at")
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def snake(path: str) -> str:
    """A camelCase field path in snake_case ("budget.maxImpressions" -> "budget.max_impressions")."""
    return ".".join(_CAMEL_BOUNDARY.sub("_", segment).lower() for segment in path.split("."))


def camel(path: str) -> str:
    """A snake_case field path in the camelCase form violations use (keys of keyed maps kept as they are)."""
    parts = path.split(".")
    out = []
    for i, part in enumerate(parts):
        if i > 0 and parts[0] == "custom_fields":
            out.append(".".join(parts[i:]))
            break
        head, *rest = part.split("_")
        out.append(head + "".join(word.capitalize() for word in rest))
    return ".".join(out)


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise TypeError(f"field {f.name} has no default")


def _is_set(value: Any, default: Any) -> bool:
    """Whether a value differs from its field's default, compared by type too (0 == False in Python)."""
    return type(value) is not type(default) or value != default


@dataclass(frozen=True)
class UpdateRule:
    """How updates of one resource name and copy its fields.

    `resource` is the dataclass of the resource (and of the patches the
    front doors decode); `nested` maps a path to the dataclass whose fields are
    its sub-paths ("budget" -> Budget); `keyed` names dict fields whose keys
    are paths of their own ("custom_fields.fee").
    """

    resource: type
    nested: Mapping[str, type] = field(default_factory=dict)
    keyed: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    output_only: tuple[str, ...] = OUTPUT_ONLY
    exclude: tuple[str, ...] = ()  # fields no update may name (neither output only nor mutable)
    star: bool = True  # whether "*" names every top-level field (else it is an unknown path)

    @property
    def top_level(self) -> tuple[str, ...]:
        hidden = {*self.output_only, *self.exclude}
        return tuple(f.name for f in fields(self.resource) if f.name not in hidden)

    @property
    def mutable(self) -> frozenset[str]:
        paths = set(self.top_level)
        for prefix, cls in self.nested.items():
            paths.update(f"{prefix}.{f.name}" for f in fields(cls))
        return frozenset(paths)

    def paths(self, patch: Any, mask: Sequence[str] | None) -> list[str]:
        """The snake_case paths an update changes: the mask's, or (no mask) those set in `patch`."""
        return self.parse(mask) if mask else self.present(patch)

    def check_required(self, patch: Any, paths: Sequence[str], decoded: Iterable[FieldViolation] = ()) -> None:
        """Raise InvalidArgument for every required field the paths name but `patch` leaves unset.

        `decoded` are the problems met decoding the patch: reported with these, and in place of
        "must be set" for a field that was sent but did not decode (errors.merge_violations).
        """
        unset = [p for p in self.required if p in paths and getattr(patch, p) is None]
        if unset:
            must = [FieldViolation(camel(p), "must be set when the update mask names it") for p in unset]
            raise_if_invalid(decoded, must)

    def parse(self, mask: Sequence[str]) -> list[str]:
        """Check and canonicalise mask paths; every bad one is reported."""
        v = ViolationCollector()
        result: list[str] = []
        mutable = self.mutable
        for raw in mask:
            if raw == "*" and self.star:
                result.extend(self.top_level)
                continue
            head, dot, key = raw.partition(".")
            if dot and snake(head) in self.keyed:
                if not key:
                    v.add("updateMask", f"path {raw!r} names no key")
                result.append(f"{snake(head)}.{key}")
                continue
            path = snake(raw)
            if path in self.output_only:
                v.add("updateMask", f"{raw!r} is output only and cannot be updated")
            elif path not in mutable:
                v.add("updateMask", f"unknown field path {raw!r}")
            else:
                result.append(path)
        v.raise_if_any()
        return list(dict.fromkeys(result))

    def present(self, patch: Any) -> list[str]:
        """The leaf paths set in `patch` (what an update without a mask changes)."""
        paths: list[str] = []

        def walk(obj: Any, prefix: str) -> None:
            for f in fields(obj):
                path = f"{prefix}{f.name}"
                if not prefix and (f.name in self.output_only or f.name in self.exclude):
                    continue
                value = getattr(obj, f.name)
                if path in self.keyed:
                    paths.extend(f"{path}.{key}" for key in value)
                elif path in self.nested:
                    if value is not None:
                        walk(value, path + ".")
                elif _is_set(value, _default(f)):
                    paths.append(path)

        walk(patch, "")
        return paths

    def apply(self, current: Any, patch: Any, paths: Sequence[str]) -> Any:
        """`current` with every path copied from `patch` (unset there means cleared)."""
        result = current
        for path in paths:
            head, _, key = path.partition(".")
            if head in self.keyed and key:
                values = dict(getattr(result, head))
                given = getattr(patch, head)
                if key in given:
                    values[key] = given[key]
                else:
                    values.pop(key, None)
                result = replace(result, **{head: values})
            else:
                parts = path.split(".")
                result = self._set(result, parts, self._get(patch, parts))
        return result

    def _get(self, obj: Any, parts: list[str]) -> Any:
        for part in parts:
            if obj is None:  # an unset config: the leaf takes its default
                cls = self.nested[".".join(parts[:-1])]
                return _default(next(f for f in fields(cls) if f.name == parts[-1]))
            obj = getattr(obj, part)
        return obj

    def _set(self, obj: Any, parts: list[str], value: Any, prefix: str = "") -> Any:
        name = parts[0]
        if len(parts) == 1:
            return replace(obj, **{name: value})
        child_path = f"{prefix}.{name}" if prefix else name
        child = getattr(obj, name)
        if child is None:
            child = self.nested[child_path]()
        return replace(obj, **{name: self._set(child, parts[1:], value, child_path)})
