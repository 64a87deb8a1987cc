"""API keys in SQLite: the store authentication reads, and the keys CLI's offline access (storage layer)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ...domain.access import ApiKey, Role
from ...domain.pagination import PageCursor
from ...domain.timekeeping import from_epoch_micros, to_epoch_micros
from .database import Durability, open_reader, open_writer
from .paging import rows_after
from .reader import Reader
from .writer import Writer

_COLUMNS = "id, created_us, tenant, name, role, secret_sha256, expires_us, revoked_us"


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


def _insert(db: Database, key: ApiKey) -> None:
    db.execute(
        f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            key.id,
            to_epoch_micros(key.created_at),
            key.tenant,
            key.name,
            key.role.value,
            key.secret_sha256,
            to_epoch_micros(key.expires_at) if key.expires_at else None,
            None,
        ],
    )


class SqliteKeyStore:
    """Every tenant's keys, by id; notices changes made by other processes (the keys CLI) before each lookup."""

    def __init__(self, path: Path, writer: Writer, reader: Reader) -> None:
        self._writer = writer
        self._reader = reader
        self._keys: dict[str, ApiKey] = {}
        # A connection of its own, only ever used on the event loop, to watch for changes.
        self._watch = open_reader(path)
        self._data_version: int | None = None
        self._key_version: int | None = None

    def close(self) -> None:
        self._watch.close()

    def lookup(self, key_id: str) -> ApiKey | None:
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

    async def list_keys(self, tenant: str, after: PageCursor | None, limit: int) -> list[ApiKey]:
        rows = await rows_after(
            self._reader,
            table="api_keys",
            columns=_COLUMNS,
            tenant=tenant,
            conditions=[],
            params=[],
            after=after,
            limit=limit,
        )
        return [_from_row(row) for row in rows]

    async def insert(self, key: ApiKey) -> None:
        await self._writer.run(lambda db: _insert(db, key), lambda _: self._put(key))

    async def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        def work(db: Database) -> ApiKey | None:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND tenant = ?", [key_id, tenant]
            ).fetchone()
            if row is None:
                return None
            key = _from_row(row)
            if key.revoked_at is not None:
                return key
            db.execute("UPDATE api_keys SET revoked_us = ? WHERE id = ?", [to_epoch_micros(at), key_id])
            return replace(key, revoked_at=at)

        def apply(key: ApiKey | None) -> None:
            if key is not None:
                self._put(key)

        return await self._writer.run(work, apply)

    def all_keys(self) -> list[ApiKey]:
        self._refresh()
        return list(self._keys.values())

    def _put(self, key: ApiKey) -> None:
        self._keys[key.id] = key


def create_key_offline(path: Path, key: ApiKey) -> None:
    """Store a new key straight in the database, with or without a server running on it (the keys CLI)."""
    db = open_writer(path, Durability.FULL)
    try:
        with db.atomic():
            _insert(db, key)
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
