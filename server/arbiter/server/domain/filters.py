"""Limits on the filters of List and Decide calls (domain layer)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .errors import ViolationCollector

MAX_FILTER_VALUES = 100


def check_filters(v: ViolationCollector, filters: Mapping[str, Collection[str]]) -> None:
    """At most MAX_FILTER_VALUES values per filter; `filters` maps request paths to their values."""
    for path, values in filters.items():
        if len(values) > MAX_FILTER_VALUES:
            v.add(path, f"must hold at most {MAX_FILTER_VALUES} entries, got {len(values)}")
