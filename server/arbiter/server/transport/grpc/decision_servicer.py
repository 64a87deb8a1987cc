"""DecisionService: Decide, outcomes and offer stats over gRPC (transport layer)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from google.protobuf import struct_pb2, timestamp_pb2

from arbiter.v1 import decisions_pb2, decisions_pb2_grpc

from ...app.decisions import Decision, DecisionUseCases
from ...app.outcomes import OutcomeUseCases
from ...domain.decision_log import LoggedDecision
from ...domain.decisions import (
    MAX_ATTRIBUTE_VALUES,
    MAX_ATTRIBUTES_BYTES,
    MAX_BATCH_DECISIONS,
    MAX_STREAM_DECISIONS,
    TOO_MANY_ATTRIBUTE_VALUES,
    DecisionRequest,
    attributes_too_large,
    batch_size_problem,
)
from ...domain.errors import Decoded, InvalidArgument, ResourceExhausted, ViolationCollector
from ...domain.offers import from_micros
from ...domain.outcomes import SERVER_TIME, OutcomeInput, OutcomeRecord, OutcomeType, bulk_size_problem
from ...domain.timekeeping import event_time_problem, to_epoch_micros
from .interceptor import principal
from .messages import count_struct_values, enum_from_proto, struct_to_dict, timestamp_to_datetime

_OUTCOME_TYPES = {int(t): t for t in OutcomeType}
# BatchDecide's whole answer is one message: it must fit what gRPC clients accept by default.
BATCH_ANSWER_BYTES = 4 * 1024 * 1024
# No attributes within the domain's limits take more protobuf bytes than this: each value adds
# at most 16 bytes of framing to its compact JSON (a number's 8-byte double, tags, lengths).
_ATTRIBUTES_STRUCT_BYTES = MAX_ATTRIBUTES_BYTES + 16 * MAX_ATTRIBUTE_VALUES


def _enum(number: int) -> Any:
    """A proto enum field's value from the domain enum's number (the numbers match by design)."""
    return number


class DecisionServicer(decisions_pb2_grpc.DecisionServiceServicer):
    """Decide for a customer, record what happened, report an offer's counters."""

    def __init__(self, decisions: DecisionUseCases, outcomes: OutcomeUseCases) -> None:
        self._decisions = decisions
        self._outcomes = outcomes

    async def Decide(
        self, request: decisions_pb2.DecideRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.DecideResponse:
        decision = await self._decisions.decide(principal(), decision_request_from_proto(request))
        return decide_response(decision)

    async def BatchDecide(
        self, request: decisions_pb2.BatchDecideRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.BatchDecideResponse:
        response = decisions_pb2.BatchDecideResponse()
        size = 0
        async for decision in self._decisions.decide_many(
            principal(),
            _decoded_batch(request.requests, MAX_BATCH_DECISIONS),
            limit=MAX_BATCH_DECISIONS,
            one_answer=True,
        ):
            answer = decide_response(decision)
            size += answer.ByteSize() + 8  # its tag and length
            if size > BATCH_ANSWER_BYTES:
                raise ResourceExhausted(
                    f"the answers come to more than {BATCH_ANSWER_BYTES:,} bytes, a client's default receive limit: "
                    "decide fewer customers a call, or use StreamDecide",
                    reason="ANSWER_TOO_LARGE",
                )
            response.responses.append(answer)
        return response

    async def StreamDecide(
        self, request: decisions_pb2.StreamDecideRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[decisions_pb2.DecideResponse]:
        async for decision in self._decisions.decide_many(
            principal(),
            _decoded_batch(request.requests, MAX_STREAM_DECISIONS),
            limit=MAX_STREAM_DECISIONS,
            one_answer=False,
        ):
            yield decide_response(decision)

    async def RecordOutcome(
        self, request: decisions_pb2.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.RecordOutcomeResponse:
        v = ViolationCollector()
        outcome = _outcome_input(request.outcome, v, "outcome.")
        (record,) = await self._outcomes.record(principal(), Decoded([outcome], tuple(v.violations)), bulk=False)
        response = decisions_pb2.RecordOutcomeResponse()
        _fill_result(response.result, record)
        return response

    async def RecordOutcomes(
        self, request: decisions_pb2.RecordOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.RecordOutcomesResponse:
        # Too many items is refused from the count alone: converting each costs the event loop
        # microseconds, so a few MB of tiny outcomes would take it for most of a second. (An
        # empty bulk goes on to the use case, which refuses it the same way after its role check.)
        problem = bulk_size_problem(len(request.outcomes)) if request.outcomes else None
        if problem is not None:
            raise InvalidArgument.single("outcomes", problem)
        v = ViolationCollector()
        outcomes = [_outcome_input(o, v, f"outcomes[{i}].") for i, o in enumerate(request.outcomes)]
        records = await self._outcomes.record(principal(), Decoded(outcomes, tuple(v.violations)), bulk=True)
        response = decisions_pb2.RecordOutcomesResponse()
        for record in records:
            _fill_result(response.results.add(), record)
        return response

    async def GetDecision(
        self, request: decisions_pb2.GetDecisionRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.GetDecisionResponse:
        logged = await self._decisions.get_decision(principal(), request.decision_id)
        return decisions_pb2.GetDecisionResponse(decision=logged_decision_to_proto(logged))

    async def WhyNot(
        self, request: decisions_pb2.WhyNotRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.WhyNotResponse:
        decide = decisions_pb2.DecideRequest(
            customer_id=request.customer_id,
            segments=request.segments,
            offer_propensities=request.offer_propensities,
            model_propensities=request.model_propensities,
            channel=request.channel,
            limit=request.limit,
        )
        if request.HasField("decision_time"):
            decide.decision_time.CopyFrom(request.decision_time)
        if request.HasField("attributes"):
            decide.attributes.CopyFrom(request.attributes)
        answer = await self._decisions.why_not(principal(), request.offer_id, decision_request_from_proto(decide))
        response = decisions_pb2.WhyNotResponse(
            offer_id=answer.offer_id,
            step=_enum(answer.step.value),
            reason=_enum(answer.reason.value),
            message=answer.message,
            returned=answer.returned,
            rank=answer.rank,
            score=answer.score,
            propensity=answer.propensity,
        )
        response.decision_time.FromMicroseconds(answer.decision_us)
        return response

    async def GetOfferStats(
        self, request: decisions_pb2.GetOfferStatsRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.GetOfferStatsResponse:
        stats = await self._decisions.offer_stats(principal(), request.offer_id)
        counts = stats.counts
        out = decisions_pb2.OfferStats(
            offer_id=stats.offer.id,
            lifetime_impressions=counts.lifetime_impressions,
            today=stats.today.isoformat(),
            timezone=stats.timezone,
            today_impressions=counts.today_impressions,
            today_spend=from_micros(counts.today_spend_micros),
            model_trials=counts.model_trials,
            model_positives=counts.model_positives,
        )
        if stats.remaining_impressions is not None:
            out.remaining_impressions = stats.remaining_impressions
        if stats.remaining_daily_budget_micros is not None:
            out.remaining_daily_budget = from_micros(stats.remaining_daily_budget_micros)
        if stats.model_reference:
            out.model_reference = stats.model_reference
            out.model_estimate = stats.model_estimate
        return decisions_pb2.GetOfferStatsResponse(stats=out)


def decide_response(decision: Decision) -> decisions_pb2.DecideResponse:
    """A decision as Decide answers it (BatchDecide and StreamDecide answer each request the same way)."""
    result = decision.result
    response = decisions_pb2.DecideResponse(decision_id=decision.decision_id)
    response.decision_time.FromMicroseconds(decision.decision_us)
    for decided in result.offers:
        offer = decided.offer
        out = response.offers.add(
            rank=decided.rank,
            offer_id=offer.id,
            name=offer.name,
            short_desc=offer.short_desc,
            score=decided.score,
            propensity=decided.propensity,
            propensity_source=decided.source.value,
            priority_score=offer.priority_score,
            mandatory=offer.mandatory,
            category_id=offer.category_id,
            sub_category_id=offer.sub_category_id,
        )
        out.tags.extend(offer.tags)
        if decided.personalization:
            out.personalization.update(decided.personalization)
    if result.candidates is not None:
        for fate in result.candidates:
            response.candidates.add(
                offer_id=fate.offer.id,
                name=fate.offer.name,
                selected=fate.selected,
                reason=fate.reason.value,
                message=fate.message,
                score=fate.score,
                propensity=fate.propensity,
                mandatory=fate.offer.mandatory,
            )
    return response


def _decoded_batch(requests: Sequence[decisions_pb2.DecideRequest], limit: int) -> list[Decoded[DecisionRequest]]:
    """Each request decoded as Decide decodes it; too many is refused from the count alone, before any is read.

    (An empty batch goes on to the use case, which refuses it the same way after its role check.)
    """
    problem = batch_size_problem(len(requests), limit) if requests else None
    if problem is not None:
        raise InvalidArgument.single("requests", problem)
    return [decision_request_from_proto(request) for request in requests]


def _event_us(ts: timestamp_pb2.Timestamp, v: ViolationCollector, path: str) -> int:
    """A decision's or an outcome's time in microseconds; SERVER_TIME, with a violation, when out of range."""
    moment = timestamp_to_datetime(ts, v, path)
    if moment is None:
        return SERVER_TIME
    micros = to_epoch_micros(moment)
    problem = event_time_problem(micros)
    if problem is not None:
        v.add(path, problem)
        return SERVER_TIME
    return micros


def decision_request_from_proto(request: decisions_pb2.DecideRequest) -> Decoded[DecisionRequest]:
    v = ViolationCollector()
    decision_us = (
        _event_us(request.decision_time, v, "decisionTime") if request.HasField("decision_time") else SERVER_TIME
    )
    attributes = _attributes(request.attributes, v) if request.HasField("attributes") else {}
    decision = DecisionRequest(
        customer_id=request.customer_id,
        decision_us=decision_us,
        segments=frozenset(request.segments),
        attributes=attributes,
        offer_propensities=dict(request.offer_propensities),
        model_propensities=dict(request.model_propensities),
        channel=request.channel,
        limit=request.limit,
        category_ids=frozenset(request.category_ids),
        sub_category_ids=frozenset(request.sub_category_ids),
        tags=frozenset(request.tags),
        explain=request.explain,
        dry_run=request.dry_run,
        record_impressions=request.record_impressions,
    )
    return Decoded(decision, tuple(v.violations))


def _attributes(struct: struct_pb2.Struct, v: ViolationCollector) -> dict[str, Any]:
    """The attributes as a dict; ones far over the domain's limits are refused from their size or count,
    checked cheaply before the conversion, whose cost grows with every value (the domain checks the rest)."""
    size = struct.ByteSize()
    if size > _ATTRIBUTES_STRUCT_BYTES:
        v.add("attributes", attributes_too_large(f"{size:,} bytes as protobuf"))
        return {}
    if count_struct_values(struct, MAX_ATTRIBUTE_VALUES) > MAX_ATTRIBUTE_VALUES:
        v.add("attributes", TOO_MANY_ATTRIBUTE_VALUES)
        return {}
    return struct_to_dict(struct, v, "attributes")


def _outcome_input(message: decisions_pb2.Outcome, v: ViolationCollector, prefix: str) -> OutcomeInput:
    outcome_type = enum_from_proto(message.type, _OUTCOME_TYPES, v, prefix + "type", "outcome type")
    occurred_us = (
        _event_us(message.occurred_at, v, prefix + "occurredAt") if message.HasField("occurred_at") else SERVER_TIME
    )
    return OutcomeInput(
        customer_id=message.customer_id,
        offer_id=message.offer_id,
        type=outcome_type,
        decision_id=message.decision_id,
        channel=message.channel,
        occurred_us=occurred_us,
        idempotency_key=message.idempotency_key,
    )


def _fill_result(out: decisions_pb2.OutcomeResult, record: OutcomeRecord) -> None:
    out.outcome_id = record.outcome_id
    out.status = decisions_pb2.OUTCOME_STATUS_DUPLICATE if record.duplicate else decisions_pb2.OUTCOME_STATUS_RECORDED
    out.recorded_at.FromMicroseconds(record.recorded_us)


def decision_request_to_proto(r: DecisionRequest) -> decisions_pb2.DecideRequest:
    """A Decide request as the funnel read it, back in its message form (for the decision log)."""
    out = decisions_pb2.DecideRequest(
        customer_id=r.customer_id,
        segments=sorted(r.segments),
        offer_propensities=r.offer_propensities,
        model_propensities=r.model_propensities,
        channel=r.channel,
        limit=r.limit,
        category_ids=sorted(r.category_ids),
        sub_category_ids=sorted(r.sub_category_ids),
        tags=sorted(r.tags),
        explain=r.explain,
        dry_run=r.dry_run,
        record_impressions=r.record_impressions,
    )
    out.decision_time.FromMicroseconds(r.decision_us)
    if r.attributes:
        out.attributes.update(r.attributes)
    return out


def logged_decision_to_proto(d: LoggedDecision) -> decisions_pb2.LoggedDecision:
    out = decisions_pb2.LoggedDecision(decision_id=d.decision_id, request=decision_request_to_proto(d.request))
    out.decision_time.FromMicroseconds(d.decision_us)
    out.logged_at.FromMicroseconds(d.logged_us)
    response = out.response
    response.decision_id = d.decision_id
    response.decision_time.FromMicroseconds(d.decision_us)
    for o in d.offers:
        item = response.offers.add(
            rank=o.rank,
            offer_id=o.offer_id,
            name=o.name,
            short_desc=o.short_desc,
            score=o.score,
            propensity=o.propensity,
            propensity_source=o.source,
            priority_score=o.priority_score,
            mandatory=o.mandatory,
            category_id=o.category_id,
            sub_category_id=o.sub_category_id,
            tags=o.tags,
        )
        if o.personalization:
            item.personalization.update(o.personalization)  # type: ignore[arg-type]
    for c in d.candidates:
        fate = decisions_pb2.Candidate(
            offer_id=c.offer_id,
            name=c.name,
            selected=c.selected,
            reason=_enum(c.reason.value),
            message=c.message,
            score=c.score,
            propensity=c.propensity,
            mandatory=c.mandatory,
        )
        out.candidates.append(fate)
        if d.request.explain:
            response.candidates.append(fate)
    return out
