"""RecordOutcome(s) end to end: idempotency, validation, bulk, lifecycle, and the effect on the next Decide."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from decide_helpers import (
    DECISION_TIME,
    decide,
    fates,
    make_offer,
    new_key,
    offer_ids,
    reason_of,
    record_impression,
    returned,
    source_name,
)
from serverproc import ServerProcess

from arbiter.client import (
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    outcome,
)
from arbiter.v1 import decisions_pb2

OUTCOME_ID = re.compile(r"out_[0-9a-f]{16}")
RECORDED = decisions_pb2.OUTCOME_STATUS_RECORDED
DUPLICATE = decisions_pb2.OUTCOME_STATUS_DUPLICATE
TYPES = ["impression", "click", "conversion", "dismiss", "not_interested", "complaint"]
EARLIER = DECISION_TIME - timedelta(hours=2)


@pytest.mark.parametrize("kind", TYPES)
def test_every_outcome_type_is_recorded(client: Client, kind: str) -> None:
    offer_id = make_offer(client)
    before = datetime.now(UTC)

    result = client.record_outcome("cust-1", offer_id, kind, new_key(), occurred_at=EARLIER, channel="web")

    assert result.status == RECORDED
    assert OUTCOME_ID.fullmatch(result.outcome_id), result.outcome_id
    recorded_at = result.recorded_at.ToDatetime(tzinfo=UTC)
    assert before - timedelta(seconds=2) <= recorded_at <= datetime.now(UTC) + timedelta(seconds=2)
    assert client.get_offer_stats(offer_id).lifetime_impressions == (1 if kind == "impression" else 0)


# --------------------------------------------------------------------------
# Idempotency
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"type": "click"},
        {"customer_id": "someone-else"},
        {"occurred_at": DECISION_TIME - timedelta(days=200)},
        {"channel": "email", "decision_id": "dec_0000000000000001"},
    ],
    ids=["same-payload", "other-type", "other-customer", "other-time", "other-channel-and-decision"],
)
def test_a_repeated_key_is_a_duplicate_with_the_first_result(client: Client, changes: dict[str, Any]) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 5}, qualification={"modelReference": "m-idem"})
    other_offer = make_offer(client)
    key = new_key()
    first = client.record_outcome("cust-1", offer_id, "impression", key, occurred_at=EARLIER)
    stats = client.get_offer_stats(offer_id)
    sent: dict[str, Any] = {"customer_id": "cust-1", "type": "impression", "occurred_at": EARLIER, **changes}

    repeats = [
        client.record_outcome(
            sent["customer_id"],
            offer_id,
            sent["type"],
            key,
            occurred_at=sent["occurred_at"],
            channel=sent.get("channel", ""),
            decision_id=sent.get("decision_id", ""),
        )
        for _ in range(3)
    ]
    other = client.record_outcome("cust-1", other_offer, "impression", key, occurred_at=EARLIER)

    assert first.status == RECORDED
    for repeat in [*repeats, other]:
        assert repeat.status == DUPLICATE
        assert repeat.outcome_id == first.outcome_id
        assert repeat.recorded_at == first.recorded_at
    assert client.get_offer_stats(offer_id) == stats
    assert client.get_offer_stats(other_offer).lifetime_impressions == 0


def test_idempotency_keys_are_per_tenant(client: Client, server: ServerProcess) -> None:
    offer_id = make_offer(client)
    key = new_key()
    first = client.record_outcome("cust-1", offer_id, "impression", key)
    with Client(server.target, tenant="t-other-" + new_key()[-12:]) as other:
        other_offer = make_offer(other)
        theirs = other.record_outcome("cust-1", other_offer, "impression", key)

    assert (first.status, theirs.status) == (RECORDED, RECORDED)
    assert theirs.outcome_id != first.outcome_id


def test_the_same_key_sent_concurrently_is_recorded_once(server: ServerProcess, client: Client, tenant: str) -> None:
    offer_id = make_offer(client, qualification={"modelReference": "m-race"})
    key = new_key()
    start = threading.Barrier(40)

    def send(n: int) -> decisions_pb2.OutcomeResult:
        with Client(server.target, tenant=tenant) as own:
            start.wait(timeout=30)
            if n % 2:
                return own.record_outcome(f"c-{n}", offer_id, "impression", key, occurred_at=EARLIER)
            (result,) = own.record_outcomes([outcome(f"c-{n}", offer_id, "impression", key, occurred_at=EARLIER)])
            return result

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(send, range(40)))

    assert sorted(r.status for r in results) == [RECORDED] + [DUPLICATE] * 39
    assert len({(r.outcome_id, r.recorded_at.ToMicroseconds()) for r in results}) == 1
    stats = client.get_offer_stats(offer_id)
    assert (stats.lifetime_impressions, stats.model_trials) == (1, 1)


def test_an_impression_recorded_by_decide_reported_again_is_a_duplicate(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 10})
    second = make_offer(client)
    decision = decide(client, record_impressions=True, limit=2)
    assert set(offer_ids(decision)) == {offer_id, second}
    assert client.get_offer_stats(offer_id).lifetime_impressions == 1

    reports = [
        client.record_outcome(
            "cust-1", offer_id, "impression", new_key("any"), decision_id=decision.decision_id, occurred_at=EARLIER
        )
        for _ in range(2)
    ]

    assert [r.status for r in reports] == [DUPLICATE, DUPLICATE]
    assert reports[0].outcome_id == reports[1].outcome_id and OUTCOME_ID.fullmatch(reports[0].outcome_id)
    assert client.get_offer_stats(offer_id).lifetime_impressions == 1
    # Not a duplicate: a click on it, or an impression under another decision id.
    click = client.record_outcome("cust-1", offer_id, "click", new_key(), decision_id=decision.decision_id)
    other = client.record_outcome("cust-1", offer_id, "impression", new_key(), decision_id="dec_00000000000000ff")
    assert (click.status, other.status) == (RECORDED, RECORDED)
    assert click.outcome_id != reports[0].outcome_id
    assert client.get_offer_stats(offer_id).lifetime_impressions == 2
    # In bulk too.
    (bulk,) = client.record_outcomes(
        [outcome("cust-1", second, "impression", new_key(), decision_id=decision.decision_id)]
    )
    assert bulk.status == DUPLICATE
    assert client.get_offer_stats(second).lifetime_impressions == 1


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

MISSING = [
    ("customerId", {"customer_id": ""}),
    ("customerId", {"customer_id": "   "}),
    ("customerId", {"customer_id": "c" * 257}),
    ("offerId", {"offer_id": ""}),
    ("idempotencyKey", {"key": ""}),
    ("idempotencyKey", {"key": "k" * 257}),
    ("type", {"type": decisions_pb2.OUTCOME_TYPE_UNSPECIFIED}),
    ("type", {"type": 99}),
    ("channel", {"channel": "x" * 65}),
]


def _outcome_args(offer: str, **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"customer_id": "cust-1", "offer_id": offer, "type": "click", "key": new_key()}
    args.update(changes)
    return args


@pytest.mark.parametrize(("field", "changes"), MISSING, ids=[str(m[1])[:40] for m in MISSING])
def test_a_missing_or_bad_field_is_invalid(client: Client, field: str, changes: dict[str, Any]) -> None:
    offer_id = make_offer(client)
    args = _outcome_args(offer_id, **changes)

    with pytest.raises(InvalidArgumentError) as info:
        client.record_outcome(
            args["customer_id"], args["offer_id"], args["type"], args["key"], channel=args.get("channel", "")
        )

    assert info.value.fields == [f"outcome.{field}"]
    assert client.get_offer_stats(offer_id).lifetime_impressions == 0


def test_the_longest_ids_and_keys_are_accepted(client: Client) -> None:
    offer_id = make_offer(client)

    result = client.record_outcome("c" * 256, offer_id, "impression", "k" * 256, channel="x" * 64)

    assert result.status == RECORDED


def test_every_missing_field_is_named_at_once(client: Client) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        client.record_outcome("", "", decisions_pb2.OUTCOME_TYPE_UNSPECIFIED, "")

    assert set(info.value.fields) == {"outcome.customerId", "outcome.offerId", "outcome.idempotencyKey", "outcome.type"}


def test_an_unknown_offer_is_not_found(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.record_outcome("cust-1", "act_0123456789abcdef", "click", new_key())
    assert missing.value.reason == "OFFER_NOT_FOUND"
    # A foreign tenant's offer is unknown too.
    with Client(client.target, tenant="t-foreign-" + new_key()[-10:]) as other:
        foreign = make_offer(other)
    with pytest.raises(NotFoundError) as missing:
        client.record_outcome("cust-1", foreign, "impression", new_key())
    assert missing.value.reason == "OFFER_NOT_FOUND"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"customer_id": ""}, "customerId"),
        ({"offer_id": ""}, "offerId"),
        ({"offer_id": "act_0123456789abcdef"}, "offerId"),
        ({"key": ""}, "idempotencyKey"),
        ({"type": decisions_pb2.OUTCOME_TYPE_UNSPECIFIED}, "type"),
    ],
    ids=["customer", "offer", "unknown-offer", "key", "type"],
)
@pytest.mark.parametrize("position", [0, 2, 4])
def test_one_bad_item_rejects_the_whole_batch(client: Client, bad: dict[str, Any], field: str, position: int) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 100})
    items = [_outcome_args(offer_id, type="impression") for _ in range(5)]
    items[position].update(bad)
    batch = [outcome(i["customer_id"], i["offer_id"], i["type"], i["key"], occurred_at=EARLIER) for i in items]

    with pytest.raises(InvalidArgumentError) as info:
        client.record_outcomes(batch)

    assert info.value.fields == [f"outcomes[{position}].{field}"]
    assert client.get_offer_stats(offer_id).lifetime_impressions == 0
    # None of the good items was kept: sending them now records them for the first time.
    good = [b for n, b in enumerate(batch) if n != position]
    assert [r.status for r in client.record_outcomes(good)] == [RECORDED] * 4
    assert client.get_offer_stats(offer_id).lifetime_impressions == 4


def test_several_bad_items_are_all_named(client: Client) -> None:
    offer_id = make_offer(client)
    batch = [
        outcome("", offer_id, "click", new_key()),
        outcome("c", offer_id, "click", new_key()),
        outcome("c", "act_0123456789abcdef", "click", ""),
    ]

    with pytest.raises(InvalidArgumentError) as info:
        client.record_outcomes(batch)

    assert set(info.value.fields) == {"outcomes[0].customerId", "outcomes[2].offerId", "outcomes[2].idempotencyKey"}


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (1000, True), (1001, False)])
def test_a_batch_holds_1_to_1000_outcomes(client: Client, count: int, ok: bool) -> None:
    offer_id = make_offer(client)
    batch = [outcome(f"c-{n}", offer_id, "impression", new_key(), occurred_at=EARLIER) for n in range(count)]

    if ok:
        results = client.record_outcomes(batch)
        assert [r.status for r in results] == [RECORDED] * count
        assert len({r.outcome_id for r in results}) == count
    else:
        with pytest.raises(InvalidArgumentError) as info:
            client.record_outcomes(batch)
        assert info.value.fields == ["outcomes"]
    assert client.get_offer_stats(offer_id).lifetime_impressions == (count if ok else 0)


def test_bulk_reports_recorded_or_duplicate_per_item(client: Client) -> None:
    offer_id = make_offer(client)
    k1, k2, k3, k4 = (new_key() for _ in range(4))

    first = client.record_outcomes(
        [
            outcome("a", offer_id, "impression", k1, occurred_at=EARLIER),
            outcome("b", offer_id, "impression", k2, occurred_at=EARLIER),
            outcome("c", offer_id, "click", k1, occurred_at=EARLIER),  # k1 again, within the batch
            outcome("d", offer_id, "impression", k3, occurred_at=EARLIER),
        ]
    )
    second = client.record_outcomes(
        [
            outcome("b", offer_id, "impression", k2, occurred_at=EARLIER),
            outcome("e", offer_id, "impression", k4, occurred_at=EARLIER),
            outcome("d", offer_id, "impression", k3, occurred_at=EARLIER),
        ]
    )
    single = client.record_outcome("x", offer_id, "impression", k4)

    assert [r.status for r in first] == [RECORDED, RECORDED, DUPLICATE, RECORDED]
    assert first[2].outcome_id == first[0].outcome_id and first[2].recorded_at == first[0].recorded_at
    assert len({first[0].outcome_id, first[1].outcome_id, first[3].outcome_id}) == 3
    assert [r.status for r in second] == [DUPLICATE, RECORDED, DUPLICATE]
    assert (second[0].outcome_id, second[2].outcome_id) == (first[1].outcome_id, first[3].outcome_id)
    assert (single.status, single.outcome_id) == (DUPLICATE, second[1].outcome_id)
    assert client.get_offer_stats(offer_id).lifetime_impressions == 4


# --------------------------------------------------------------------------
# Offer lifecycle
# --------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["paused", "archived"])
def test_paused_and_archived_offers_accept_late_outcomes(client: Client, status: str) -> None:
    offer_id = make_offer(client)
    client.set_offer_status(offer_id, status)

    single = client.record_outcome("cust-1", offer_id, "impression", new_key(), occurred_at=EARLIER)
    bulk = client.record_outcomes([outcome("cust-2", offer_id, "conversion", new_key(), occurred_at=EARLIER)])

    assert single.status == RECORDED and [r.status for r in bulk] == [RECORDED]
    assert client.get_offer_stats(offer_id).lifetime_impressions == 1


def test_outcomes_while_paused_count_once_the_offer_is_active_again(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 3}, qualification={"modelReference": "m-pause"})
    client.set_offer_status(offer_id, "paused")
    for n in range(3):
        record_impression(client, f"c-{n}", offer_id, EARLIER)
    for n in range(2):
        client.record_outcome(f"c-{n}", offer_id, "click", new_key(), occurred_at=EARLIER + timedelta(minutes=1))

    client.set_offer_status(offer_id, "active")

    response = decide(client, explain=True)
    assert reason_of(response, offer_id) == "MAX_IMPRESSIONS_REACHED"
    assert fates(response)[offer_id].propensity == (2 + 1) / (3 + 2)
    # Raising the cap is visible to the next Decide.
    client.update_offer({"id": offer_id, "budget": {"maxImpressions": 4}})
    assert returned(decide(client), offer_id).propensity == (2 + 1) / (3 + 2)


def test_draft_offers_accept_outcomes_too(client: Client) -> None:
    offer_id = client.create_offer({"name": "draft " + new_key(), "status": "draft"}).id

    assert client.record_outcome("cust-1", offer_id, "impression", new_key()).status == RECORDED


def test_deleted_offers_are_not_found(client: Client) -> None:
    plain = make_offer(client)
    with_history = make_offer(client)
    key = new_key()
    record_impression(client, "cust-1", with_history, EARLIER, key=key)
    client.delete_offer(plain)
    client.delete_offer(with_history, force=True)

    for offer_id in (plain, with_history):
        with pytest.raises(NotFoundError) as missing:
            client.record_outcome("cust-1", offer_id, "click", new_key())
        assert missing.value.reason == "OFFER_NOT_FOUND"
        with pytest.raises(InvalidArgumentError) as info:
            client.record_outcomes([outcome("cust-1", offer_id, "click", new_key())])
        assert info.value.fields == ["outcomes[0].offerId"]
        with pytest.raises(NotFoundError) as missing:
            client.get_offer_stats(offer_id)
        assert missing.value.reason == "OFFER_NOT_FOUND"


def test_deleting_an_offer_with_outcomes_needs_force(client: Client) -> None:
    offer_id = make_offer(client)
    client.record_outcome("cust-1", offer_id, "dismiss", new_key(), occurred_at=EARLIER)

    with pytest.raises(FailedPreconditionError) as info:
        client.delete_offer(offer_id)

    assert info.value.reason == "OFFER_HAS_HISTORY"
    assert "archive" in info.value.message
    assert client.get_offer(offer_id).id == offer_id
    client.delete_offer(offer_id, force=True)
    with pytest.raises(NotFoundError) as missing:
        client.get_offer(offer_id)
    assert missing.value.reason == "OFFER_NOT_FOUND"
    assert offer_id not in offer_ids(decide(client, limit=50))


def test_an_offer_with_impressions_recorded_by_decide_has_history(client: Client) -> None:
    offer_id = make_offer(client)
    assert offer_ids(decide(client, record_impressions=True)) == [offer_id]

    with pytest.raises(FailedPreconditionError) as info:
        client.delete_offer(offer_id)

    assert info.value.reason == "OFFER_HAS_HISTORY"


# --------------------------------------------------------------------------
# Outcomes change the very next Decide
# --------------------------------------------------------------------------


def test_an_impression_applies_recency_to_the_next_decide(client: Client) -> None:
    offer_id = make_offer(client, qualification={"recency": 1})
    assert offer_ids(decide(client)) == [offer_id]

    client.record_outcome("cust-1", offer_id, "impression", new_key(), occurred_at=DECISION_TIME - timedelta(hours=3))

    assert reason_of(decide(client, explain=True), offer_id) == "RECENCY"
    assert offer_ids(decide(client, "cust-2")) == [offer_id]


def test_a_decide_recorded_impression_applies_recency_to_the_next_decide(client: Client) -> None:
    offer_id = make_offer(client, qualification={"recency": 1})
    assert offer_ids(decide(client, record_impressions=True)) == [offer_id]

    assert reason_of(decide(client, explain=True), offer_id) == "RECENCY"
    later = decide(client, explain=True, decision_time=DECISION_TIME + timedelta(days=1))
    assert reason_of(later, offer_id) is None


def test_a_bulk_impression_reaches_the_cap_for_the_next_decide(client: Client) -> None:
    offer_id = make_offer(client, budget={"maxImpressions": 3})
    client.record_outcomes(
        [outcome(f"c-{n}", offer_id, "impression", new_key(), occurred_at=EARLIER) for n in range(2)]
    )
    assert offer_ids(decide(client)) == [offer_id]

    client.record_outcomes([outcome("c-9", offer_id, "impression", new_key(), occurred_at=EARLIER)])

    assert reason_of(decide(client, explain=True), offer_id) == "MAX_IMPRESSIONS_REACHED"


def _adaptive(client: Client, offer_id: str) -> tuple[float, str]:
    decided = returned(decide(client, "probe", explain=True), offer_id)
    return decided.propensity, source_name(decided)


# Outcomes in order: (customer, type); then trials, positives.
MODEL_CASES: list[tuple[str, list[tuple[str, str]], int, int]] = [
    ("nothing", [], 0, 0),
    ("one-impression", [("a", "impression")], 1, 0),
    ("impression-then-click", [("a", "impression"), ("a", "click")], 1, 1),
    ("impression-then-conversion", [("a", "impression"), ("a", "conversion")], 1, 1),
    ("click-without-impression", [("a", "click")], 0, 0),
    ("click-before-the-impression", [("a", "click"), ("a", "impression")], 1, 0),
    ("clicks-capped-at-impressions", [("a", "impression"), ("a", "click"), ("a", "click"), ("a", "conversion")], 1, 1),
    ("click-by-someone-else", [("a", "impression"), ("b", "click")], 1, 0),
    ("negatives-are-no-positives", [("a", "impression"), ("a", "dismiss"), ("a", "complaint")], 1, 0),
    (
        "two-customers",
        [("a", "impression"), ("b", "impression"), ("a", "impression"), ("b", "click"), ("a", "click"), ("a", "click")],
        3,
        3,
    ),
    (
        "mixed",
        [("a", "impression"), ("b", "impression"), ("c", "impression"), ("d", "impression"), ("c", "conversion")],
        4,
        1,
    ),
]


@pytest.mark.parametrize(
    ("events", "trials", "positives"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES]
)
def test_the_adaptive_model_learns_from_each_outcome(
    client: Client, events: list[tuple[str, str]], trials: int, positives: int
) -> None:
    offer_id = make_offer(client, qualification={"modelReference": "m-adapt"})
    twin = make_offer(client, qualification={"modelReference": "m-adapt"})  # same model, its own counts
    assert _adaptive(client, offer_id) == (0.5, "ADAPTIVE_MODEL")
    expected = (positives + 1) / (trials + 2)

    estimates = []
    for n, (customer, kind) in enumerate(events):
        at = DECISION_TIME - timedelta(hours=10) + timedelta(minutes=n)
        client.record_outcome(customer, offer_id, kind, new_key(), occurred_at=at)
        estimates.append(_adaptive(client, offer_id)[0])  # visible to the very next Decide

    assert _adaptive(client, offer_id) == (expected, "ADAPTIVE_MODEL")
    assert not estimates or estimates[-1] == expected
    assert _adaptive(client, twin) == (0.5, "ADAPTIVE_MODEL")
    stats = client.get_offer_stats(offer_id)
    assert (stats.model_trials, stats.model_positives, stats.model_estimate) == (trials, positives, expected)
    assert stats.model_reference == "m-adapt"


# "Impressions followed by a click or conversion": followed in time (occurred_at), not in the order the
# reports arrive. Outcomes as reported, in this order: (customer, type, minutes after a base instant);
# then trials, positives.
EVENT_TIME_CASES: list[tuple[str, list[tuple[str, str, int]], int, int]] = [
    ("click-happened-before-the-impression", [("a", "impression", 0), ("a", "click", -5)], 1, 0),
    ("click-reported-before-its-impression", [("a", "click", 5), ("a", "impression", 0)], 1, 1),
    (
        "mixed-order",
        [
            ("a", "conversion", 10),
            ("b", "impression", 0),
            ("a", "impression", 0),
            ("b", "click", -1),
            ("b", "click", 3),
        ],
        2,
        2,
    ),
]


@pytest.mark.parametrize(
    ("events", "trials", "positives"), [c[1:] for c in EVENT_TIME_CASES], ids=[c[0] for c in EVENT_TIME_CASES]
)
@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_followed_by_a_click_is_read_in_event_time(
    client: Client, events: list[tuple[str, str, int]], trials: int, positives: int, bulk: bool
) -> None:
    offer_id = make_offer(client, qualification={"modelReference": "m-order"})
    items = [
        outcome(customer, offer_id, kind, new_key(), occurred_at=EARLIER + timedelta(minutes=minutes))
        for customer, kind, minutes in events
    ]

    if bulk:
        client.record_outcomes(items)
    else:
        for item in items:
            client.record_outcome(
                item.customer_id,
                offer_id,
                item.type,
                item.idempotency_key,
                occurred_at=item.occurred_at.ToDatetime(tzinfo=UTC),
            )

    stats = client.get_offer_stats(offer_id)
    assert (stats.model_trials, stats.model_positives) == (trials, positives)
    assert _adaptive(client, offer_id) == ((positives + 1) / (trials + 2), "ADAPTIVE_MODEL")


def test_the_adaptive_model_scores_and_qualifies(client: Client) -> None:
    learner = make_offer(client, priority="low", qualification={"modelReference": "m-rank", "propensityThreshold": 0.6})
    steady = make_offer(client, priority="medium")
    first = decide(client, explain=True)
    assert reason_of(first, learner) == "BELOW_PROPENSITY_THRESHOLD"

    batch = []
    for n in range(8):  # 8 impressions, each followed by a click: 9/10
        batch.append(outcome(f"c-{n}", learner, "impression", new_key(), occurred_at=EARLIER))
        batch.append(outcome(f"c-{n}", learner, "click", new_key(), occurred_at=EARLIER + timedelta(minutes=1)))
    client.record_outcomes(batch)

    after = decide(client, explain=True)
    assert offer_ids(after) == [steady, learner]  # 0.5 * 50 = 0.25 > 0.9 * 25 = 0.225
    decided = returned(after, learner)
    assert decided.propensity == 0.9 and source_name(decided) == "ADAPTIVE_MODEL"
    assert decided.score == 0.9 * 25 / 100
    assert fates(after)[learner].selected


def test_the_model_is_kept_per_model_reference(client: Client) -> None:
    offer_id = make_offer(client, qualification={"modelReference": "m-one"})
    for n in range(2):
        record_impression(client, f"c-{n}", offer_id, EARLIER)
        client.record_outcome(f"c-{n}", offer_id, "click", new_key(), occurred_at=EARLIER + timedelta(minutes=1))
    assert _adaptive(client, offer_id) == (3 / 4, "ADAPTIVE_MODEL")

    client.update_offer({"id": offer_id, "qualification": {"modelReference": "m-two"}})
    assert _adaptive(client, offer_id) == (0.5, "ADAPTIVE_MODEL")
    record_impression(client, "c-9", offer_id, EARLIER)
    assert _adaptive(client, offer_id) == (1 / 3, "ADAPTIVE_MODEL")

    client.update_offer({"id": offer_id, "qualification": {"modelReference": "m-one"}})
    assert _adaptive(client, offer_id) == (3 / 4, "ADAPTIVE_MODEL")


def test_decide_recorded_impressions_train_the_model(client: Client) -> None:
    offer_id = make_offer(client, qualification={"modelReference": "m-dec"})
    decisions = [decide(client, f"c-{n}", record_impressions=True) for n in range(3)]
    assert all(offer_ids(d) == [offer_id] for d in decisions)

    # Decide's impressions happen at the decision time; the click comes a minute after.
    clicked_at = DECISION_TIME + timedelta(minutes=1)
    client.record_outcome(
        "c-0", offer_id, "click", new_key(), decision_id=decisions[0].decision_id, occurred_at=clicked_at
    )

    assert _adaptive(client, offer_id) == ((1 + 1) / (3 + 2), "ADAPTIVE_MODEL")
