"""Servers on one database follow each other's catalogue changes (the distributed backend).

A change committed on one server (offer, category, policy, tenant setting) is read again by every other
server on the database, from the notice Postgres sends when it commits; a server whose listening connection
was lost reads every tenant again once it listens again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import backends
import pytest
from decide_helpers import decide
from policy_helpers import active_offer, ids, policy
from polling import eventually
from serverproc import ServerProcess

from arbiter.client import Client, NotFoundError

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def pair() -> Iterator[tuple[Client, Client, str]]:
    """Clients of two servers on one new database, and its URL."""
    url = str(backends.database(Path(f"/following/{uuid.uuid4().hex}.db")))
    with (
        ServerProcess(Path("unused.db"), url=url) as first,
        ServerProcess(Path("unused.db"), url=url) as second,
        Client(first.target, tenant="t") as a,
        Client(second.target, tenant="t") as b,
    ):
        yield a, b, url


def _shown(client: Client) -> list[str]:
    return ids(decide(client, "c-1"))


def test_offers_created_updated_and_deleted_on_one_server_are_decided_on_by_the_other(
    pair: tuple[Client, Client, str],
) -> None:
    a, b, _ = pair
    offer_id = active_offer(a, "Made on A", priority="low")
    eventually(lambda: _shown(b) == [offer_id], "B decides with the offer A created")
    assert b.get_offer(offer_id).name == "Made on A"

    other = active_offer(a, "Second", priority="medium")
    eventually(lambda: _shown(b) == [other, offer_id], "B ranks A's second offer")
    a.update_offer({"id": offer_id, "priority": "critical"}, ["priority"])
    eventually(lambda: _shown(b) == [offer_id, other], "B ranks by the priority A set")

    a.delete_offer(other, force=True)
    eventually(lambda: _shown(b) == [offer_id], "B no longer returns the offer A deleted")
    with pytest.raises(NotFoundError):
        b.get_offer(other)


def test_policies_and_tenant_settings_made_on_one_server_hold_on_the_other(pair: tuple[Client, Client, str]) -> None:
    a, b, _ = pair
    offer_id = active_offer(a, "Anything")
    eventually(lambda: _shown(b) == [offer_id], "B sees the offer")
    policy(a, "segmentExclusion", {"segments": ["opted_out"]})
    eventually(lambda: ids(decide(b, "c-2", segments=["opted_out"])) == [], "B applies A's policy")
    a.update_tenant_settings(timezone="Pacific/Auckland")
    eventually(lambda: b.get_tenant_settings().timezone == "Pacific/Auckland", "B has A's time zone")


def test_changes_made_while_the_listening_connection_was_away_are_read_again(
    pair: tuple[Client, Client, str],
) -> None:
    a, b, url = pair
    first = active_offer(a, "Before")
    eventually(lambda: _shown(b) == [first], "B sees the offer")
    # Cut every listening connection; a change made before B listens again is known only by reading again.
    backends.query(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN arbiter_catalog'")
    a.update_offer({"id": first, "name": "Renamed while B was not listening"}, ["name"])
    eventually(lambda: b.get_offer(first).name == "Renamed while B was not listening", "B reads A's change")
    second = active_offer(a, "After")
    eventually(lambda: set(_shown(b)) == {first, second}, "B hears notices again")
