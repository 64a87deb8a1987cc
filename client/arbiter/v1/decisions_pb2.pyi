import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DropReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_REASON_UNSPECIFIED: _ClassVar[DropReason]
    DROP_REASON_SCHEDULE_NOT_STARTED: _ClassVar[DropReason]
    DROP_REASON_SCHEDULE_ENDED: _ClassVar[DropReason]
    DROP_REASON_SCHEDULE_DAY: _ClassVar[DropReason]
    DROP_REASON_SCHEDULE_TIME_WINDOW: _ClassVar[DropReason]
    DROP_REASON_MISSING_SEGMENTS: _ClassVar[DropReason]
    DROP_REASON_BELOW_PROPENSITY_THRESHOLD: _ClassVar[DropReason]
    DROP_REASON_RECENCY: _ClassVar[DropReason]
    DROP_REASON_CONTACT_POLICY: _ClassVar[DropReason]
    DROP_REASON_MAX_IMPRESSIONS_REACHED: _ClassVar[DropReason]
    DROP_REASON_DAILY_BUDGET_EXHAUSTED: _ClassVar[DropReason]
    DROP_REASON_CATEGORY_ARCHIVED: _ClassVar[DropReason]
    DROP_REASON_RANKED_BELOW_LIMIT: _ClassVar[DropReason]

class PropensitySource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROPENSITY_SOURCE_UNSPECIFIED: _ClassVar[PropensitySource]
    PROPENSITY_SOURCE_REQUEST_OFFER: _ClassVar[PropensitySource]
    PROPENSITY_SOURCE_REQUEST_MODEL: _ClassVar[PropensitySource]
    PROPENSITY_SOURCE_ADAPTIVE_MODEL: _ClassVar[PropensitySource]
    PROPENSITY_SOURCE_DEFAULT: _ClassVar[PropensitySource]

class OutcomeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_TYPE_UNSPECIFIED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_IMPRESSION: _ClassVar[OutcomeType]
    OUTCOME_TYPE_CLICK: _ClassVar[OutcomeType]
    OUTCOME_TYPE_CONVERSION: _ClassVar[OutcomeType]
    OUTCOME_TYPE_DISMISS: _ClassVar[OutcomeType]
    OUTCOME_TYPE_NOT_INTERESTED: _ClassVar[OutcomeType]
    OUTCOME_TYPE_COMPLAINT: _ClassVar[OutcomeType]

class OutcomeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_STATUS_UNSPECIFIED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_RECORDED: _ClassVar[OutcomeStatus]
    OUTCOME_STATUS_DUPLICATE: _ClassVar[OutcomeStatus]

class FunnelStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUNNEL_STEP_UNSPECIFIED: _ClassVar[FunnelStep]
    FUNNEL_STEP_INVENTORY: _ClassVar[FunnelStep]
    FUNNEL_STEP_SCHEDULE: _ClassVar[FunnelStep]
    FUNNEL_STEP_QUALIFICATION: _ClassVar[FunnelStep]
    FUNNEL_STEP_CONTACT_POLICIES: _ClassVar[FunnelStep]
    FUNNEL_STEP_BUDGET: _ClassVar[FunnelStep]
    FUNNEL_STEP_RANK: _ClassVar[FunnelStep]
    FUNNEL_STEP_OUTPUT: _ClassVar[FunnelStep]
DROP_REASON_UNSPECIFIED: DropReason
DROP_REASON_SCHEDULE_NOT_STARTED: DropReason
DROP_REASON_SCHEDULE_ENDED: DropReason
DROP_REASON_SCHEDULE_DAY: DropReason
DROP_REASON_SCHEDULE_TIME_WINDOW: DropReason
DROP_REASON_MISSING_SEGMENTS: DropReason
DROP_REASON_BELOW_PROPENSITY_THRESHOLD: DropReason
DROP_REASON_RECENCY: DropReason
DROP_REASON_CONTACT_POLICY: DropReason
DROP_REASON_MAX_IMPRESSIONS_REACHED: DropReason
DROP_REASON_DAILY_BUDGET_EXHAUSTED: DropReason
DROP_REASON_CATEGORY_ARCHIVED: DropReason
DROP_REASON_RANKED_BELOW_LIMIT: DropReason
PROPENSITY_SOURCE_UNSPECIFIED: PropensitySource
PROPENSITY_SOURCE_REQUEST_OFFER: PropensitySource
PROPENSITY_SOURCE_REQUEST_MODEL: PropensitySource
PROPENSITY_SOURCE_ADAPTIVE_MODEL: PropensitySource
PROPENSITY_SOURCE_DEFAULT: PropensitySource
OUTCOME_TYPE_UNSPECIFIED: OutcomeType
OUTCOME_TYPE_IMPRESSION: OutcomeType
OUTCOME_TYPE_CLICK: OutcomeType
OUTCOME_TYPE_CONVERSION: OutcomeType
OUTCOME_TYPE_DISMISS: OutcomeType
OUTCOME_TYPE_NOT_INTERESTED: OutcomeType
OUTCOME_TYPE_COMPLAINT: OutcomeType
OUTCOME_STATUS_UNSPECIFIED: OutcomeStatus
OUTCOME_STATUS_RECORDED: OutcomeStatus
OUTCOME_STATUS_DUPLICATE: OutcomeStatus
FUNNEL_STEP_UNSPECIFIED: FunnelStep
FUNNEL_STEP_INVENTORY: FunnelStep
FUNNEL_STEP_SCHEDULE: FunnelStep
FUNNEL_STEP_QUALIFICATION: FunnelStep
FUNNEL_STEP_CONTACT_POLICIES: FunnelStep
FUNNEL_STEP_BUDGET: FunnelStep
FUNNEL_STEP_RANK: FunnelStep
FUNNEL_STEP_OUTPUT: FunnelStep

class BatchDecideRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[DecideRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[DecideRequest, _Mapping]]] = ...) -> None: ...

class BatchDecideResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[DecideResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[DecideResponse, _Mapping]]] = ...) -> None: ...

class StreamDecideRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[DecideRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[DecideRequest, _Mapping]]] = ...) -> None: ...

class DecideRequest(_message.Message):
    __slots__ = ("customer_id", "segments", "attributes", "offer_propensities", "model_propensities", "channel", "limit", "category_ids", "sub_category_ids", "tags", "decision_time", "explain", "dry_run", "record_impressions")
    class OfferPropensitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModelPropensitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    OFFER_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
    SUB_CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    RECORD_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    segments: _containers.RepeatedScalarFieldContainer[str]
    attributes: _struct_pb2.Struct
    offer_propensities: _containers.ScalarMap[str, float]
    model_propensities: _containers.ScalarMap[str, float]
    channel: str
    limit: int
    category_ids: _containers.RepeatedScalarFieldContainer[str]
    sub_category_ids: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    decision_time: _timestamp_pb2.Timestamp
    explain: bool
    dry_run: bool
    record_impressions: bool
    def __init__(self, customer_id: _Optional[str] = ..., segments: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., offer_propensities: _Optional[_Mapping[str, float]] = ..., model_propensities: _Optional[_Mapping[str, float]] = ..., channel: _Optional[str] = ..., limit: _Optional[int] = ..., category_ids: _Optional[_Iterable[str]] = ..., sub_category_ids: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., explain: _Optional[bool] = ..., dry_run: _Optional[bool] = ..., record_impressions: _Optional[bool] = ...) -> None: ...

