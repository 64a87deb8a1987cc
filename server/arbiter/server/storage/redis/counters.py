"""Live counters shared by every server on one database, with Redis keeping the caps exact (storage layer).

Redis holds, for each tenant, every offer's lifetime impressions and its
spend on each ledger day, counting what is committed and what is reserved
(in flight) on every server. A reservation is one Lua script that checks
every cap of the offers a decision returns and counts what it grants, so two
servers can never both take the last impression of a budget; a reservation
whose impression is not committed is given back. An impression reported
with RecordOutcome is reserved too (without a cap), so Redis never waits for
a commit to count it.

The funnel still reads this process's own counters (InProcessCounters): the
reservation is the check that counts. With one server the two agree; with
several, an offer another server exhausted is dropped at reservation.

Redis is a cache of Postgres. Each counter hash is marked with the *epoch*
it was built in; a Redis that lost its data (restarted empty) has no epoch,
so the first server to reserve makes a new one, and every hash is built
again from the ledger in Postgres, plus the reservations this server has in
flight, before it is used: nothing that was counted is forgotten. (The
reservations other servers had in flight at that moment are the exception:
at most one per decision in flight then; see docs/rules.md.)
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import redis
import redis.asyncio

from ...app.ports import CounterArrays, OfferCounts, OutcomeEffect, Reservation
from ...domain.catalog_snapshot import CatalogSnapshot
from ..inprocess.counters import InProcessCounters
from .connection import first_line, redis_unreachable

log = logging.getLogger(__name__)

DAY_KEY_SECONDS = 8 * 24 * 3600  # a day's spend is rebuilt from Postgres if it is needed again after this
NO_CAP = -1

# The committed counts of one hash: lifetime impressions (day None) or the spend of a day, per offer.
CommittedReader = Callable[[str, int | None], Awaitable[list[tuple[str, int]]]]
# An offer's committed counts: (tenant, offer, model reference, day).
CountsReader = Callable[[str, str, str, int], Awaitable[OfferCounts]]

# KEYS: epoch, impressions, impressions' epoch, spend, spend's epoch.
# ARGV: per reservation: offer id, cost, max impressions, daily budget (NO_CAP: none).
# Returns {epoch, -1} without an epoch, {epoch, -2} / {epoch, -3} when a hash is not built in it,
# else {epoch, granted (1 or 0) per reservation}.
_RESERVE = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then return {'', -1} end
if redis.call('GET', KEYS[3]) ~= epoch then return {epoch, -2} end
if redis.call('GET', KEYS[5]) ~= epoch then return {epoch, -3} end
local answer = {epoch}
for i = 1, #ARGV, 4 do
  local offer, cost = ARGV[i], tonumber(ARGV[i + 1])
  local cap, budget = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local shown = tonumber(redis.call('HGET', KEYS[2], offer) or 0)
  local spent = tonumber(redis.call('HGET', KEYS[4], offer) or 0)
  if (cap < 0 or shown < cap) and (budget < 0 or spent + cost <= budget) then
    redis.call('HINCRBY', KEYS[2], offer, 1)
    if cost ~= 0 then redis.call('HINCRBY', KEYS[4], offer, cost) end
    answer[#answer + 1] = 1
  else
    answer[#answer + 1] = 0
  end
end
return answer
"""

# KEYS as for _RESERVE. ARGV: the epoch the reservations were counted in, then offer id, cost per reservation.
# Counted in another epoch (the hashes were built again since): nothing to give back.
_RELEASE = """
local epoch = ARGV[1]
if redis.call('GET', KEYS[1]) ~= epoch or redis.call('GET', KEYS[3]) ~= epoch
   or redis.call('GET', KEYS[5]) ~= epoch then return 0 end
for i = 2, #ARGV, 2 do
  local offer, cost = ARGV[i], tonumber(ARGV[i + 1])
  if tonumber(redis.call('HGET', KEYS[2], offer) or 0) > 0 then redis.call('HINCRBY', KEYS[2], offer, -1) end
  if cost ~= 0 and tonumber(redis.call('HGET', KEYS[4], offer) or 0) >= cost then
    redis.call('HINCRBY', KEYS[4], offer, -cost)
  end
end
return 1
"""

