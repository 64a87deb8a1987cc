"""The decision log and WhyNot over a real server: gRPC and REST, sampling flags, retention by the server's clock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import backends
import pytest
from decide_helpers import DECISION_TIME, decide, make_offer, new_key
from inprocess import InProcessServer
from rest_helpers import RestClient
from serverproc import ServerProcess

from arbiter.client import Client, NotFoundError
from arbiter.v1 import decisions_pb2


@pytest.fixture(scope="module")
def logging_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that keeps every decision (ARBITER_DECISION_LOG_SAMPLE=1, the environment spelling)."""
    db = tmp_path_factory.mktemp("decision-log") / "arbiter.db"
    with ServerProcess(db, env={"ARBITER_DECISION_LOG_SAMPLE": "1"}, http=True) as process:
        yield process


def _tenant() -> str:
    return "t-" + uuid.uuid4().hex[:16]


def test_get_decision_returns_the_request_answer_and_every_candidate(logging_server: ServerProcess) -> None:
    tenant = _tenant()
    with Client(logging_server.target, tenant=tenant) as client:
        winner = make_offer(client, priority="high")
        gold = make_offer(client, qualification={"requiredSegments": ["gold"]})
        answer = decide(client, "cust-7", segments=["silver"], attributes={"tier": "b"}, dry_run=True)
        assert list(answer.candidates) == []
        logged = client.get_decision(answer.decision_id)
        assert logged.decision_id == answer.decision_id
        assert logged.decision_time == answer.decision_time
        assert logged.request.customer_id == "cust-7" and list(logged.request.segments) == ["silver"]
        assert logged.request.attributes["tier"] == "b" and logged.request.limit == 5
        assert logged.request.dry_run
        assert [o.offer_id for o in logged.response.offers] == [winner] == [o.offer_id for o in answer.offers]
        assert list(logged.response.candidates) == []  # the caller did not ask for explain
        fates = {c.offer_id: c for c in logged.candidates}
        assert fates[winner].selected
        assert fates[gold].reason == decisions_pb2.DROP_REASON_MISSING_SEGMENTS

    with Client(logging_server.target, tenant=_tenant()) as other, pytest.raises(NotFoundError):
        other.get_decision(answer.decision_id)


def test_rest_get_decision_and_why_not(logging_server: ServerProcess) -> None:
    tenant = _tenant()
    with Client(logging_server.target, tenant=tenant) as client:
        weekend = make_offer(client, schedule={"daysOfWeek": [0, 6]})
        always = make_offer(client)
        answer = decide(client, explain=True)
    rest = RestClient(logging_server.http_url, tenant=tenant)
    got = rest.get(f"/api/v1/decisions/{answer.decision_id}")
    assert got.status == 200, got.body
    assert got.body["decisionId"] == answer.decision_id
    assert {c["offerId"]: c.get("reason") for c in got.body["candidates"]}[weekend] == "schedule_day"
    assert len(got.body["response"]["candidates"]) == 2  # this caller asked for explain

    assert rest.get("/api/v1/decisions/dec_0000000000000000").status == 404
    other = RestClient(logging_server.http_url, tenant=_tenant())
    assert other.get(f"/api/v1/decisions/{answer.decision_id}").reason() == "DECISION_NOT_FOUND"

    when = quote(DECISION_TIME.isoformat().replace("+00:00", "Z"))
    why = rest.get(f"/api/v1/customers/cust-1/why-not/{weekend}?decisionTime={when}")
    assert why.status == 200, why.body
    assert (why.body["step"], why.body["reason"]) == ("schedule", "schedule_day")
    assert "daysOfWeek" in why.body["message"]
    ok = rest.get(
        f"/api/v1/customers/cust-1/why-not/{always}?decisionTime={when}&segments=a,b&attributes=%7B%22x%22%3A1%7D"
    )
    assert (ok.body["step"], ok.body["returned"], ok.body["rank"]) == ("output", True, 1)
    assert rest.get("/api/v1/customers/cust-1/why-not/act_0000000000000000").status == 404


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("decisionTime=yesterday", "decisionTime"),
        ("attributes=%5B1%2C2%5D", "attributes"),  # a list, not an object
        ("attributes=%7Bnope", "attributes"),
        ("attributes=%7B%22x%22%3ANaN%7D", "attributes"),
        ("limit=99", "limit"),
    ],
)
def test_why_not_names_the_bad_query_parameter(logging_server: ServerProcess, query: str, parameter: str) -> None:
    tenant = _tenant()
    with Client(logging_server.target, tenant=tenant) as client:
        offer = make_offer(client)
    answer = RestClient(logging_server.http_url, tenant=tenant).get(f"/api/v1/customers/c/why-not/{offer}?{query}")
    assert answer.status == 400, answer.body
    assert parameter in answer.violations(), answer.violations()


def test_why_not_over_grpc_matches_decides_explain(logging_server: ServerProcess) -> None:
    with Client(logging_server.target, tenant=_tenant()) as client:
        capped = make_offer(client, budget={"maxImpressions": 1})
        client.record_outcome("someone", capped, "impression", new_key())
        picky = make_offer(client, qualification={"propensityThreshold": 0.9})
        explained = {c.offer_id: c for c in decide(client, explain=True).candidates}
        for offer in (capped, picky):
            why = client.why_not("cust-1", offer, decision_time=DECISION_TIME)
            assert (why.reason, why.message) == (explained[offer].reason, explained[offer].message)
            assert not why.returned
        with pytest.raises(NotFoundError):
            client.why_not("cust-1", "act_0000000000000000")


def test_by_default_nothing_is_kept(server: ServerProcess, client: Client) -> None:
    make_offer(client)
    answer = decide(client)
    with pytest.raises(NotFoundError):
        client.get_decision(answer.decision_id)


def _rows(db: Path) -> int:
    return int(backends.query(db, "SELECT COUNT(*) FROM decision_log")[0][0])  # type: ignore[call-overload]


def test_kept_decisions_expire_by_the_servers_clock_and_are_deleted(db_path: Path) -> None:
    with InProcessServer(db_path, auth=False, decision_log_sample=1.0, decision_log_days=1) as server:
        with Client(server.target, tenant="retention") as client:
            offer = make_offer(client)
            old = decide(client).decision_id
            client.record_outcome("c", offer, "impression", new_key())  # the writer is FIFO: old is stored
            assert client.get_decision(old).decision_id == old
            server.clock.advance(timedelta(days=1, seconds=1))
            with pytest.raises(NotFoundError):
                client.get_decision(old)  # hidden at once, whatever the purge's timing
            new = decide(client).decision_id  # its write carries the purge that is due
            client.record_outcome("c", offer, "impression", new_key())
            assert client.get_decision(new).decision_id == new
        assert _rows(db_path) == 1
    # At start-up, the purge removes what expired while the server was down.
    later = server.clock.now() + timedelta(days=2)
    with InProcessServer(db_path, auth=False, start=later, decision_log_days=1) as server:
        with Client(server.target, tenant="retention") as client:
            make_offer(client)  # a write queued after the start-up purge: once acknowledged, the purge committed
            with pytest.raises(NotFoundError):
                client.get_decision(new)
        assert _rows(db_path) == 0
