import datetime

from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_LOW: _ClassVar[Priority]
    PRIORITY_MEDIUM: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_CRITICAL: _ClassVar[Priority]

class OfferStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OFFER_STATUS_UNSPECIFIED: _ClassVar[OfferStatus]
    OFFER_STATUS_DRAFT: _ClassVar[OfferStatus]
    OFFER_STATUS_ACTIVE: _ClassVar[OfferStatus]
    OFFER_STATUS_PAUSED: _ClassVar[OfferStatus]
    OFFER_STATUS_ARCHIVED: _ClassVar[OfferStatus]
PRIORITY_UNSPECIFIED: Priority
PRIORITY_LOW: Priority
PRIORITY_MEDIUM: Priority
PRIORITY_HIGH: Priority
PRIORITY_CRITICAL: Priority
OFFER_STATUS_UNSPECIFIED: OfferStatus
OFFER_STATUS_DRAFT: OfferStatus
OFFER_STATUS_ACTIVE: OfferStatus
OFFER_STATUS_PAUSED: OfferStatus
OFFER_STATUS_ARCHIVED: OfferStatus

class QualificationConfig(_message.Message):
    __slots__ = ("propensity_threshold", "recency", "required_segments", "model_reference")
    PROPENSITY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    RECENCY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    propensity_threshold: float
    recency: int
    required_segments: _containers.RepeatedScalarFieldContainer[str]
    model_reference: str
    def __init__(self, propensity_threshold: _Optional[float] = ..., recency: _Optional[int] = ..., required_segments: _Optional[_Iterable[str]] = ..., model_reference: _Optional[str] = ...) -> None: ...

class BudgetConfig(_message.Message):
    __slots__ = ("max_impressions", "max_daily_budget", "cost_per_action")
    MAX_IMPRESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_BUDGET_FIELD_NUMBER: _ClassVar[int]
    COST_PER_ACTION_FIELD_NUMBER: _ClassVar[int]
    max_impressions: int
    max_daily_budget: float
    cost_per_action: float
    def __init__(self, max_impressions: _Optional[int] = ..., max_daily_budget: _Optional[float] = ..., cost_per_action: _Optional[float] = ...) -> None: ...

class TimeWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class ScheduleConfig(_message.Message):
    __slots__ = ("start_date", "end_date", "days_of_week", "time_window", "timezone")
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    END_DATE_FIELD_NUMBER: _ClassVar[int]
    DAYS_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    TIME_WINDOW_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    start_date: _timestamp_pb2.Timestamp
    end_date: _timestamp_pb2.Timestamp
    days_of_week: _containers.RepeatedScalarFieldContainer[int]
    time_window: TimeWindow
    timezone: str
    def __init__(self, start_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_date: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., days_of_week: _Optional[_Iterable[int]] = ..., time_window: _Optional[_Union[TimeWindow, _Mapping]] = ..., timezone: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("id", "name", "short_desc", "category_id", "sub_category_id", "priority", "mandatory", "status", "tags", "qualification", "budget", "schedule", "custom_fields", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SHORT_DESC_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    SUB_CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    MANDATORY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    QUALIFICATION_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    short_desc: str
    category_id: str
    sub_category_id: str
    priority: Priority
    mandatory: bool
    status: OfferStatus
    tags: _containers.RepeatedScalarFieldContainer[str]
    qualification: QualificationConfig
    budget: BudgetConfig
    schedule: ScheduleConfig
    custom_fields: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., short_desc: _Optional[str] = ..., category_id: _Optional[str] = ..., sub_category_id: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., mandatory: _Optional[bool] = ..., status: _Optional[_Union[OfferStatus, str]] = ..., tags: _Optional[_Iterable[str]] = ..., qualification: _Optional[_Union[QualificationConfig, _Mapping]] = ..., budget: _Optional[_Union[BudgetConfig, _Mapping]] = ..., schedule: _Optional[_Union[ScheduleConfig, _Mapping]] = ..., custom_fields: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateOfferRequest(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class CreateOfferResponse(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class GetOfferRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetOfferResponse(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class ListOffersRequest(_message.Message):
    __slots__ = ("status", "category_ids", "tags", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: OfferStatus
    category_ids: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[OfferStatus, str]] = ..., category_ids: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOffersResponse(_message.Message):
    __slots__ = ("offers", "next_page_token")
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    offers: _containers.RepeatedCompositeFieldContainer[Offer]
    next_page_token: str
    def __init__(self, offers: _Optional[_Iterable[_Union[Offer, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateOfferRequest(_message.Message):
    __slots__ = ("offer", "update_mask")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateOfferResponse(_message.Message):
    __slots__ = ("offer",)
    OFFER_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ...) -> None: ...

class DeleteOfferRequest(_message.Message):
    __slots__ = ("id", "force")
    ID_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    force: bool
    def __init__(self, id: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class DeleteOfferResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