class DecidedOffer(_message.Message):
    __slots__ = ("rank", "offer_id", "name", "short_desc", "score", "propensity", "propensity_source", "priority_score", "mandatory", "category_id", "sub_category_id", "tags", "personalization")
    RANK_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHORT_DESC_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_SCORE_FIELD_NUMBER: _ClassVar[int]
    MANDATORY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    SUB_CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PERSONALIZATION_FIELD_NUMBER: _ClassVar[int]
    rank: int
    offer_id: str
    name: str
    short_desc: str
    score: float
    propensity: float
    propensity_source: PropensitySource
    priority_score: int
    mandatory: bool
    category_id: str
    sub_category_id: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    personalization: _struct_pb2.Struct
    def __init__(self, rank: _Optional[int] = ..., offer_id: _Optional[str] = ..., name: _Optional[str] = ..., short_desc: _Optional[str] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ..., propensity_source: _Optional[_Union[PropensitySource, str]] = ..., priority_score: _Optional[int] = ..., mandatory: _Optional[bool] = ..., category_id: _Optional[str] = ..., sub_category_id: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., personalization: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Candidate(_message.Message):
    __slots__ = ("offer_id", "name", "selected", "reason", "message", "score", "propensity", "mandatory")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SELECTED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    MANDATORY_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    name: str
    selected: bool
    reason: DropReason
    message: str
    score: float
    propensity: float
    mandatory: bool
    def __init__(self, offer_id: _Optional[str] = ..., name: _Optional[str] = ..., selected: _Optional[bool] = ..., reason: _Optional[_Union[DropReason, str]] = ..., message: _Optional[str] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ..., mandatory: _Optional[bool] = ...) -> None: ...

class DecideResponse(_message.Message):
    __slots__ = ("decision_id", "offers", "candidates", "decision_time")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    offers: _containers.RepeatedCompositeFieldContainer[DecidedOffer]
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    decision_time: _timestamp_pb2.Timestamp
    def __init__(self, decision_id: _Optional[str] = ..., offers: _Optional[_Iterable[_Union[DecidedOffer, _Mapping]]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("customer_id", "offer_id", "type", "decision_id", "channel", "occurred_at", "idempotency_key")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    offer_id: str
    type: OutcomeType
    decision_id: str
    channel: str
    occurred_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    def __init__(self, customer_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., type: _Optional[_Union[OutcomeType, str]] = ..., decision_id: _Optional[str] = ..., channel: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class OutcomeResult(_message.Message):
    __slots__ = ("outcome_id", "status", "recorded_at")
    OUTCOME_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    outcome_id: str
    status: OutcomeStatus
    recorded_at: _timestamp_pb2.Timestamp
    def __init__(self, outcome_id: _Optional[str] = ..., status: _Optional[_Union[OutcomeStatus, str]] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("outcome",)
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    def __init__(self, outcome: _Optional[_Union[Outcome, _Mapping]] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: OutcomeResult
    def __init__(self, result: _Optional[_Union[OutcomeResult, _Mapping]] = ...) -> None: ...

class RecordOutcomesRequest(_message.Message):
    __slots__ = ("outcomes",)
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    def __init__(self, outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ...) -> None: ...

class RecordOutcomesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[OutcomeResult]
    def __init__(self, results: _Optional[_Iterable[_Union[OutcomeResult, _Mapping]]] = ...) -> None: ...

class GetOfferStatsRequest(_message.Message):
    __slots__ = ("offer_id",)
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    def __init__(self, offer_id: _Optional[str] = ...) -> None: ...

class OfferStats(_message.Message):
    __slots__ = ("offer_id", "lifetime_impressions", "today", "timezone", "today_impressions", "today_spend", "remaining_impressions", "remaining_daily_budget", "model_reference", "model_estimate", "model_trials", "model_positives")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    TODAY_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    TODAY_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    TODAY_SPEND_FIELD_NUMBER: _ClassVar[int]
    REMAINING_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    REMAINING_DAILY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    MODEL_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    MODEL_TRIALS_FIELD_NUMBER: _ClassVar[int]
    MODEL_POSITIVES_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    lifetime_impressions: int
    today: str
    timezone: str
    today_impressions: int
    today_spend: float
    remaining_impressions: int
    remaining_daily_budget: float
    model_reference: str
    model_estimate: float
    model_trials: int
    model_positives: int
    def __init__(self, offer_id: _Optional[str] = ..., lifetime_impressions: _Optional[int] = ..., today: _Optional[str] = ..., timezone: _Optional[str] = ..., today_impressions: _Optional[int] = ..., today_spend: _Optional[float] = ..., remaining_impressions: _Optional[int] = ..., remaining_daily_budget: _Optional[float] = ..., model_reference: _Optional[str] = ..., model_estimate: _Optional[float] = ..., model_trials: _Optional[int] = ..., model_positives: _Optional[int] = ...) -> None: ...

class GetOfferStatsResponse(_message.Message):
    __slots__ = ("stats",)
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: OfferStats
    def __init__(self, stats: _Optional[_Union[OfferStats, _Mapping]] = ...) -> None: ...

class GetDecisionRequest(_message.Message):
    __slots__ = ("decision_id",)
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    def __init__(self, decision_id: _Optional[str] = ...) -> None: ...

class LoggedDecision(_message.Message):
    __slots__ = ("decision_id", "decision_time", "logged_at", "request", "response", "candidates")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    LOGGED_AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    decision_time: _timestamp_pb2.Timestamp
    logged_at: _timestamp_pb2.Timestamp
    request: DecideRequest
    response: DecideResponse
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    def __init__(self, decision_id: _Optional[str] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., logged_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request: _Optional[_Union[DecideRequest, _Mapping]] = ..., response: _Optional[_Union[DecideResponse, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ...) -> None: ...

class GetDecisionResponse(_message.Message):
    __slots__ = ("decision",)
    DECISION_FIELD_NUMBER: _ClassVar[int]
    decision: LoggedDecision
    def __init__(self, decision: _Optional[_Union[LoggedDecision, _Mapping]] = ...) -> None: ...

class WhyNotRequest(_message.Message):
    __slots__ = ("customer_id", "offer_id", "decision_time", "segments", "attributes", "offer_propensities", "model_propensities", "channel", "limit")
    class OfferPropensitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ModelPropensitiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    OFFER_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_PROPENSITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    offer_id: str
    decision_time: _timestamp_pb2.Timestamp
    segments: _containers.RepeatedScalarFieldContainer[str]
    attributes: _struct_pb2.Struct
    offer_propensities: _containers.ScalarMap[str, float]
    model_propensities: _containers.ScalarMap[str, float]
    channel: str
    limit: int
    def __init__(self, customer_id: _Optional[str] = ..., offer_id: _Optional[str] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., segments: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., offer_propensities: _Optional[_Mapping[str, float]] = ..., model_propensities: _Optional[_Mapping[str, float]] = ..., channel: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class WhyNotResponse(_message.Message):
    __slots__ = ("offer_id", "decision_time", "step", "reason", "message", "returned", "rank", "score", "propensity")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_TIME_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETURNED_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    decision_time: _timestamp_pb2.Timestamp
    step: FunnelStep
    reason: DropReason
    message: str
    returned: bool
    rank: int
    score: float
    propensity: float
    def __init__(self, offer_id: _Optional[str] = ..., decision_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step: _Optional[_Union[FunnelStep, str]] = ..., reason: _Optional[_Union[DropReason, str]] = ..., message: _Optional[str] = ..., returned: _Optional[bool] = ..., rank: _Optional[int] = ..., score: _Optional[float] = ..., propensity: _Optional[float] = ...) -> None: ...
