"""Customer histories shared by every server on one database, cached in Redis (storage layer).

Postgres holds every outcome; Redis holds, per customer, a copy of their
recent events and a version that every committed outcome moves. A decision
asks Redis for the version (one round trip) and gets the events only when
they changed since this server last read them: the history it keeps in
memory, with everything derived from it, is reused while nothing changed.
A customer whose copy is not in Redis (never read, expired, or Redis lost
it) is read from Postgres and the copy put back, unless an outcome was
appended meanwhile (then the next decision reads it again).

Committed outcomes are appended on the event loop, in commit order, and
sent to Redis together once per turn of the loop (one round trip for a bulk
of outcomes). Until Redis has them, this server merges them into what it
reads, so its own outcomes count at once; other servers see them once they
are sent (a moment after the commit). An append that fails leaves the copy
stale: it is deleted as soon as Redis answers again, so the next read goes
to Postgres.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections import OrderedDict
from typing import Any

import redis
import redis.asyncio

from ...app.ports import NO_TELEMETRY, Telemetry
from ...domain.customer_history import MAX_EVENTS_PER_CUSTOMER, CustomerHistory, HistoryEvent
from ..inprocess.histories import DEFAULT_CAPACITY, HistoryLoader
from .connection import first_line, redis_unreachable

log = logging.getLogger(__name__)

Key = tuple[str, str]

# A copy leaves Redis this long after it was made or last appended to, read or not: a copy that missed
# an append (Redis away while this server stopped) is wrong for at most this long.
HISTORY_SECONDS = 3_600
# Past this many events appended to a copy, it is dropped and read again from Postgres (bounded size).
MAX_COPIED_EVENTS = 2 * MAX_EVENTS_PER_CUSTOMER
CLOSE_SECONDS = 5.0

# KEYS: the version hash, the events. ARGV: the copy and version this server holds ('' and -1: none).
# Returns {version, the copy's id ('' when there is no copy), the events when there is
# a copy and it is not the one this server holds}. A copy's id is new each time it is made, so a copy
# made again (say after Redis lost the last one) never passes for one this server read before.
_READ = """
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or 0)
local copy = redis.call('HGET', KEYS[1], 'c')
local events = redis.call('GET', KEYS[2])
if not (copy and events) then return {version, '', false} end
if copy == ARGV[1] and version == tonumber(ARGV[2]) then return {version, copy, false} end
return {version, copy, events}
"""

# KEYS as for _READ. ARGV: the version the events were read at, seconds to keep, the events, how many,
# a new copy id. Returns 0 (nothing stored) when an outcome was appended since that version.
_COPY = """
if tonumber(redis.call('HGET', KEYS[1], 'v') or 0) ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
redis.call('HSET', KEYS[1], 'n', ARGV[4], 'c', ARGV[5])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: each customer's version hash and events. ARGV: seconds to keep, the most events a copy may grow to,
# then each customer's new events and how many they are. One call appends for many customers.
_APPEND = """
local keep, most = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS, 2 do
  local versions, events, added = KEYS[i], KEYS[i + 1], i + 2
  redis.call('HINCRBY', versions, 'v', 1)
  if redis.call('EXISTS', events) == 1 then
    if redis.call('HINCRBY', versions, 'n', ARGV[added + 1]) > most then
      redis.call('DEL', events)
    else
      redis.call('APPEND', events, ARGV[added])
      redis.call('EXPIRE', events, keep)
    end
  end
  redis.call('EXPIRE', versions, keep)
end
return 1
"""
APPEND_CHUNK = 500  # customers per call: a bulk of outcomes is one or two calls


def encode(events: list[HistoryEvent]) -> bytes:
    """One JSON array a line: every character a channel or an offer id may hold survives."""
    return b"".join(json.dumps(list(event), separators=(",", ":")).encode() + b"\n" for event in events)


def decode(blob: bytes) -> list[HistoryEvent]:
    return [HistoryEvent(*json.loads(line)) for line in blob.split(b"\n") if line]


