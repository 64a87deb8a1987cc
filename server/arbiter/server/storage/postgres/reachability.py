"""The probe that tells whether Postgres answers (storage/probe.py) (storage layer)."""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from ..probe import ANSWER_SECONDS, Probe


def postgres_probe(url: str) -> Probe:
    """`SELECT 1` on a connection of the probe's own, made again after each failure."""
    held: list[psycopg.AsyncConnection[Any]] = []

    async def ask() -> None:
        if not held:
            held.append(
                await psycopg.AsyncConnection.connect(
                    url, autocommit=True, connect_timeout=int(ANSWER_SECONDS), application_name="arbiter-probe"
                )
            )
        await held[0].execute("SELECT 1")

    async def forget() -> None:
        while held:
            conn = held.pop()
            with contextlib.suppress(Exception):
                conn.pgconn.finish()  # no goodbye round trip: the server may not be there to hear it
            with contextlib.suppress(Exception):
                await conn.close()

    return Probe("the database (Postgres)", ask, forget)