# KEYS: epoch, the hash, its epoch. ARGV: epoch, seconds to keep (0: for ever), then offer id, count pairs.
# Returns 0 when the epoch moved meanwhile (build again), 1 when built (by this call or another server's).
_BUILD = """
local epoch = ARGV[1]
if redis.call('GET', KEYS[1]) ~= epoch then return 0 end
if redis.call('GET', KEYS[3]) == epoch then return 1 end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('SET', KEYS[3], epoch)
local keep = tonumber(ARGV[2])
if keep > 0 then
  redis.call('EXPIRE', KEYS[2], keep)
  redis.call('EXPIRE', KEYS[3], keep)
end
return 1
"""

_ATTEMPTS = 4  # a new epoch, then each of the two hashes built: the fourth attempt reserves


class SharedCounters:
    """The distributed backend's LiveCounters: this process's counters, with every reservation taken in Redis."""

    def __init__(
        self,
        local: InProcessCounters,
        client: redis.asyncio.Redis,
        namespace: str,
        read_committed: CommittedReader,
        read_counts: CountsReader,
    ) -> None:
        """`read_committed` and `read_counts` read the database (the counts every server committed)."""
        self._local = local
        self._read_counts = read_counts
        self._client = client
        self._prefix = f"arbiter:{namespace}:"
        self._read_committed = read_committed
        self._reserve_script = client.register_script(_RESERVE)
        self._release_script = client.register_script(_RELEASE)
        self._build_script = client.register_script(_BUILD)
        self._epoch: bytes | None = None  # the epoch this server last reserved in
        self._builds: dict[tuple[str, int | None], asyncio.Future[None]] = {}
        self._background: set[asyncio.Future[None]] = set()

    # -- keys ---------------------------------------------------------------------

    def _keys(self, tenant: str, day: int) -> list[str]:
        impressions, spend = self._hash(tenant, None), self._hash(tenant, day)
        return [self._prefix + "epoch", impressions, impressions + ":epoch", spend, spend + ":epoch"]

    def _hash(self, tenant: str, day: int | None) -> str:
        # The tenant's length first: no tenant name can make one tenant's key another's.
        base = f"{self._prefix}t{len(tenant)}:{tenant}:"
        return base + ("impressions" if day is None else f"spend:{day}")

    # -- reservations ---------------------------------------------------------------

    async def reserve(self, tenant: str, day: int, wanted: Sequence[Reservation]) -> list[bool]:
        if not wanted:
            return []
        granted = await self._reserve_shared(tenant, day, wanted)
        # Counted here only once Redis granted them: a hash built meanwhile must not count them twice.
        await self._local.reserve(tenant, day, [w for w, ok in zip(wanted, granted, strict=True) if ok])
        return granted

    async def _reserve_shared(self, tenant: str, day: int, wanted: Sequence[Reservation]) -> list[bool]:
        keys = self._keys(tenant, day)
        args: list[str | int] = []
        for w in wanted:
            args += [w.offer_id, w.cost_micros, _cap(w.max_impressions), _cap(w.daily_budget_micros)]
        for _ in range(_ATTEMPTS):
            try:
                epoch, *answer = await self._reserve_script(keys=keys, args=args)
            except redis.RedisError as exc:
                raise redis_unreachable(first_line(exc)) from None
            if answer == [-1]:
                await self._begin_epoch()
            elif answer == [-2]:
                await self._build(tenant, None, epoch)
            elif answer == [-3]:
                await self._build(tenant, day, epoch)
            else:
                self._epoch = epoch
                return [bool(ok) for ok in answer]
        raise redis_unreachable("its counters were lost again while being rebuilt")

    def release(self, tenant: str, day: int, reserved: Sequence[Reservation]) -> None:
        self._local.release(tenant, day, reserved)
        self._give_back(tenant, day, reserved)

    def _give_back(self, tenant: str, day: int, reserved: Sequence[Reservation]) -> None:
        """Return reservations to Redis off the caller's path; a failure only leaves them counted (never too few)."""
        epoch = self._epoch
        if not reserved or epoch is None:
            return
        args: list[str | int | bytes] = [epoch]
        for r in reserved:
            args += [r.offer_id, r.cost_micros]
        self._in_background(self._release_script(keys=self._keys(tenant, day), args=args))

    def _in_background(self, work: Coroutine[Any, Any, Any]) -> None:
        async def run() -> None:
            try:
                await work
            except redis.RedisError as exc:
                log.warning("reservations could not be given back to Redis (%s); they stay counted", exc)

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- epochs and rebuilding ---------------------------------------------------------

    async def _begin_epoch(self) -> None:
        try:
            await self._client.set(self._prefix + "epoch", secrets.token_hex(8), nx=True)
        except redis.RedisError as exc:
            raise redis_unreachable(first_line(exc)) from None
        log.warning("Redis holds no counters (new, or restarted empty): rebuilding them from the database")

    async def _build(self, tenant: str, day: int | None, epoch: bytes) -> None:
        """Build one hash in `epoch`, once per process however many decisions are waiting for it."""
        key = (tenant, day)
        pending = self._builds.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._build_now(tenant, day, epoch))
            self._builds[key] = pending
            pending.add_done_callback(lambda _: self._builds.pop(key, None))
        await asyncio.shield(pending)

    async def _build_now(self, tenant: str, day: int | None, epoch: bytes) -> None:
        # This server's reservations in flight are read before the committed counts: one that commits in
        # between is counted twice (too many, never too few), until the hash is next rebuilt.
        by_offer, by_day_offer = self._local.reserved(tenant)
        if day is None:
            in_flight = by_offer
        else:
            in_flight = {offer_id: spend for (d, offer_id), spend in by_day_offer.items() if d == day}
        totals: defaultdict[str, int] = defaultdict(int, in_flight)
        for offer_id, count in await self._read_committed(tenant, day):
            totals[offer_id] += count
        args: list[str | int | bytes] = [epoch, 0 if day is None else DAY_KEY_SECONDS]
        for offer_id, count in totals.items():
            args += [offer_id, count]
        hash_key = self._hash(tenant, day)
        try:
            await self._build_script(keys=[self._prefix + "epoch", hash_key, hash_key + ":epoch"], args=args)
        except redis.RedisError as exc:
            raise redis_unreachable(first_line(exc)) from None

    # -- the rest is this process's counters ---------------------------------------------

    def bind(self, tenant: str, snapshot: CatalogSnapshot) -> None:
        self._local.bind(tenant, snapshot)

    async def load_day(self, tenant: str, day: int) -> None:
        await self._local.load_day(tenant, day)

    def read(self, tenant: str, snapshot: CatalogSnapshot, day: int, *, spend: bool) -> CounterArrays | None:
        return self._local.read(tenant, snapshot, day, spend=spend)

    def apply(self, tenant: str, effects: Sequence[OutcomeEffect]) -> None:
        duplicates: defaultdict[int, list[Reservation]] = defaultdict(list)
        for effect in effects:
            item = effect.outcome
            if effect.seq is None and item.reserved:  # reserved, but not recorded: give it back
                duplicates[item.day].append(Reservation(item.input.offer_id, item.cost_micros))
        for day, reserved in duplicates.items():
            self._give_back(tenant, day, reserved)
        self._local.apply(tenant, effects)

    def forget_offer(self, tenant: str, offer_id: str) -> None:
        self._local.forget_offer(tenant, offer_id)

    async def offer_counts(self, tenant: str, offer_id: str, model_ref: str, day: int) -> OfferCounts:
        # What every server committed, not only this one.
        return await self._read_counts(tenant, offer_id, model_ref, day)

    async def close(self) -> None:
        """Let the reservations being given back finish (each is bounded by the client's timeouts), then close."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._client.aclose()


def _cap(value: int | None) -> int:
    return NO_CAP if value is None else value
