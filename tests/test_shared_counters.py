"""The distributed backend's shared counters: caps exact across servers, Redis rebuilt, Redis outages.

Every test here runs real servers on one Postgres database with a real Redis: the run's (backends.py) or,
where a test stops Redis, one of its own.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from pathlib import Path

import backends
import pytest
from decide_helpers import DECISION_TIME, decide, make_offer, new_key
from grpc_health.v1 import health_pb2
from policy_helpers import ids, policy
from polling import BOUND, eventually
from serverproc import ServerProcess, start_refused

from arbiter.client import Client, UnavailableError

pytestmark = pytest.mark.postgres_only

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
COST = 0.25  # per impression
CAPPED = {"maxImpressions": 25}
BUDGETED = {"maxDailyBudget": 15 * COST, "costPerAction": COST}  # 15 impressions a day


def _database() -> str:
    return backends.database(Path(f"/shared-counters/{uuid.uuid4().hex}.db"))  # type: ignore[return-value]


def _on(url: str, redis: backends.RedisServer) -> ServerProcess:
    """A server on the database `url` with a Redis of the test's own."""
    return ServerProcess(Path("unused.db"), ["--redis", redis.url], url=url)


def _impressions(url: str, offer_id: str) -> int:
    rows = backends.query(url, "SELECT count(*) FROM outcomes WHERE offer_id = ? AND type = 1", (offer_id,))
    return int(rows[0][0])  # type: ignore[call-overload]


def _decide_in_parallel(servers: list[ServerProcess], decisions_each: int, threads_each: int = 4) -> None:
    """Decisions that record their impressions, from `threads_each` clients at each server at once."""
    errors: list[BaseException] = []

    def run(target: str, worker: int) -> None:
        try:
            with Client(target, tenant="t") as client:
                for n in range(decisions_each // threads_each):
                    decide(client, f"c-{target}-{worker}-{n}", record_impressions=True, limit=5)
        except BaseException as exc:  # reported below: a failing thread must fail the test
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(server.target, worker))
        for server in servers
        for worker in range(threads_each)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_two_servers_on_one_database_take_exactly_the_caps_together() -> None:
    url = _database()
    with ServerProcess(Path("unused.db"), url=url) as first, Client(first.target, tenant="t") as client:
        capped = make_offer(client, budget=CAPPED)
        budgeted = make_offer(client, budget=BUDGETED)
        with ServerProcess(Path("unused.db"), url=url) as second:
            _decide_in_parallel([first, second], decisions_each=80)
    # Each server alone would have granted its full cap: together they granted each cap once.
    assert _impressions(url, capped) == 25
    assert _impressions(url, budgeted) == 15


def test_an_emptied_redis_is_rebuilt_from_the_database_and_no_cap_is_exceeded(tmp_path: Path) -> None:
    url = _database()
    with (
        backends.RedisServer(tmp_path / "redis") as redis,
        _on(url, redis) as first,
        Client(first.target, tenant="t") as client,
    ):
        capped = make_offer(client, budget=CAPPED)
        budgeted = make_offer(client, budget=BUDGETED)
        for n in range(10):
            decide(client, f"before-{n}", record_impressions=True)
        # An impression reported by a caller counts toward the cap too.
        client.record_outcome("reported", capped, "impression", new_key())
        redis.stop()
        redis.start()  # empty: it keeps nothing on disk
        with _on(url, redis) as second:
            _decide_in_parallel([first, second], decisions_each=40)
    # Both servers together: without the rebuild, Redis would have let each take up to the whole cap again.
    assert _impressions(url, capped) == 25
    assert _impressions(url, budgeted) == 15


