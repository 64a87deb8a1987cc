"""Offer messages <-> domain offers (transport layer)."""

from __future__ import annotations

from arbiter.v1 import offers_pb2

from ...domain.errors import Decoded, ViolationCollector
from ...domain.offers import Budget, Offer, OfferStatus, Priority, Qualification, Schedule, TimeWindow
from .messages import dict_to_struct, enum_from_proto, set_timestamp, struct_to_dict, timestamp_to_datetime

PRIORITY_FROM_PROTO: dict[offers_pb2.Priority, Priority] = {
    offers_pb2.PRIORITY_LOW: Priority.LOW,
    offers_pb2.PRIORITY_MEDIUM: Priority.MEDIUM,
    offers_pb2.PRIORITY_HIGH: Priority.HIGH,
    offers_pb2.PRIORITY_CRITICAL: Priority.CRITICAL,
}
PRIORITY_TO_PROTO = {domain: wire for wire, domain in PRIORITY_FROM_PROTO.items()}
STATUS_FROM_PROTO: dict[offers_pb2.OfferStatus, OfferStatus] = {
    offers_pb2.OFFER_STATUS_DRAFT: OfferStatus.DRAFT,
    offers_pb2.OFFER_STATUS_ACTIVE: OfferStatus.ACTIVE,
    offers_pb2.OFFER_STATUS_PAUSED: OfferStatus.PAUSED,
    offers_pb2.OFFER_STATUS_ARCHIVED: OfferStatus.ARCHIVED,
}
STATUS_TO_PROTO = {domain: wire for wire, domain in STATUS_FROM_PROTO.items()}


def status_from_proto(value: offers_pb2.OfferStatus, v: ViolationCollector, path: str) -> OfferStatus | None:
    return enum_from_proto(value, STATUS_FROM_PROTO, v, path, "status")


def offer_from_proto(msg: offers_pb2.Offer) -> Decoded[Offer]:
    """The domain offer a message describes; unset configs and optional fields become None.

    Problems that the message shape itself causes (unknown enum numbers,
    invalid timestamps, non-finite struct numbers) are collected, not raised.
    """
    v = ViolationCollector()
    priority = enum_from_proto(msg.priority, PRIORITY_FROM_PROTO, v, "priority", "priority")
    qualification = budget = schedule = None
    if msg.HasField("qualification"):
        q = msg.qualification
        qualification = Qualification(
            propensity_threshold=q.propensity_threshold if q.HasField("propensity_threshold") else None,
            recency=q.recency if q.HasField("recency") else None,
            required_segments=tuple(q.required_segments),
            model_reference=q.model_reference,
        )
    if msg.HasField("budget"):
        b = msg.budget
        budget = Budget(
            max_impressions=b.max_impressions if b.HasField("max_impressions") else None,
            max_daily_budget=b.max_daily_budget if b.HasField("max_daily_budget") else None,
            cost_per_action=b.cost_per_action if b.HasField("cost_per_action") else None,
        )
    if msg.HasField("schedule"):
        s = msg.schedule
        schedule = Schedule(
            start_date=timestamp_to_datetime(s.start_date, v, "schedule.startDate")
            if s.HasField("start_date")
            else None,
            end_date=timestamp_to_datetime(s.end_date, v, "schedule.endDate") if s.HasField("end_date") else None,
            days_of_week=tuple(s.days_of_week),
            time_window=TimeWindow(s.time_window.start, s.time_window.end) if s.HasField("time_window") else None,
            timezone=s.timezone,
        )
    offer = Offer(
        id=msg.id,
        name=msg.name,
        short_desc=msg.short_desc,
        category_id=msg.category_id,
        sub_category_id=msg.sub_category_id,
        priority=priority,
        mandatory=msg.mandatory,
        status=status_from_proto(msg.status, v, "status"),
        tags=tuple(msg.tags),
        qualification=qualification,
        budget=budget,
        schedule=schedule,
        custom_fields=struct_to_dict(msg.custom_fields, v, "customFields"),
    )
    return Decoded(offer, tuple(v.violations))


def offer_to_proto(offer: Offer, msg: offers_pb2.Offer | None = None) -> offers_pb2.Offer:
    """The message for a stored offer (filling `msg` when given)."""
    if msg is None:
        msg = offers_pb2.Offer()
    msg.id = offer.id
    msg.name = offer.name
    msg.short_desc = offer.short_desc
    msg.category_id = offer.category_id
    msg.sub_category_id = offer.sub_category_id
    if offer.priority is not None:
        msg.priority = PRIORITY_TO_PROTO[offer.priority]
    msg.mandatory = offer.mandatory
    if offer.status is not None:
        msg.status = STATUS_TO_PROTO[offer.status]
    msg.tags.extend(offer.tags)
    if (q := offer.qualification) is not None:
        mq = msg.qualification
        mq.SetInParent()
        if q.propensity_threshold is not None:
            mq.propensity_threshold = q.propensity_threshold
        if q.recency is not None:
            mq.recency = q.recency
        mq.required_segments.extend(q.required_segments)
        mq.model_reference = q.model_reference
    if (b := offer.budget) is not None:
        mb = msg.budget
        mb.SetInParent()
        if b.max_impressions is not None:
            mb.max_impressions = b.max_impressions
        if b.max_daily_budget is not None:
            mb.max_daily_budget = b.max_daily_budget
        if b.cost_per_action is not None:
            mb.cost_per_action = b.cost_per_action
    if (s := offer.schedule) is not None:
        ms = msg.schedule
        ms.SetInParent()
        if s.start_date is not None:
            set_timestamp(ms.start_date, s.start_date)
        if s.end_date is not None:
            set_timestamp(ms.end_date, s.end_date)
        ms.days_of_week.extend(s.days_of_week)
        if s.time_window is not None:
            ms.time_window.start = s.time_window.start
            ms.time_window.end = s.time_window.end
        ms.timezone = s.timezone
    if offer.custom_fields:
        dict_to_struct(offer.custom_fields, msg.custom_fields)
    if offer.created_at is not None:
        set_timestamp(msg.created_at, offer.created_at)
    if offer.updated_at is not None:
        set_timestamp(msg.updated_at, offer.updated_at)
    return msg
