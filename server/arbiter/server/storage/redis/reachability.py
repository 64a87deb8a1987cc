"""The probe that tells whether Redis answers (storage/probe.py) (storage layer)."""

from __future__ import annotations

import redis.asyncio

from ..probe import Probe


def redis_probe(client: redis.asyncio.Redis) -> Probe:
    """`PING` through the client every call uses (its pool replaces lost connections by itself)."""

    async def ask() -> None:
        await client.ping()

    async def forget() -> None:
        await client.connection_pool.disconnect()

    return Probe("the shared counters (Redis)", ask, forget)
