"""The kinds of tenant resources, and the errors every kind reports the same way (domain layer)."""

from __future__ import annotations

import enum

from .errors import AlreadyExists, InvalidArgument, NotFound


class Kind(enum.Enum):
    """A resource kind: the noun its messages use and the prefix of its reason constants."""

    OFFER = ("offer", "an offer", "OFFER")
    CATEGORY = ("category", "a category", "CATEGORY")
    SUB_CATEGORY = ("sub-category", "a sub-category", "SUB_CATEGORY")
    POLICY = ("contact policy", "a contact policy", "POLICY")
    API_KEY = ("API key", "an API key", "KEY")

    def __init__(self, noun: str, article_noun: str, reason_prefix: str) -> None:
        self.noun = noun
        self.article_noun = article_noun
        self.reason_prefix = reason_prefix


def not_found(kind: Kind, resource_id: str) -> NotFound:
    """The answer for an id the tenant has no resource of this kind for (another tenant's included)."""
    return NotFound(
        f"{kind.noun} {resource_id!r} not found", reason=f"{kind.reason_prefix}_NOT_FOUND", metadata={"id": resource_id}
    )


def already_exists(kind: Kind, resource_id: str) -> AlreadyExists:
    """The answer for a caller-chosen id that is taken."""
    return AlreadyExists(
        f"{kind.noun} {resource_id!r} already exists",
        reason=f"{kind.reason_prefix}_EXISTS",
        metadata={"id": resource_id},
    )


def check_name_free(kind: Kind, name: str, owner: str | None, own_id: str | None, *, within: str = "") -> None:
    """Names are unique per tenant (sub-categories: per category), by exact match, archived included.

    `owner` is the id of the resource that has the name now (None: nobody);
    renaming a resource to its own name is no conflict.
    """
    if owner is None or owner == own_id:
        return
    where = f" in category {within}" if within else ""
    scope = "per category" if within else "per tenant"
    raise AlreadyExists(
        f"{kind.article_noun} named {name!r} already exists{where} ({owner}); names are unique {scope}",
        reason=f"{kind.reason_prefix}_NAME_TAKEN",
        metadata={"name": name, "id": owner},
    )


def id_required(kind: Kind) -> InvalidArgument:
    """The answer for an update that names no resource."""
    return InvalidArgument.single("id", f"is required: it names the {kind.noun} to update")
