"""Connections to Redis (storage layer).

One asyncio client over a `BlockingConnectionPool` serves the event loop: a
call waits at most `POOL_WAIT_SECONDS` for a free connection and
`ANSWER_SECONDS` for an answer, so a Redis that is away or hung fails the
calls that need it fast rather than holding them.
"""

from __future__ import annotations

import redis
import redis.asyncio

from ...domain.errors import Unavailable

ANSWER_SECONDS = 2.0
POOL_WAIT_SECONDS = 2.0
MAX_CONNECTIONS = 64
MIN_MAJOR_VERSION = 7


def redis_unreachable(cause: str) -> Unavailable:
    return Unavailable(
        f"the shared counters (Redis) cannot be reached ({cause}); retry shortly", reason="REDIS_UNAVAILABLE"
    )


def check_redis(url: str) -> str | None:
    """Why Redis at `url` cannot be used (one line), or None when it answers (a start-up check)."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
    except ValueError as exc:  # not a URL redis-py understands
        return str(exc)
    try:
        client.ping()
        info = {**client.info("server"), **client.info("memory")}
    except redis.RedisError as exc:
        return f"cannot connect ({first_line(exc)}); check the URL and that the server runs"
    finally:
        client.close()
    version = str(info.get("redis_version", "0"))
    if int(version.split(".", maxsplit=1)[0]) < MIN_MAJOR_VERSION:
        return f"Redis {version} is too old: {MIN_MAJOR_VERSION} or newer is needed"
    policy = str(info.get("maxmemory_policy", "noeviction"))
    if policy != "noeviction":
        # Counters evicted to make room would be rebuilt without the reservations in flight.
        return f"its maxmemory-policy is {policy}; Arbiter's counters must never be evicted: set it to noeviction"
    return None


def open_client(url: str) -> redis.asyncio.Redis:
    """The asyncio client every Redis call of this process goes through."""
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_timeout=ANSWER_SECONDS,
        socket_connect_timeout=ANSWER_SECONDS,
    )
    return redis.asyncio.Redis(connection_pool=pool)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