class SharedHistories:
    """The distributed backend's CustomerHistories: Redis's copies, with the last read of each kept here."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        namespace: str,
        load: HistoryLoader,
        capacity: int = DEFAULT_CAPACITY,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        self._client = client
        self._prefix = f"arbiter:{namespace}:"
        self._load = load
        self._capacity = capacity
        self._telemetry = telemetry
        self._read_script = client.register_script(_READ)
        self._copy_script = client.register_script(_COPY)
        self._append_script = client.register_script(_APPEND)
        self._held: OrderedDict[Key, tuple[bytes, int, CustomerHistory]] = OrderedDict()  # copy, version, history
        self._unsent: dict[Key, list[HistoryEvent]] = {}  # committed, not yet appended in Redis
        self._sending: dict[Key, list[HistoryEvent]] = {}  # being appended
        self._stale: set[Key] = set()  # copies an append failed to reach: to delete
        self._flush: asyncio.Task[None] | None = None

    def _keys(self, key: Key) -> list[str]:
        tenant, customer = key
        # Lengths first: no tenant or customer id can make one customer's keys another's.
        base = f"{self._prefix}h{len(tenant)}:{tenant}:{len(customer)}:{customer}"
        return [base + ":v", base + ":e"]

    async def get(self, tenant: str, customer: str) -> CustomerHistory | None:
        key = (tenant, customer)
        held = self._held.get(key)
        keys = self._keys(key)
        known_copy, known_version = (held[0], held[1]) if held is not None else (b"", -1)
        try:
            version, copy, blob = await self._read_script(keys=keys, args=[known_copy, known_version])
        except redis.RedisError as exc:
            raise redis_unreachable(first_line(exc)) from None
        if key in self._stale:  # a copy an append did not reach, not yet deleted: only Postgres is right
            copy = b""
        self._telemetry.customer_cache(hit=bool(copy))
        if copy and blob is None and held is not None:
            history = held[2]  # unchanged since this server read it
            self._held.move_to_end(key)
        else:
            if copy:
                history = CustomerHistory(decode(blob))
            else:
                history = await self._load(tenant, customer, lambda _: None)
                copy = await self._copy(keys, version, history) if key not in self._stale else b""
            self._hold(key, copy, version, history)
        self._merge_unsent(key, history)
        return history if history.events else None

    async def _copy(self, keys: list[str], version: int, history: CustomerHistory) -> bytes:
        """Put a copy of `history`, read from Postgres at `version`, in Redis; its id (b"" when refused)."""
        events, copy = history.events, secrets.token_hex(8).encode()
        args: list[bytes | int] = [version, HISTORY_SECONDS, encode(events), len(events), copy]
        try:
            stored = await self._copy_script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise redis_unreachable(first_line(exc)) from None
        return copy if stored else b""

    def _hold(self, key: Key, copy: bytes, version: int, history: CustomerHistory) -> None:
        self._held[key] = (copy, version, history)
        self._held.move_to_end(key)
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)

    def _merge_unsent(self, key: Key, history: CustomerHistory) -> None:
        """This server's committed outcomes that Redis may not have yet count at once."""
        waiting = self._unsent.get(key, []) + self._sending.get(key, [])
        if waiting:
            present = {event.seq for event in history.events}
            for event in waiting:
                if event.seq not in present:
                    history.add(event)

    def record(self, tenant: str, customer: str, event: HistoryEvent) -> None:
        key = (tenant, customer)
        self._unsent.setdefault(key, []).append(event)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().create_task(self._send())

    async def _send(self) -> None:
        """Append every unsent outcome in one round trip (a script call per APPEND_CHUNK customers)."""
        try:
            while self._unsent or self._stale:
                self._sending, self._unsent = self._unsent, {}
                stale, self._stale = self._stale, set()
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for key in stale:
                            pipe.delete(*self._keys(key))
                        sending = list(self._sending.items())
                        for start in range(0, len(sending), APPEND_CHUNK):
                            keys: list[str] = []
                            args: list[Any] = [HISTORY_SECONDS, MAX_COPIED_EVENTS]
                            for key, events in sending[start : start + APPEND_CHUNK]:
                                keys += self._keys(key)
                                args += [encode(events), len(events)]
                            await self._append_script(keys=keys, args=args, client=pipe)
                        await pipe.execute()
                except redis.RedisError as exc:
                    log.warning("customer histories could not be updated in Redis (%s); read again later", exc)
                    self._stale |= stale | set(self._sending)
                    self._sending = {}
                    await self._wait_for_redis()
                self._sending = {}
        finally:
            self._flush = None

    async def _wait_for_redis(self) -> None:
        """Until Redis answers (the stale copies must go before anyone trusts them again)."""
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._client.ping()
                return
            except redis.RedisError:
                continue

    async def close(self) -> None:
        """Send what is unsent (after the writer's last commits), waiting at most CLOSE_SECONDS for Redis."""
        flush = self._flush
        if flush is not None:
            done, _ = await asyncio.wait([flush], timeout=CLOSE_SECONDS)
            if not done:
                log.warning("Redis did not take the last customer outcomes: their copies lack them until they expire")
                flush.cancel()
                await asyncio.gather(flush, return_exceptions=True)
