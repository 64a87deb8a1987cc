"""Resource identifiers (domain layer)."""

from __future__ import annotations

import os
import random
import secrets

OFFER_PREFIX = "act_"


def new_id(prefix: str) -> str:
    """A fresh random id: `prefix` and 16 hex digits (64 random bits)."""
    return prefix + secrets.token_hex(8)


# Outcome ids need to be unique, not secret, and are made a thousand at a
# time: a generator seeded once from the OS avoids a system call per id.
_fast = random.Random(os.urandom(32))


def new_fast_id(prefix: str) -> str:
    """Like new_id, from a pseudo-random generator (for high-volume records whose ids are not secrets)."""
    return f"{prefix}{_fast.getrandbits(64):016x}"
