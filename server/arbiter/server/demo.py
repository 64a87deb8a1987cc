"""The demo catalogue that `make run` serves, loaded through the use cases (composition helper, like app.py)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from arbiter.client import category_from_dict, offer_from_dict

from .app.core import Core
from .app.keys import KeyRequest
from .domain.access import Principal, Role
from .domain.catalog import SubCategory
from .domain.errors import AlreadyExists, Decoded, NotFound, raise_if_invalid
from .domain.offers import Offer, OfferStatus
from .transport.grpc.catalog_messages import category_from_proto
from .transport.grpc.offer_messages import offer_from_proto

DEMO_TENANT = "default"


DEMO_KEY_NAME = "demo (make run)"


@dataclass(frozen=True)
class DemoKey:
    """The demo admin key's secret, where it is kept, and whether it was made by this start."""

    secret: str
    file: Path
    new: bool


def _read_private(path: Path) -> str | None:
    """The secret kept in `path`, unless the file is missing or readable by others (then it may have leaked)."""
    try:
        if path.stat().st_mode & 0o077:
            return None
        return path.read_text().strip() or None
    except (FileNotFoundError, UnicodeDecodeError):
        return None


def _write_private(path: Path, secret: str) -> None:
    """Write the secret readable by the owner only, replacing the file atomically."""
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, f"{secret}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)


async def demo_key(core: Core, key_file: Path, tenant: str = DEMO_TENANT) -> DemoKey:
    """The demo admin key kept in `key_file` if it still works; else a new one, kept there, and every
    other working key labelled as the demo key in that tenant revoked (docs/rules.md)."""
    kept = _read_private(key_file)
    if kept is not None and core.keys.usable_key_of(kept, tenant, Role.ADMIN) is not None:
        return DemoKey(kept, key_file, new=False)
    admin = Principal(tenant, Role.ADMIN)
    key, secret = await core.keys.create(admin, Decoded(KeyRequest(DEMO_KEY_NAME, Role.ADMIN)))
    _write_private(key_file, secret)
    for old in core.keys.usable_named(tenant, DEMO_KEY_NAME):
        if old.id != key.id:
            await core.keys.revoke(admin, old.id)
    return DemoKey(secret, key_file, new=True)


async def load_demo(core: Core, *, tenant: str = DEMO_TENANT) -> int:
    """Create what is not there yet (categories and sub-categories by id, offers by name); returns
    how many offers were created."""
    admin = Principal(tenant, Role.ADMIN)
    data = json.loads(resources.files("arbiter.server").joinpath("demo_catalogue.json").read_text())
    for body in data["categories"]:
        subs = body.pop("subCategories")
        category_id = body.pop("id")
        try:
            core.catalog.get_category(admin, category_id)
        except NotFound:
            await core.catalog.create_category(admin, category_from_proto(category_from_dict(body)), category_id)
        for sub in subs:
            with contextlib.suppress(AlreadyExists):
                await core.catalog.create_sub_category(
                    admin, SubCategory(category_id=category_id, name=sub["name"]), sub["id"]
                )
    created = 0
    for body in data["offers"]:
        decoded = offer_from_proto(offer_from_dict(body))
        raise_if_invalid(decoded.violations)
        draft = decoded.value
        # A new offer starts as draft or active; later states are reached by lifecycle moves.
        target = draft.status
        starts_later = target in (OfferStatus.PAUSED, OfferStatus.ARCHIVED)
        first = replace(draft, status=OfferStatus.ACTIVE) if starts_later else draft
        try:
            offer = await core.offers.create(admin, Decoded(first))
        except AlreadyExists:
            continue
        if starts_later:
            await core.offers.update(admin, Decoded(Offer(id=offer.id, status=target)), ["status"])
        created += 1
    return created