def test_while_redis_is_away_recording_fails_fast_and_health_says_so_until_it_returns(tmp_path: Path) -> None:
    url = _database()
    with (
        backends.RedisServer(tmp_path / "redis") as redis,
        _on(url, redis) as server,
        Client(server.target, tenant="t") as client,
    ):
        offer_id = make_offer(client, budget=CAPPED)
        assert [o.offer_id for o in decide(client, record_impressions=True).offers] == [offer_id]
        redis.stop()
        eventually(lambda: server.health() == NOT_SERVING, "health says NOT_SERVING while Redis is away")
        # Answered UNAVAILABLE: a call held until its deadline would raise DeadlineExceededError instead.
        with pytest.raises(UnavailableError, match=r"shared counters \(Redis\) cannot be reached"):
            decide(client, "c-2", record_impressions=True, timeout=BOUND)
        with pytest.raises(UnavailableError, match=r"shared counters \(Redis\) cannot be reached"):
            client.record_outcome("c-3", offer_id, "impression", new_key(), timeout=BOUND)
        assert [o.offer_id for o in decide(client, "c-4").offers] == [offer_id]  # without recording: served
        client.record_outcome("c-1", offer_id, "click", new_key())  # what needs no counter is recorded
        redis.start()
        eventually(lambda: server.health() == SERVING, "health says SERVING once Redis is back")
        assert [o.offer_id for o in decide(client, "c-5", record_impressions=True).offers] == [offer_id]
        assert client.get_offer_stats(offer_id).lifetime_impressions == 2
    assert _impressions(url, offer_id) == 2


def test_a_customer_s_outcomes_on_one_server_count_on_the_other_even_after_redis_lost_them(tmp_path: Path) -> None:
    url = _database()
    with (
        backends.RedisServer(tmp_path / "redis") as redis,
        _on(url, redis) as first,
        Client(first.target, tenant="t") as a,
    ):
        offer_id = make_offer(a)
        policy(a, "frequencyCap", {"maxPerDay": 1})
        with (
            _on(url, redis) as second,
            Client(second.target, tenant="t") as b,
        ):
            assert ids(decide(b, "alice")) == [offer_id]  # B reads Alice's (empty) history
            assert ids(decide(a, "alice", record_impressions=True)) == [offer_id]
            # The impression A recorded reaches B a moment after it commits (sent once per turn of A's loop).
            eventually(lambda: ids(decide(b, "alice")) == [], "B counts the impression A recorded")
            a.record_outcome("bob", offer_id, "impression", new_key(), occurred_at=DECISION_TIME)
            eventually(lambda: ids(decide(b, "bob")) == [], "B counts the impression reported to A")
            assert ids(decide(b, "carol")) == [offer_id]
            redis.stop()
            redis.start()  # empty: every copy is read again from Postgres
            eventually(lambda: server_serves(second), "B answers again once Redis is back")
            assert ids(decide(b, "alice")) == []
            assert ids(decide(b, "bob")) == []
            assert ids(decide(b, "carol")) == [offer_id]


def test_a_copy_that_missed_an_outcome_is_not_trusted_while_redis_refuses_writes(tmp_path: Path) -> None:
    """Redis answering reads but refusing writes (no replica for min-replicas-to-write): the click is stored
    in Postgres but cannot reach the customer's copy in Redis, so the server reads the customer from Postgres."""
    url = _database()
    with (
        backends.RedisServer(tmp_path / "redis") as redis,
        _on(url, redis) as server,
        Client(server.target, tenant="t") as client,
    ):
        offer_id = make_offer(client)
        policy(client, "outcomeSuppression", {"outcomeTypes": ["click"], "minCount": 1, "windowDays": 30})
        assert ids(decide(client, "alice")) == [offer_id]  # Alice's (empty) history is copied into Redis
        redis_cli = ["redis-cli", "-p", str(redis.port), "CONFIG", "SET", "min-replicas-to-write"]
        subprocess.run([*redis_cli, "1"], check=True, capture_output=True, timeout=10)
        try:
            client.record_outcome("alice", offer_id, "click", new_key(), occurred_at=DECISION_TIME)
            assert ids(decide(client, "alice")) == []  # her click counts, though her copy in Redis lacks it
        finally:
            subprocess.run([*redis_cli, "0"], check=True, capture_output=True, timeout=10)
        eventually(lambda: ids(decide(client, "alice")) == [], "the same once Redis takes writes again")


