"""Resource identifiers (domain layer)."""

from __future__ import annotations

import secrets

OFFER_PREFIX = "act_"


def new_id(prefix: str) -> str:
    """A fresh random id: `prefix` and 16 hex digits (64 random bits)."""
    return prefix + secrets.token_hex(8)
