"""GET /metrics after known traffic shows exactly that traffic (a real server, real scrapes)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import backends
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client

Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(url: str) -> dict[Sample, float]:
    """Every sample of a scrape, by name and labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Sample, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of its own: the counts these tests read are not moved by other tests."""
    with ServerProcess(tmp_path_factory.mktemp("metrics") / "arbiter.db", http=True) as process:
        yield process


@pytest.fixture
def tenant() -> str:
    return "t-" + uuid.uuid4().hex[:12]


def test_three_decides_raise_the_grpc_handled_count_by_three(metered: ServerProcess, tenant: str) -> None:
    before = scrape(metered.http_url)
    with Client(metered.target, tenant=tenant) as client:
        for _ in range(3):
            client.decide("c1")
    after = scrape(metered.http_url)

    labels = {"grpc_service": "arbiter.v1.DecisionService", "grpc_method": "Decide", "grpc_type": "unary"}
    handled = "grpc_server_handled_total"
    assert value(after, handled, **labels, grpc_code="OK") - value(before, handled, **labels, grpc_code="OK") == 3
    started = "grpc_server_started_total"
    assert value(after, started, **labels) - value(before, started, **labels) == 3
    seconds = "grpc_server_handling_seconds_count"
    assert value(after, seconds, **labels) - value(before, seconds, **labels) == 3
    assert value(after, "arbiter_decisions_total") - value(before, "arbiter_decisions_total") == 3


def scrape_until(url: str, done: Callable[[dict[Sample, float]], bool], timeout: float = 10.0) -> dict[Sample, float]:
    """Scrape until `done` holds. An aborted call's status reaches the caller while the server is
    still unwinding the call, so its count lands a moment after the caller has its answer."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if done(samples) or time.monotonic() > deadline:
            return samples


def test_an_error_is_counted_under_its_code(metered: ServerProcess, tenant: str) -> None:
    labels = {"grpc_service": "arbiter.v1.OfferService", "grpc_method": "GetOffer", "grpc_type": "unary"}
    name = "grpc_server_handled_total"
    before = scrape(metered.http_url)
    with Client(metered.target, tenant=tenant) as client, pytest.raises(Exception, match="not found"):
        client.get_offer("act_00000000")
    after = scrape_until(
        metered.http_url,
        lambda s: (
            value(s, name, **labels, grpc_code="NOT_FOUND") > value(before, name, **labels, grpc_code="NOT_FOUND")
        ),
    )

    assert (
        value(after, name, **labels, grpc_code="NOT_FOUND") - value(before, name, **labels, grpc_code="NOT_FOUND") == 1
    )


def test_one_drop_by_recency_is_one_more_recency_drop(metered: ServerProcess, tenant: str) -> None:
    with Client(metered.target, tenant=tenant) as client:
        offer = client.create_offer({"name": "seen lately", "status": "active", "qualification": {"recency": 7}})
        client.record_outcome("c1", offer.id, "impression", idempotency_key="seen-1")
        before = scrape(metered.http_url)
        answer = client.decide("c1")
        after = scrape(metered.http_url)

    assert list(answer.offers) == []
    name = "arbiter_offers_dropped_total"
    assert value(after, name, reason="recency") - value(before, name, reason="recency") == 1
    others = {
        labels: count - before.get((sample, labels), 0.0)
        for (sample, labels), count in after.items()
        if sample == name and dict(labels)["reason"] != "recency"
    }
    assert set(others.values()) == {0.0}


def test_outcomes_are_counted_by_type_once_recorded_and_duplicates_are_not(metered: ServerProcess, tenant: str) -> None:
    with Client(metered.target, tenant=tenant) as client:
        offer = client.create_offer({"name": "clicked", "status": "active"})
        before = scrape(metered.http_url)
        client.record_outcome("c1", offer.id, "click", idempotency_key="k-1")
        client.record_outcome("c1", offer.id, "click", idempotency_key="k-1")  # a duplicate
        client.record_outcome("c1", offer.id, "conversion", idempotency_key="k-2")
        after = scrape(metered.http_url)

    name = "arbiter_outcomes_total"
    assert value(after, name, type="click") - value(before, name, type="click") == 1
    assert value(after, name, type="conversion") - value(before, name, type="conversion") == 1
    assert value(after, "arbiter_writer_batch_size_count") > value(before, "arbiter_writer_batch_size_count")


