"""Several servers on one Postgres + Redis behave as one: idempotency, keys, per-customer rules.

(Caps and budgets across servers: test_shared_counters.py; catalogue changes: test_catalog_following.py.)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import backends
import pytest
from auth_helpers import cli_create_key, key_id_of
from decide_helpers import DECISION_TIME, decide, make_offer, new_key
from policy_helpers import ids, policy
from polling import eventually
from serverproc import ServerProcess

from arbiter.client import Client, NotFoundError, UnauthenticatedError

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Path, list[ServerProcess]]]:
    """Three servers with API keys on one database (the file path stands for it: tests/backends.py)."""
    db = tmp_path / "replicas.db"
    with ExitStack() as stack:
        yield db, [stack.enter_context(ServerProcess(db, auth=True)) for _ in range(3)]


def _all_at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run the calls on threads released together; their results in order (an exception fails the test)."""
    start = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait(timeout=10)
            results[i] = calls[i]()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def _knows(client: Client, offer_id: str) -> bool:
    try:
        client.get_offer(offer_id)
    except NotFoundError:
        return False
    return True


def _click(client: Client, *, offer_id: str, key: str) -> str:
    return client.record_outcome("alice", offer_id, "click", key, occurred_at=DECISION_TIME).outcome_id


def _shown(client: Client, customer: str) -> list[str]:
    return ids(decide(client, customer, record_impressions=True))


def test_one_idempotency_key_sent_to_three_servers_at_once_is_recorded_once(
    replicas: tuple[Path, list[ServerProcess]],
) -> None:
    db, servers = replicas
    secret = cli_create_key(db, "t", "admin")
    clients = [Client(server.target, api_key=secret) for server in servers]
    try:
        offer_id = make_offer(clients[0])
        for client in clients:
            eventually(functools.partial(_knows, client, offer_id), "every server has the offer")
        for _ in range(5):  # one key a round, sent by all three at the same moment
            key = new_key()
            results = _all_at_once([functools.partial(_click, c, offer_id=offer_id, key=key) for c in clients])
            assert len(set(results)) == 1
            rows = backends.query(db, "SELECT count(*) FROM outcomes WHERE idempotency_key = ?", (key,))
            assert rows == [(1,)]
    finally:
        for client in clients:
            client.close()


def test_a_key_revoked_on_one_server_is_refused_by_every_other(replicas: tuple[Path, list[ServerProcess]]) -> None:
    db, servers = replicas
    admin = cli_create_key(db, "t", "admin")
    doomed = cli_create_key(db, "t", "decide")
    for server in servers:
        with Client(server.target, api_key=doomed) as client:
            decide(client)  # works everywhere
    with Client(servers[0].target, api_key=admin) as client:
        client.revoke_api_key(key_id_of(doomed))
    for server in servers[1:]:

        def refused(target: str = server.target) -> bool:
            with Client(target, api_key=doomed) as client:
                try:
                    decide(client)
                except UnauthenticatedError:
                    return True
                return False

        eventually(refused, f"the server at {server.target} refuses the revoked key")


def test_decisions_for_one_customer_at_two_servers_at_once_pass_a_frequency_cap_at_most_once_each(
    replicas: tuple[Path, list[ServerProcess]],
) -> None:
    """The documented bound (docs/rules.md, "Shared customer histories"): in flight at the same moment on two
    servers, both may pass; once one's impression is shared, every server holds the customer to the cap."""
    db, servers = replicas
    secret = cli_create_key(db, "t", "admin")
    a, b = (Client(server.target, api_key=secret) for server in servers[:2])
    try:
        offer_id = make_offer(a)
        policy(a, "frequencyCap", {"maxPerDay": 1})
        eventually(lambda: ids(decide(b, "probe")) == [offer_id], "B has the offer and the policy")
        for round_ in range(5):
            customer = f"c{round_}"
            answers = _all_at_once([functools.partial(_shown, client, customer) for client in (a, b)])
            shown = sum(answer == [offer_id] for answer in answers)
            assert 1 <= shown <= 2
            for client in (a, b):

                def held(c: Client = client, who: str = customer) -> bool:
                    return ids(decide(c, who)) == []

                eventually(held, "every server holds the customer to the cap")
            rows = backends.query(db, "SELECT count(*) FROM outcomes WHERE customer_id = ? AND type = 1", (customer,))
            assert rows == [(shown,)]
    finally:
        a.close()
        b.close()


OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]  # not one TCP connection shared by every channel


def test_three_servers_of_two_workers_take_caps_exactly_under_100_clients(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    with ExitStack() as stack:
        servers = [stack.enter_context(ServerProcess(db, ["--workers", "2"])) for _ in range(3)]
        with Client(servers[0].target, tenant="t") as setup:
            for round_ in range(5):
                tag = f"r{round_}"
                capped = make_offer(setup, budget={"maxImpressions": 500}, tags=[tag])
                budgeted = make_offer(setup, budget={"maxDailyBudget": 30.0, "costPerAction": 0.25}, tags=[tag])
                wanted = {capped, budgeted}
                eventually(functools.partial(_served_everywhere, servers, tag, wanted), "every worker has the offers")
                _decide_until_exhausted(servers, tag=tag, clients=100)
                for offer_id, cap in ((capped, 500), (budgeted, 120)):
                    assert _impressions(db, offer_id) == cap, (round_, offer_id)


def _served_everywhere(servers: list[ServerProcess], tag: str, wanted: set[str]) -> bool:
    """Whether a decision on each server (each on a new connection: any worker) offers exactly `wanted`."""
    for server in servers:
        with Client(server.target, tenant="t", options=OWN_CONNECTION) as client:
            if set(ids(decide(client, "probe", tags=[tag] if tag else [], limit=5))) != wanted:
                return False
    return True


def _impressions(db: Path, offer_id: str) -> int:
    rows = backends.query(db, "SELECT count(*) FROM outcomes WHERE offer_id = ? AND type = 1", (offer_id,))
    return int(rows[0][0])  # type: ignore[call-overload]


def _decide_until_exhausted(servers: list[ServerProcess], *, tag: str, clients: int) -> None:
    """`clients` threads, spread over the servers, decide with recording until the tag's offers stop coming."""
    quiet = [0] * clients
    errors: list[BaseException] = []

    def run(i: int) -> None:
        target = servers[i % len(servers)].target
        try:
            with Client(target, tenant="t", options=OWN_CONNECTION) as client:
                n = 0
                while quiet[i] < 5:
                    answer = decide(client, f"{tag}-{i}-{n}", tags=[tag], limit=5, record_impressions=True)
                    quiet[i] = 0 if answer.offers else quiet[i] + 1
                    n += 1
        except BaseException as exc:  # reported below: a failing thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors[:3]


def test_a_server_killed_under_load_loses_nothing_it_acknowledged_and_the_others_serve_on(tmp_path: Path) -> None:
    db = tmp_path / "killed.db"
    with ExitStack() as stack:
        servers = [stack.enter_context(ServerProcess(db)) for _ in range(3)]
        with Client(servers[0].target, tenant="t") as setup:
            offer_id = make_offer(setup, budget={"maxImpressions": 100_000})
        eventually(functools.partial(_served_everywhere, servers, "", {offer_id}), "every server has the offer")
        acknowledged: list[str] = []  # outcome ids of recorded clicks
        impressions: list[str] = []  # decision ids that returned the offer
        stop = threading.Event()
        failures: dict[int, int] = {}

        def load(i: int) -> None:
            target = servers[i % 3].target
            with Client(target, tenant="t", options=OWN_CONNECTION) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        answer = decide(client, f"k{i}-{n}", record_impressions=True, timeout=10)
                        if answer.offers:
                            impressions.append(answer.decision_id)
                        click = client.record_outcome(f"k{i}-{n}", offer_id, "click", new_key(), timeout=10)
                        acknowledged.append(click.outcome_id)
                    except Exception:  # the killed server's clients fail from then on
                        failures[i % 3] = failures.get(i % 3, 0) + 1
                        if i % 3 != 0:
                            raise

        threads = [threading.Thread(target=load, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        eventually(lambda: len(acknowledged) >= 100, "load on every server")
        servers[0].kill()
        before = len(acknowledged)
        eventually(lambda: len(acknowledged) >= before + 100, "the other servers keep serving")
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        assert set(failures) <= {0}, failures
    stored_clicks = {row[0] for row in backends.query(db, "SELECT id FROM outcomes WHERE type = 2")}
    assert set(acknowledged) <= stored_clicks
    assert _impressions(db, offer_id) >= len(impressions)  # every impression a decision returned is stored
