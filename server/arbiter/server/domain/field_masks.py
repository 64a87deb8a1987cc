"""Update masks of flat resources (categories, sub-categories, policies) (domain layer)."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import ViolationCollector

OUTPUT_ONLY = ("id", "created_at", "updated_at")


def mask_paths(mask: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The snake_case fields a mask names ("*": all of `allowed`); unknown or output-only paths are violations."""
    paths: list[str] = []
    v = ViolationCollector()
    for raw in mask:
        path = "".join("_" + c.lower() if c.isupper() else c for c in raw)
        if raw == "*":
            paths.extend(allowed)
        elif path in OUTPUT_ONLY:
            v.add("updateMask", f"{raw!r} is output only and cannot be updated")
        elif path not in allowed:
            v.add("updateMask", f"unknown field path {raw!r}")
        else:
            paths.append(path)
    v.raise_if_any()
    return list(dict.fromkeys(paths))