def test_rest_calls_count_by_route_template_and_status(metered: ServerProcess, tenant: str) -> None:
    rest = RestClient(metered.http_url, tenant=tenant)
    before = scrape(metered.http_url)
    created = rest.post("/api/v1/actions", {"name": "over rest"})
    rest.get(f"/api/v1/actions/{created.body['id']}")
    rest.get("/api/v1/actions/act_00000000")
    after = scrape(metered.http_url)

    name = "http_requests_total"

    def rose(**labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert rose(method="POST", route="/api/v1/actions", code="201") == 1
    assert rose(method="GET", route="/api/v1/actions/{id}", code="200") == 1
    assert rose(method="GET", route="/api/v1/actions/{id}", code="404") == 1
    assert not any(dict(labels).get("route", "").startswith("/api/v1/actions/act_") for _, labels in after)


def test_offers_per_status_and_tenant_follow_the_catalogue(metered: ServerProcess, tenant: str) -> None:
    with Client(metered.target, tenant=tenant) as client:
        client.create_offer({"name": "a", "status": "active"})
        client.create_offer({"name": "b", "status": "active"})
        draft = client.create_offer({"name": "c"})
        client.set_offer_status(draft.id, "archived")
    samples = scrape(metered.http_url)

    name = "arbiter_catalog_offers"
    assert value(samples, name, tenant=tenant, status="active") == 2
    assert value(samples, name, tenant=tenant, status="archived") == 1
    assert value(samples, name, tenant=tenant, status="draft") == 0


def test_customer_histories_count_hits_and_misses(metered: ServerProcess, tenant: str) -> None:
    before = scrape(metered.http_url)
    with Client(metered.target, tenant=tenant) as client:
        client.create_offer({"name": "recent", "status": "active", "qualification": {"recency": 1}})
        client.decide("new-customer")
    after = scrape(metered.http_url)

    hits, misses = "arbiter_customer_cache_hits_total", "arbiter_customer_cache_misses_total"
    if backends.on_postgres():
        # The first read of a customer copies their history from Postgres into Redis; the next finds it there.
        assert value(after, misses) - value(before, misses) == 1
        assert value(after, hits) - value(before, hits) == 0
        with Client(metered.target, tenant=tenant) as client:
            client.decide("new-customer")
        assert value(scrape(metered.http_url), hits) - value(after, hits) == 1
        return
    # A customer never seen needs no read: the history is known to be empty.
    assert value(after, hits) - value(before, hits) == 1
    assert value(after, misses) - value(before, misses) == 0


def test_metrics_can_have_a_listener_of_their_own_or_be_off(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "own.db", ["--metrics-address", "127.0.0.1:0"], http=True) as server:
        assert server.process is not None and server.process.stdout is not None
        line = server.process.stdout.readline()
        assert line.startswith("arbiter metrics listening on 127.0.0.1:")
        own = f"http://127.0.0.1:{int(line.rsplit(':', 1)[1])}"
        assert "grpc_server_started_total" in {name for name, _ in scrape(own)}
        assert RestClient(server.http_url).get("/metrics").status == 404
    with ServerProcess(tmp_path / "off.db", ["--metrics-address", "off"], http=True) as server:
        assert RestClient(server.http_url).get("/metrics").status == 404


DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "arbiter-dashboard.json"
METRIC_NAME = re.compile(r"\b(?:arbiter|grpc_server|http_request)[a-z_]*\b")


def test_every_metric_the_dashboard_queries_exists(metered: ServerProcess, tenant: str) -> None:
    with Client(metered.target, tenant=tenant) as client:
        offer = client.create_offer({"name": "dashboard", "status": "active", "qualification": {"recency": 1}})
        client.decide("c1", record_impressions=True)
        client.record_outcome("c1", offer.id, "click", idempotency_key="dash-1")
    RestClient(metered.http_url, tenant=tenant).get("/api/v1/actions")
    served = {name for name, _ in scrape(metered.http_url)}

    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name for panel in dashboard["panels"] for t in panel["targets"] for name in METRIC_NAME.findall(t["expr"])
    }
    assert queried, "the dashboard queries nothing"
    assert queried - served == set()
