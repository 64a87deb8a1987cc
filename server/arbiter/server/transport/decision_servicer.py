"""DecisionService: Decide, outcomes and offer stats over gRPC (transport layer)."""

from __future__ import annotations

from datetime import date

import grpc

from arbiter.v1 import decisions_pb2, decisions_pb2_grpc

from ..domain.access import Permission
from ..domain.decisions import DecisionRequest, effective_limit, validate_decision_request
from ..domain.errors import ViolationCollector
from ..domain.offers import from_micros
from ..domain.outcomes import OutcomeInput, OutcomeRecord, OutcomeType
from ..domain.timekeeping import to_epoch_micros, utc_now_us
from ..storage.decision_runner import DecisionRunner
from ..storage.outcome_store import OutcomeStore
from .access import AccessControl
from .context import tenant_of
from .errors import rpc
from .messages import struct_to_dict, timestamp_to_datetime

_OUTCOME_TYPES = {int(t): t for t in OutcomeType}


class DecisionServicer(decisions_pb2_grpc.DecisionServiceServicer):
    """Decide for a customer, record what happened, report an offer's counters."""

    def __init__(self, access: AccessControl, runner: DecisionRunner, outcomes: OutcomeStore) -> None:
        self.access = access
        self._runner = runner
        self._outcomes = outcomes

    @rpc(Permission.DECIDE)
    async def Decide(
        self, request: decisions_pb2.DecideRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.DecideResponse:
        tenant = tenant_of(context)
        decision = _decision_request(request)
        decision_id, result = await self._runner.decide(tenant, decision)
        response = decisions_pb2.DecideResponse(decision_id=decision_id)
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

    @rpc(Permission.DECIDE)
    async def RecordOutcome(
        self, request: decisions_pb2.RecordOutcomeRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.RecordOutcomeResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        outcome = _outcome_input(request.outcome, v, "outcome.")
        v.raise_if_any()
        (record,) = await self._outcomes.record(tenant, [outcome], bulk=False)
        response = decisions_pb2.RecordOutcomeResponse()
        _fill_result(response.result, record)
        return response

    @rpc(Permission.DECIDE)
    async def RecordOutcomes(
        self, request: decisions_pb2.RecordOutcomesRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.RecordOutcomesResponse:
        tenant = tenant_of(context)
        v = ViolationCollector()
        outcomes = [_outcome_input(o, v, f"outcomes[{i}].") for i, o in enumerate(request.outcomes)]
        v.raise_if_any()
        records = await self._outcomes.record(tenant, outcomes, bulk=True)
        response = decisions_pb2.RecordOutcomesResponse()
        for record in records:
            _fill_result(response.results.add(), record)
        return response

    @rpc(Permission.STATS)
    async def GetOfferStats(
        self, request: decisions_pb2.GetOfferStatsRequest, context: grpc.aio.ServicerContext
    ) -> decisions_pb2.GetOfferStatsResponse:
        stats = await self._runner.offer_stats(tenant_of(context), request.offer_id, utc_now_us())
        offer = stats.offer
        out = decisions_pb2.OfferStats(
            offer_id=offer.id,
            lifetime_impressions=stats.lifetime_impressions,
            today=date.fromordinal(stats.day).isoformat(),
            timezone=stats.timezone,
            today_impressions=stats.today_impressions,
            today_spend=from_micros(stats.today_spend_micros),
            model_trials=stats.model_trials,
            model_positives=stats.model_positives,
        )
        budget = offer.budget
        if budget is not None and budget.max_impressions is not None:
            out.remaining_impressions = max(0, budget.max_impressions - stats.lifetime_impressions)
        if budget is not None and budget.max_daily_budget_micros is not None:
            out.remaining_daily_budget = from_micros(max(0, budget.max_daily_budget_micros - stats.today_spend_micros))
        ref = offer.qualification.model_reference if offer.qualification else ""
        if ref:
            out.model_reference = ref
            out.model_estimate = stats.model_estimate
        return decisions_pb2.GetOfferStatsResponse(stats=out)


def _decision_request(request: decisions_pb2.DecideRequest) -> DecisionRequest:
    v = ViolationCollector()
    offer_propensities = dict(request.offer_propensities)
    model_propensities = dict(request.model_propensities)
    segments = list(request.segments)
    validate_decision_request(
        v,
        customer_id=request.customer_id,
        limit=request.limit,
        segments=segments,
        offer_propensities=offer_propensities,
        model_propensities=model_propensities,
        channel=request.channel,
        filters={
            "categoryIds": list(request.category_ids),
            "subCategoryIds": list(request.sub_category_ids),
            "tags": list(request.tags),
        },
    )
    if request.HasField("decision_time"):
        moment = timestamp_to_datetime(request.decision_time, v, "decisionTime")
        decision_us = to_epoch_micros(moment) if moment is not None else 0
    else:
        decision_us = utc_now_us()
    attributes = struct_to_dict(request.attributes, v, "attributes") if request.HasField("attributes") else {}
    v.raise_if_any()
    return DecisionRequest(
        customer_id=request.customer_id,
        decision_us=decision_us,
        segments=frozenset(segments),
        attributes=attributes,
        offer_propensities=offer_propensities,
        model_propensities=model_propensities,
        channel=request.channel,
        limit=effective_limit(request.limit),
        category_ids=frozenset(request.category_ids),
        sub_category_ids=frozenset(request.sub_category_ids),
        tags=frozenset(request.tags),
        explain=request.explain,
        dry_run=request.dry_run,
        record_impressions=request.record_impressions,
    )


def _outcome_input(message: decisions_pb2.Outcome, v: ViolationCollector, prefix: str) -> OutcomeInput:
    outcome_type = _OUTCOME_TYPES.get(message.type)
    if message.type != decisions_pb2.OUTCOME_TYPE_UNSPECIFIED and outcome_type is None:
        v.add(prefix + "type", f"unknown outcome type value {message.type}")
    occurred_us = utc_now_us()
    if message.HasField("occurred_at"):
        moment = timestamp_to_datetime(message.occurred_at, v, prefix + "occurredAt")
        if moment is not None:
            occurred_us = to_epoch_micros(moment)
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
