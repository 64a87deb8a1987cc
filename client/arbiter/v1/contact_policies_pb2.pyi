import datetime

from arbiter.v1 import decisions_pb2 as _decisions_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PolicyStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_STATUS_UNSPECIFIED: _ClassVar[PolicyStatus]
    POLICY_STATUS_ACTIVE: _ClassVar[PolicyStatus]
    POLICY_STATUS_PAUSED: _ClassVar[PolicyStatus]
    POLICY_STATUS_ARCHIVED: _ClassVar[PolicyStatus]

class PolicyScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    POLICY_SCOPE_UNSPECIFIED: _ClassVar[PolicyScope]
    POLICY_SCOPE_GLOBAL: _ClassVar[PolicyScope]
    POLICY_SCOPE_CATEGORY: _ClassVar[PolicyScope]
    POLICY_SCOPE_SUB_CATEGORY: _ClassVar[PolicyScope]
    POLICY_SCOPE_OFFER: _ClassVar[PolicyScope]
    POLICY_SCOPE_CHANNEL: _ClassVar[PolicyScope]
POLICY_STATUS_UNSPECIFIED: PolicyStatus
POLICY_STATUS_ACTIVE: PolicyStatus
POLICY_STATUS_PAUSED: PolicyStatus
POLICY_STATUS_ARCHIVED: PolicyStatus
POLICY_SCOPE_UNSPECIFIED: PolicyScope
POLICY_SCOPE_GLOBAL: PolicyScope
POLICY_SCOPE_CATEGORY: PolicyScope
POLICY_SCOPE_SUB_CATEGORY: PolicyScope
POLICY_SCOPE_OFFER: PolicyScope
POLICY_SCOPE_CHANNEL: PolicyScope

class FrequencyCapRule(_message.Message):
    __slots__ = ("max_per_day", "max_per_week", "max_per_month")
    MAX_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_WEEK_FIELD_NUMBER: _ClassVar[int]
    MAX_PER_MONTH_FIELD_NUMBER: _ClassVar[int]
    max_per_day: int
    max_per_week: int
    max_per_month: int
    def __init__(self, max_per_day: _Optional[int] = ..., max_per_week: _Optional[int] = ..., max_per_month: _Optional[int] = ...) -> None: ...

class CooldownRule(_message.Message):
    __slots__ = ("min_hours",)
    MIN_HOURS_FIELD_NUMBER: _ClassVar[int]
    min_hours: float
    def __init__(self, min_hours: _Optional[float] = ...) -> None: ...

class CustomerTotalCapRule(_message.Message):
    __slots__ = ("max_impressions", "window_days", "channel")
    MAX_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    max_impressions: int
    window_days: int
    channel: str
    def __init__(self, max_impressions: _Optional[int] = ..., window_days: _Optional[int] = ..., channel: _Optional[str] = ...) -> None: ...

class OutcomeSuppressionRule(_message.Message):
    __slots__ = ("outcome_types", "min_count", "window_days")
    OUTCOME_TYPES_FIELD_NUMBER: _ClassVar[int]
    MIN_COUNT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    outcome_types: _containers.RepeatedScalarFieldContainer[_decisions_pb2.OutcomeType]
    min_count: int
    window_days: int
    def __init__(self, outcome_types: _Optional[_Iterable[_Union[_decisions_pb2.OutcomeType, str]]] = ..., min_count: _Optional[int] = ..., window_days: _Optional[int] = ...) -> None: ...

class CategorySuppressionRule(_message.Message):
    __slots__ = ("hours",)
    HOURS_FIELD_NUMBER: _ClassVar[int]
    hours: float
    def __init__(self, hours: _Optional[float] = ...) -> None: ...

class MutualExclusionRule(_message.Message):
    __slots__ = ("offer_ids", "tag", "window_days")
    OFFER_IDS_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    WINDOW_DAYS_FIELD_NUMBER: _ClassVar[int]
    offer_ids: _containers.RepeatedScalarFieldContainer[str]
    tag: str
    window_days: int
    def __init__(self, offer_ids: _Optional[_Iterable[str]] = ..., tag: _Optional[str] = ..., window_days: _Optional[int] = ...) -> None: ...

class SegmentExclusionRule(_message.Message):
    __slots__ = ("segments",)
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, segments: _Optional[_Iterable[str]] = ...) -> None: ...

