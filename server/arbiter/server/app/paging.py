"""Keyset pages for every List call: size, token, next token (application layer)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from ..domain.pagination import PageCursor, decode_page_token, encode_page_token, page_size, query_fingerprint
from ..domain.timekeeping import to_epoch_micros


class Listed(Protocol):
    """What a List call returns: resources with an id and a creation instant."""

    @property
    def id(self) -> str: ...
    @property
    def created_at(self) -> datetime | None: ...


T = TypeVar("T", bound=Listed)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """What a List call asks for: a page size (0: the default) and the token of the previous answer."""

    size: int = 0
    token: str = ""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_token: str  # "" on the last page


async def fetch_page(
    request: PageRequest,
    tenant: str,
    resource: str,
    filters: list[object],
    fetch: Callable[[PageCursor | None, int], Awaitable[list[T]]],
) -> Page[T]:
    """One page, ordered by (created_at, id). Tenant, resource and filters identify the query:
    a token only continues the query that issued it."""
    size = page_size(request.size)
    fingerprint = query_fingerprint(tenant, resource, *filters)
    cursor = decode_page_token(request.token, fingerprint)
    rows = await fetch(cursor, size + 1)
    next_token = ""
    if len(rows) > size:
        last = rows[size - 1]
        assert last.created_at is not None
        next_token = encode_page_token(fingerprint, PageCursor(to_epoch_micros(last.created_at), last.id))
    return Page(rows[:size], next_token)
