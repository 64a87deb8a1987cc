"""API keys: persistence, the in-memory copy authentication reads, and offline creation (storage layer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ..domain.access import ApiKey, Role, new_secret, secret_sha256
from ..domain.errors import InvalidArgument, NotFound
from ..domain.timekeeping import from_epoch_micros, to_epoch_micros
from .database import Durability, open_reader, open_writer
from .paging import list_page
from .reader import Reader
from .writer import Writer

_COLUMNS = "id, created_us, tenant, name, role, secret_sha256, expires_us, revoked_us"
MAX_NAME_LENGTH = 255


def _from_row(row: tuple[Any, ...]) -> ApiKey:
    key_id, created_us, tenant, name, role, digest, expires_us, revoked_us = row
    return ApiKey(
        id=key_id,
        tenant=tenant,
        name=name,
        role=Role(role),
        secret_sha256=digest,
        created_at=from_epoch_micros(created_us),
        expires_at=from_epoch_micros(expires_us) if expires_us is not None else None,
        revoked_at=from_epoch_micros(revoked_us) if revoked_us is not None else None,
    )


def _not_found(key_id: str) -> NotFound:
    return NotFound(f"API key {key_id!r} not found", reason="KEY_NOT_FOUND", metadata={"id": key_id})


def validate_new_key(name: str, expires_at: datetime | None, now: datetime) -> None:
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument.single("name", f"must be at most {MAX_NAME_LENGTH} characters")
    if expires_at is not None and expires_at <= now:
        raise InvalidArgument.single("expiresAt", f"must be in the future, got {expires_at.isoformat()}")


def _insert(
    db: Database, tenant: str, name: str, role: Role, expires_at: datetime | None, now: datetime
) -> tuple[ApiKey, str]:
    key_id, secret = new_secret()
    key = ApiKey(key_id, tenant, name, role, secret_sha256(secret), now, expires_at)
    db.execute(
        f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            key.id,
            to_epoch_micros(now),
            tenant,
            name,
            role.value,
            key.secret_sha256,
            to_epoch_micros(expires_at) if expires_at else None,
            None,
        ],
    )
    return key, secret


class ApiKeyRepository:
    """Every tenant's keys, by id; notices changes made by other processes before each lookup."""

    def __init__(self, path: Path, writer: Writer, reader: Reader, clock: Callable[[], datetime]) -> None:
        self._writer = writer
        self._reader = reader
        self._clock = clock
        self._keys: dict[str, ApiKey] = {}
        # A connection of its own, only ever used on the event loop, to watch for changes.
        self._watch = open_reader(path)
        self._data_version: int | None = None
        self._key_version: int | None = None

    def close(self) -> None:
        self._watch.close()

    def lookup(self, key_id: str) -> ApiKey | None:
        """The key with this id, as the database has it now."""
        self._refresh()
        return self._keys.get(key_id)

    def _refresh(self) -> None:
        # PRAGMA data_version is an in-memory counter that moves when another
        # connection commits; only then is the keys' own version read, and only
        # when that moved are the keys reloaded.
        data_version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        if data_version == self._data_version:
            return
        self._data_version = data_version
        key_version = self._watch.execute("SELECT version FROM api_key_changes").fetchone()[0]
        if key_version != self._key_version:
            self._key_version = key_version
            self._keys = {
                key.id: key for key in map(_from_row, self._watch.execute(f"SELECT {_COLUMNS} FROM api_keys"))
            }

    def get(self, tenant: str, key_id: str) -> ApiKey:
        key = self.lookup(key_id)
        if key is None or key.tenant != tenant:
            raise _not_found(key_id)
        return key

    async def list_page(self, tenant: str, requested_page_size: int, page_token: str) -> tuple[list[ApiKey], str]:
        rows, token = await list_page(
            self._reader,
            table="api_keys",
            columns=_COLUMNS,
            tenant=tenant,
            conditions=[],
            params=[],
            requested_page_size=requested_page_size,
            page_token=page_token,
            filters=[],
        )
        return [_from_row(row) for row in rows], token

    async def create(self, tenant: str, name: str, role: Role, expires_at: datetime | None) -> tuple[ApiKey, str]:
        validate_new_key(name, expires_at, self._clock())

        def work(db: Database) -> tuple[ApiKey, str]:
            return _insert(db, tenant, name, role, expires_at, self._clock())

        return await self._writer.run(work, lambda created: self._put(created[0]))

    async def revoke(self, tenant: str, key_id: str) -> ApiKey:
        def work(db: Database) -> ApiKey:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND tenant = ?", [key_id, tenant]
            ).fetchone()
            if row is None:
                raise _not_found(key_id)
            key = _from_row(row)
            if key.revoked_at is not None:
                return key
            now = self._clock()
            db.execute("UPDATE api_keys SET revoked_us = ? WHERE id = ?", [to_epoch_micros(now), key_id])
            return replace(key, revoked_at=now)

        return await self._writer.run(work, self._put)

    def _put(self, key: ApiKey) -> None:
        self._keys[key.id] = key


def create_key_offline(
    path: Path, tenant: str, role: Role, name: str, expires_at: datetime | None, now: datetime
) -> tuple[ApiKey, str]:
    """Create a key straight in the database, with or without a server running on it (the keys CLI)."""
    validate_new_key(name, expires_at, now)
    db = open_writer(path, Durability.FULL)
    try:
        with db.atomic():
            return _insert(db, tenant, name, role, expires_at, now)
    finally:
        db.conn.close()


def revoke_key_offline(path: Path, key_id: str, now: datetime) -> bool:
    """Revoke a key straight in the database; False if there is no such key."""
    db = open_writer(path, Durability.FULL)
    try:
        with db.atomic():
            cursor = db.execute(
                "UPDATE api_keys SET revoked_us = COALESCE(revoked_us, ?) WHERE id = ?", [to_epoch_micros(now), key_id]
            )
            return cursor.rowcount > 0
    finally:
        db.conn.close()


def list_keys_offline(path: Path) -> list[ApiKey]:
    conn: sqlite3.Connection = open_writer(path, Durability.PROCESS).conn
    try:
        return [_from_row(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY tenant, created_us")]
    finally:
        conn.close()