class TimeWindowRule(_message.Message):
    __slots__ = ("days_of_week", "start", "end")
    DAYS_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    days_of_week: _containers.RepeatedScalarFieldContainer[int]
    start: str
    end: str
    def __init__(self, days_of_week: _Optional[_Iterable[int]] = ..., start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class BudgetExhaustedRule(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AllowOverrideRule(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ContactPolicy(_message.Message):
    __slots__ = ("id", "name", "description", "status", "priority", "scope", "scope_id", "bypassable", "frequency_cap", "cooldown", "customer_total_cap", "outcome_suppression", "category_suppression", "mutual_exclusion", "segment_exclusion", "time_window", "budget_exhausted", "allow_override", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_ID_FIELD_NUMBER: _ClassVar[int]
    BYPASSABLE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CAP_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_TOTAL_CAP_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_SUPPRESSION_FIELD_NUMBER: _ClassVar[int]
    MUTUAL_EXCLUSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_EXCLUSION_FIELD_NUMBER: _ClassVar[int]
    TIME_WINDOW_FIELD_NUMBER: _ClassVar[int]
    BUDGET_EXHAUSTED_FIELD_NUMBER: _ClassVar[int]
    ALLOW_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    status: PolicyStatus
    priority: int
    scope: PolicyScope
    scope_id: str
    bypassable: bool
    frequency_cap: FrequencyCapRule
    cooldown: CooldownRule
    customer_total_cap: CustomerTotalCapRule
    outcome_suppression: OutcomeSuppressionRule
    category_suppression: CategorySuppressionRule
    mutual_exclusion: MutualExclusionRule
    segment_exclusion: SegmentExclusionRule
    time_window: TimeWindowRule
    budget_exhausted: BudgetExhaustedRule
    allow_override: AllowOverrideRule
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[PolicyStatus, str]] = ..., priority: _Optional[int] = ..., scope: _Optional[_Union[PolicyScope, str]] = ..., scope_id: _Optional[str] = ..., bypassable: _Optional[bool] = ..., frequency_cap: _Optional[_Union[FrequencyCapRule, _Mapping]] = ..., cooldown: _Optional[_Union[CooldownRule, _Mapping]] = ..., customer_total_cap: _Optional[_Union[CustomerTotalCapRule, _Mapping]] = ..., outcome_suppression: _Optional[_Union[OutcomeSuppressionRule, _Mapping]] = ..., category_suppression: _Optional[_Union[CategorySuppressionRule, _Mapping]] = ..., mutual_exclusion: _Optional[_Union[MutualExclusionRule, _Mapping]] = ..., segment_exclusion: _Optional[_Union[SegmentExclusionRule, _Mapping]] = ..., time_window: _Optional[_Union[TimeWindowRule, _Mapping]] = ..., budget_exhausted: _Optional[_Union[BudgetExhaustedRule, _Mapping]] = ..., allow_override: _Optional[_Union[AllowOverrideRule, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateContactPolicyRequest(_message.Message):
    __slots__ = ("contact_policy",)
    CONTACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    contact_policy: ContactPolicy
    def __init__(self, contact_policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class CreateContactPolicyResponse(_message.Message):
    __slots__ = ("contact_policy",)
    CONTACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    contact_policy: ContactPolicy
    def __init__(self, contact_policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class GetContactPolicyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetContactPolicyResponse(_message.Message):
    __slots__ = ("contact_policy",)
    CONTACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    contact_policy: ContactPolicy
    def __init__(self, contact_policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class ListContactPoliciesRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: PolicyStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[PolicyStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListContactPoliciesResponse(_message.Message):
    __slots__ = ("contact_policies", "next_page_token")
    CONTACT_POLICIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    contact_policies: _containers.RepeatedCompositeFieldContainer[ContactPolicy]
    next_page_token: str
    def __init__(self, contact_policies: _Optional[_Iterable[_Union[ContactPolicy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateContactPolicyRequest(_message.Message):
    __slots__ = ("contact_policy", "update_mask")
    CONTACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    contact_policy: ContactPolicy
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, contact_policy: _Optional[_Union[ContactPolicy, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateContactPolicyResponse(_message.Message):
    __slots__ = ("contact_policy",)
    CONTACT_POLICY_FIELD_NUMBER: _ClassVar[int]
    contact_policy: ContactPolicy
    def __init__(self, contact_policy: _Optional[_Union[ContactPolicy, _Mapping]] = ...) -> None: ...

class DeleteContactPolicyRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteContactPolicyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
