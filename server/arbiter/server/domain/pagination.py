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
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        cursor = PageCursor(int(data["c"]), str(data["i"]))
        matches = data["q"] == fingerprint
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidArgument.single("pageToken", "is not a page token this server issued") from None
    if not matches:
        raise InvalidArgument.single(
            "pageToken", "belongs to a different query: repeat the filters of the call that returned it"
        )
    return cursor
