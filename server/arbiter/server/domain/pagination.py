"""Page sizes and opaque page tokens for List calls (domain layer)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from .errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1_000
# Tokens this server issues are far shorter; anything longer is not one of them.
MAX_TOKEN_LENGTH = 1_024
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class PageCursor:
    """The (created_at, id) of the last item of a page: the next page starts after it."""

    created_us: int
    id: str


def page_size(requested: int) -> int:
    """0 means the default, above the maximum is coerced down, negative is an error."""
    if requested < 0:
        raise InvalidArgument.single("pageSize", f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def query_fingerprint(tenant: str, *filters: object) -> str:
    """Identifies one tenant's query, so a token only continues the query that made it."""
    text = json.dumps([tenant, *filters], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_page_token(fingerprint: str, cursor: PageCursor) -> str:
    raw = json.dumps({"q": fingerprint, "c": cursor.created_us, "i": cursor.id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> PageCursor | None:
    """The cursor in `token` (None for an empty token); raises InvalidArgument for a bad or foreign one."""
    if not token:
        return None
    not_issued = InvalidArgument.single("pageToken", "is not a page token this server issued")
    if len(token) > MAX_TOKEN_LENGTH:
        raise not_issued
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        created_us, last_id, matches = data["c"], data["i"], data["q"] == fingerprint
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise not_issued from None
    # The fingerprint is no secret, so a token can be forged: its cursor must be
    # what this server writes (an int64 and an id), or SQLite cannot bind it.
    if type(created_us) is not int or not INT64_MIN <= created_us <= INT64_MAX:
        raise not_issued
    if not isinstance(last_id, str) or len(last_id) > MAX_TOKEN_LENGTH or not _is_utf8(last_id):
        raise not_issued
    if not matches:
        raise InvalidArgument.single(
            "pageToken", "belongs to a different query: repeat the filters of the call that returned it"
        )
    return PageCursor(created_us, last_id)


def _is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (JSON can escape one; SQLite cannot store it)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
