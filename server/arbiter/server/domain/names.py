"""The rule every resource's display name follows (domain layer)."""

from __future__ import annotations

import unicodedata

from .errors import ViolationCollector

MAX_NAME_LENGTH = 255
# Control characters (NUL, newline, DEL, C1 ...) have no place in a one-line name shown in
# lists, logs and the Studio; format characters (zero-width joiners ...) are allowed inside a
# name, since scripts and emoji need them, but cannot be all of it.
_INVISIBLE = ("Cc", "Cf")


def name_problem(value: str) -> str | None:
    """Why `value` is not an acceptable name (None when it is)."""
    if not value:
        return "is required"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
    for position, char in enumerate(value, start=1):
        if unicodedata.category(char) == "Cc":
            return f"must not contain control characters: U+{ord(char):04X} at position {position}"
    if all(char.isspace() or unicodedata.category(char) in _INVISIBLE for char in value):
        return "is required and must not be only whitespace or invisible characters"
    return None


def check_name(v: ViolationCollector, path: str, value: str) -> None:
    """Add the name's problem, if it has one, at `path`."""
    problem = name_problem(value)
    if problem is not None:
        v.add(path, problem)
