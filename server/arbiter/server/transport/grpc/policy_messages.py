"""Contact policy messages <-> domain policies (transport layer)."""

from __future__ import annotations

from arbiter.v1 import contact_policies_pb2 as pb

from ...domain.errors import Decoded, ViolationCollector
from ...domain.policies import (
    AllowOverride,
    BudgetExhausted,
    CategorySuppression,
    ContactPolicy,
    ContactTimeWindow,
    Cooldown,
    CustomerTotalCap,
    FrequencyCap,
    MutualExclusion,
    OutcomeSuppression,
    PolicyScope,
    PolicyStatus,
    Rule,
    SegmentExclusion,
)
from .messages import enum_from_proto, set_timestamp

STATUS_FROM_PROTO: dict[pb.PolicyStatus, PolicyStatus] = {
    pb.POLICY_STATUS_ACTIVE: PolicyStatus.ACTIVE,
    pb.POLICY_STATUS_PAUSED: PolicyStatus.PAUSED,
    pb.POLICY_STATUS_ARCHIVED: PolicyStatus.ARCHIVED,
}
STATUS_TO_PROTO = {domain: wire for wire, domain in STATUS_FROM_PROTO.items()}
SCOPE_FROM_PROTO: dict[pb.PolicyScope, PolicyScope] = {
    pb.POLICY_SCOPE_GLOBAL: PolicyScope.GLOBAL,
    pb.POLICY_SCOPE_CATEGORY: PolicyScope.CATEGORY,
    pb.POLICY_SCOPE_SUB_CATEGORY: PolicyScope.SUB_CATEGORY,
    pb.POLICY_SCOPE_OFFER: PolicyScope.OFFER,
    pb.POLICY_SCOPE_CHANNEL: PolicyScope.CHANNEL,
}
SCOPE_TO_PROTO = {domain: wire for wire, domain in SCOPE_FROM_PROTO.items()}


def policy_status_from_proto(value: pb.PolicyStatus, v: ViolationCollector, path: str) -> PolicyStatus | None:
    return enum_from_proto(value, STATUS_FROM_PROTO, v, path, "policy status")


def _rule_from_proto(msg: pb.ContactPolicy) -> Rule | None:
    kind = msg.WhichOneof("rule")
    if kind == "frequency_cap":
        r = msg.frequency_cap
        return FrequencyCap(
            r.max_per_day if r.HasField("max_per_day") else None,
            r.max_per_week if r.HasField("max_per_week") else None,
            r.max_per_month if r.HasField("max_per_month") else None,
        )
    if kind == "cooldown":
        return Cooldown(msg.cooldown.min_hours)
    if kind == "customer_total_cap":
        t = msg.customer_total_cap
        return CustomerTotalCap(t.max_impressions, t.window_days, t.channel)
    if kind == "outcome_suppression":
        o = msg.outcome_suppression
        return OutcomeSuppression(tuple(int(x) for x in o.outcome_types), o.min_count, o.window_days)
    if kind == "category_suppression":
        return CategorySuppression(msg.category_suppression.hours)
    if kind == "mutual_exclusion":
        m = msg.mutual_exclusion
        return MutualExclusion(tuple(m.offer_ids), m.tag, m.window_days)
    if kind == "segment_exclusion":
        return SegmentExclusion(tuple(msg.segment_exclusion.segments))
    if kind == "time_window":
        w = msg.time_window
        return ContactTimeWindow(tuple(w.days_of_week), w.start, w.end)
    if kind == "budget_exhausted":
        return BudgetExhausted()
    if kind == "allow_override":
        return AllowOverride()
    return None


def policy_from_proto(msg: pb.ContactPolicy) -> Decoded[ContactPolicy]:
    v = ViolationCollector()
    scope = enum_from_proto(msg.scope, SCOPE_FROM_PROTO, v, "scope", "scope")
    policy = ContactPolicy(
        id=msg.id,
        name=msg.name,
        description=msg.description,
        status=policy_status_from_proto(msg.status, v, "status"),
        priority=msg.priority,
        scope=scope,
        scope_id=msg.scope_id,
        bypassable=msg.bypassable if msg.HasField("bypassable") else None,
        rule=_rule_from_proto(msg),
    )
    return Decoded(policy, tuple(v.violations))


def policy_to_proto(policy: ContactPolicy) -> pb.ContactPolicy:
    msg = pb.ContactPolicy(
        id=policy.id,
        name=policy.name,
        description=policy.description,
        priority=policy.priority,
        scope_id=policy.scope_id,
    )
    if policy.status is not None:
        msg.status = STATUS_TO_PROTO[policy.status]
    if policy.scope is not None:
        msg.scope = SCOPE_TO_PROTO[policy.scope]
    if policy.bypassable is not None:
        msg.bypassable = policy.bypassable
    rule = policy.rule
    if isinstance(rule, FrequencyCap):
        cap = msg.frequency_cap
        cap.SetInParent()
        if rule.max_per_day is not None:
            cap.max_per_day = rule.max_per_day
        if rule.max_per_week is not None:
            cap.max_per_week = rule.max_per_week
        if rule.max_per_month is not None:
            cap.max_per_month = rule.max_per_month
    elif isinstance(rule, Cooldown):
        msg.cooldown.min_hours = rule.min_hours
    elif isinstance(rule, CustomerTotalCap):
        msg.customer_total_cap.CopyFrom(
            pb.CustomerTotalCapRule(
                max_impressions=rule.max_impressions, window_days=rule.window_days, channel=rule.channel
            )
        )
    elif isinstance(rule, OutcomeSuppression):
        msg.outcome_suppression.CopyFrom(
            pb.OutcomeSuppressionRule(
                outcome_types=list(rule.outcome_types),  # type: ignore[arg-type]
                min_count=rule.min_count,
                window_days=rule.window_days,
            )
        )
    elif isinstance(rule, CategorySuppression):
        msg.category_suppression.hours = rule.hours
    elif isinstance(rule, MutualExclusion):
        msg.mutual_exclusion.CopyFrom(
            pb.MutualExclusionRule(offer_ids=list(rule.offer_ids), tag=rule.tag, window_days=rule.window_days)
        )
    elif isinstance(rule, SegmentExclusion):
        msg.segment_exclusion.CopyFrom(pb.SegmentExclusionRule(segments=list(rule.segments)))
    elif isinstance(rule, ContactTimeWindow):
        msg.time_window.CopyFrom(
            pb.TimeWindowRule(days_of_week=list(rule.days_of_week), start=rule.start, end=rule.end)
        )
    elif isinstance(rule, BudgetExhausted):
        msg.budget_exhausted.SetInParent()
    elif isinstance(rule, AllowOverride):
        msg.allow_override.SetInParent()
    if policy.created_at is not None:
        set_timestamp(msg.created_at, policy.created_at)
    if policy.updated_at is not None:
        set_timestamp(msg.updated_at, policy.updated_at)
    return msg
