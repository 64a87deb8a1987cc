"""API keys in SQL: the store authentication reads, and the keys CLI's direct access (storage layer).

Authentication looks keys up in memory, never in the database. The keys CLI
writes keys straight into the database while a server runs, so each backend
tells its store when the keys changed in another process (SQLite: a version
bumped by triggers, read before each lookup; Postgres: a notification).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from ...domain.access import ApiKey, Role
from ...domain.pagination import PageCursor
from ...domain.timekeeping import from_epoch_micros, to_epoch_micros
from .connection import SqlConnection, WriteConnection
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


def insert_key(conn: SqlConnection, key: ApiKey) -> None:
    conn.execute(
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


def revoke_key(conn: SqlConnection, key_id: str, now: datetime) -> bool:
    """Revoke a key unless it is revoked already; False if there is no such key."""
    cursor = conn.execute(
        "UPDATE api_keys SET revoked_us = COALESCE(revoked_us, ?) WHERE id = ?", [to_epoch_micros(now), key_id]
    )
    return cursor.rowcount > 0


def create_key_directly(conn: WriteConnection, key: ApiKey) -> None:
    """Store a new key in its own transaction, with or without a server running on the database (the keys CLI)."""
    conn.begin()
    insert_key(conn, key)
    conn.commit()


def revoke_key_directly(conn: WriteConnection, key_id: str, now: datetime) -> bool:
    """Revoke a key in its own transaction; False if there is no such key."""
    conn.begin()
    found = revoke_key(conn, key_id, now)
    conn.commit()
    return found


def read_keys(conn: SqlConnection) -> list[ApiKey]:
    """Every tenant's keys, by tenant and age."""
    return [_from_row(row) for row in conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY tenant, created_us, id")]


def key_version(conn: SqlConnection) -> int:
    """How many times the keys changed (triggers count every change, whoever made it)."""
    return int(conn.execute("SELECT version FROM api_key_changes").fetchone()[0])


# Every key as the database had them at one version of the keys.
VersionedKeys = tuple[int, list[ApiKey]]


class SqlKeyStore:
    """Every tenant's keys, by id, in memory; `refresh` (called before each lookup) notices other processes' changes.

    Each set of keys read carries the keys' version, and so does each change
    this process makes: a set read before this process's own change is never
    put over it.
    """

    def __init__(
        self,
        writer: Writer,
        reader: Reader,
        refresh: Callable[[], VersionedKeys | None],
        confirm_unknown: Callable[[], VersionedKeys | None] | None = None,
    ) -> None:
        """`refresh` returns the keys when they changed in the database since it was last called, else None;
        `confirm_unknown`, when given, is asked the same before a key id is refused as unknown."""
        self._writer = writer
        self._reader = reader
        self._refresh = refresh
        self._confirm_unknown = confirm_unknown
        self._keys: dict[str, ApiKey] = {}
        self._version = -1
        self._take(refresh())

    def _take(self, changed: VersionedKeys | None) -> None:
        if changed is not None and changed[0] >= self._version:
            self._version, keys = changed
            self._keys = {key.id: key for key in keys}

    def _reload(self) -> None:
        self._take(self._refresh())

    def lookup(self, key_id: str) -> ApiKey | None:
        self._reload()
        key = self._keys.get(key_id)
        if key is None and self._confirm_unknown is not None:
            self._take(self._confirm_unknown())
            key = self._keys.get(key_id)
        return key

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
        def work(conn: SqlConnection) -> int:
            insert_key(conn, key)
            return key_version(conn)

        await self._writer.run(work, lambda version: self._put(key, version))

    async def revoke(self, tenant: str, key_id: str, at: datetime) -> ApiKey | None:
        def work(conn: SqlConnection) -> tuple[ApiKey | None, int]:
            query = f"SELECT {_COLUMNS} FROM api_keys WHERE id = ? AND tenant = ?"
            row = conn.execute(query, [key_id, tenant]).fetchone()
            if row is None:
                return None, -1
            key = _from_row(row)
            if key.revoked_at is None:
                conn.execute("UPDATE api_keys SET revoked_us = ? WHERE id = ?", [to_epoch_micros(at), key_id])
                key = replace(key, revoked_at=at)
            return key, key_version(conn)

        def apply(result: tuple[ApiKey | None, int]) -> None:
            key, version = result
            if key is not None:
                self._put(key, version)

        key, _ = await self._writer.run(work, apply)
        return key

    def all_keys(self) -> list[ApiKey]:
        self._reload()
        return list(self._keys.values())

    def _put(self, key: ApiKey, version: int) -> None:
        self._keys[key.id] = key
        self._version = max(self._version, version)