def server_serves(server: ServerProcess) -> bool:
    return server.health() == SERVING


def test_redis_stopped_and_started_under_load_loses_nothing_acknowledged_and_overshoots_no_cap(
    tmp_path: Path,
) -> None:
    url = _database()
    acknowledged_impressions: list[str] = []  # decisions that returned the capped offer
    acknowledged_clicks: list[str] = []  # outcome ids
    refused = threading.Event()
    errors: list[BaseException] = []
    with (
        backends.RedisServer(tmp_path / "redis") as redis,
        _on(url, redis) as first,
        _on(url, redis) as second,
        Client(first.target, tenant="t") as setup,
    ):
        capped = make_offer(setup, budget={"maxImpressions": 150})
        with Client(second.target, tenant="t") as other:
            eventually(lambda: ids(decide(other, "probe")) == [capped], "the second server has the offer")
        stop = threading.Event()
        empty_in_a_row = [0] * 6  # per worker: decisions since the last that returned the offer

        def load(target: str, worker: int) -> None:
            with Client(target, tenant="t") as client:
                for n in range(10_000):
                    if stop.is_set():
                        return
                    try:
                        answer = decide(client, f"w{worker}-{n}", record_impressions=True, timeout=BOUND)
                        acknowledged_impressions.extend(o.offer_id for o in answer.offers)
                        empty_in_a_row[worker] = 0 if answer.offers else empty_in_a_row[worker] + 1
                        click = client.record_outcome(f"w{worker}-{n}", capped, "click", new_key(), timeout=BOUND)
                        acknowledged_clicks.append(click.outcome_id)
                    except UnavailableError:
                        refused.set()
                    except BaseException as exc:  # reported below: a failing thread must fail the test
                        errors.append(exc)
                        return

        threads = [
            threading.Thread(target=load, args=(server.target, 3 * i + w))
            for i, server in enumerate((first, second))
            for w in range(3)
        ]
        for thread in threads:
            thread.start()
        eventually(lambda: len(acknowledged_impressions) >= 30, "decisions recorded before Redis stops")
        redis.stop()
        eventually(refused.is_set, "calls refused while Redis is away")
        redis.start()  # empty
        eventually(lambda: min(empty_in_a_row) >= 10, "every worker sees the cap reached", bound=60)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors
    recorded = backends.query(url, "SELECT id FROM outcomes WHERE type = 2")
    assert set(acknowledged_clicks) <= {row[0] for row in recorded}  # every acknowledged click is stored
    # Every impression a decision returned is stored once, and together they never pass the cap.
    assert _impressions(url, capped) == len(acknowledged_impressions) <= 150
    assert len(acknowledged_impressions) >= 140  # the cap was reached, give or take reservations in flight


def test_postgres_without_redis_and_sqlite_with_redis_are_refused_saying_what_to_do(tmp_path: Path) -> None:
    line = start_refused("--db", _database())
    assert "needs --redis" in line
    line = start_refused("--db", str(tmp_path / "x.db"), "--redis", backends.redis_url())
    assert "--redis is for the distributed backend" in line
    line = start_refused("--db", _database(), "--redis", "http://127.0.0.1:1")
    assert "not a redis://" in line


def test_a_redis_that_cannot_be_used_is_one_line_at_start(tmp_path: Path) -> None:
    free = f"redis://:secret@127.0.0.1:{backends.free_port()}/0"
    line = start_refused("--db", _database(), "--redis", free)
    assert line.startswith("arbiter: --redis redis://:***@127.0.0.1:") and "cannot connect" in line
    assert "secret" not in line
    with backends.RedisServer(tmp_path / "redis") as redis:
        subprocess.run(
            ["redis-cli", "-p", str(redis.port), "CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
            check=True,
            capture_output=True,
            timeout=10,
        )
        line = start_refused("--db", _database(), "--redis", redis.url)
    assert "maxmemory-policy is allkeys-lru" in line and "noeviction" in line
