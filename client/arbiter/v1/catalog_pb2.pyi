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

class CategoryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CATEGORY_STATUS_UNSPECIFIED: _ClassVar[CategoryStatus]
    CATEGORY_STATUS_ACTIVE: _ClassVar[CategoryStatus]
    CATEGORY_STATUS_ARCHIVED: _ClassVar[CategoryStatus]

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_TEXT: _ClassVar[FieldType]
    FIELD_TYPE_NUMBER: _ClassVar[FieldType]
    FIELD_TYPE_BOOLEAN: _ClassVar[FieldType]
    FIELD_TYPE_SELECT: _ClassVar[FieldType]
    FIELD_TYPE_DATE: _ClassVar[FieldType]
    FIELD_TYPE_COMPUTED: _ClassVar[FieldType]

class OutputType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_TYPE_UNSPECIFIED: _ClassVar[OutputType]
    OUTPUT_TYPE_NUMBER: _ClassVar[OutputType]
    OUTPUT_TYPE_TEXT: _ClassVar[OutputType]
    OUTPUT_TYPE_BOOLEAN: _ClassVar[OutputType]
CATEGORY_STATUS_UNSPECIFIED: CategoryStatus
CATEGORY_STATUS_ACTIVE: CategoryStatus
CATEGORY_STATUS_ARCHIVED: CategoryStatus
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_TEXT: FieldType
FIELD_TYPE_NUMBER: FieldType
FIELD_TYPE_BOOLEAN: FieldType
FIELD_TYPE_SELECT: FieldType
FIELD_TYPE_DATE: FieldType
FIELD_TYPE_COMPUTED: FieldType
OUTPUT_TYPE_UNSPECIFIED: OutputType
OUTPUT_TYPE_NUMBER: OutputType
OUTPUT_TYPE_TEXT: OutputType
OUTPUT_TYPE_BOOLEAN: OutputType

class FieldDefinition(_message.Message):
    __slots__ = ("key", "label", "type", "required", "default_value", "options", "formula", "output_type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    FORMULA_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    label: str
    type: FieldType
    required: bool
    default_value: _struct_pb2.Value
    options: _containers.RepeatedScalarFieldContainer[str]
    formula: str
    output_type: OutputType
    def __init__(self, key: _Optional[str] = ..., label: _Optional[str] = ..., type: _Optional[_Union[FieldType, str]] = ..., required: _Optional[bool] = ..., default_value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., options: _Optional[_Iterable[str]] = ..., formula: _Optional[str] = ..., output_type: _Optional[_Union[OutputType, str]] = ...) -> None: ...

class Category(_message.Message):
    __slots__ = ("id", "name", "description", "status", "display_order", "custom_fields", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_ORDER_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    description: str
    status: CategoryStatus
    display_order: int
    custom_fields: _containers.RepeatedCompositeFieldContainer[FieldDefinition]
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[CategoryStatus, str]] = ..., display_order: _Optional[int] = ..., custom_fields: _Optional[_Iterable[_Union[FieldDefinition, _Mapping]]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubCategory(_message.Message):
    __slots__ = ("id", "category_id", "name", "description", "created_at", "updated_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    category_id: str
    name: str
    description: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., category_id: _Optional[str] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateCategoryRequest(_message.Message):
    __slots__ = ("category", "category_id")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    category: Category
    category_id: str
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ..., category_id: _Optional[str] = ...) -> None: ...

class CreateCategoryResponse(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class GetCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetCategoryResponse(_message.Message):
    __slots__ = ("category",)
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    category: Category
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ...) -> None: ...

class ListCategoriesRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: CategoryStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[CategoryStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCategoriesResponse(_message.Message):
    __slots__ = ("categories", "next_page_token")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    next_page_token: str
    def __init__(self, categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateCategoryRequest(_message.Message):
    __slots__ = ("category", "update_mask")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    category: Category
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateCategoryResponse(_message.Message):
    __slots__ = ("category", "nonconforming_offers")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    NONCONFORMING_OFFERS_FIELD_NUMBER: _ClassVar[int]
    category: Category
    nonconforming_offers: int
    def __init__(self, category: _Optional[_Union[Category, _Mapping]] = ..., nonconforming_offers: _Optional[int] = ...) -> None: ...

class DeleteCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteCategoryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateSubCategoryRequest(_message.Message):
    __slots__ = ("sub_category", "sub_category_id")
    SUB_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SUB_CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    sub_category: SubCategory
    sub_category_id: str
    def __init__(self, sub_category: _Optional[_Union[SubCategory, _Mapping]] = ..., sub_category_id: _Optional[str] = ...) -> None: ...

class CreateSubCategoryResponse(_message.Message):
    __slots__ = ("sub_category",)
    SUB_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    sub_category: SubCategory
    def __init__(self, sub_category: _Optional[_Union[SubCategory, _Mapping]] = ...) -> None: ...

class GetSubCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetSubCategoryResponse(_message.Message):
    __slots__ = ("sub_category",)
    SUB_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    sub_category: SubCategory
    def __init__(self, sub_category: _Optional[_Union[SubCategory, _Mapping]] = ...) -> None: ...

class ListSubCategoriesRequest(_message.Message):
    __slots__ = ("category_id", "page_size", "page_token")
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    category_id: str
    page_size: int
    page_token: str
    def __init__(self, category_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSubCategoriesResponse(_message.Message):
    __slots__ = ("sub_categories", "next_page_token")
    SUB_CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sub_categories: _containers.RepeatedCompositeFieldContainer[SubCategory]
    next_page_token: str
    def __init__(self, sub_categories: _Optional[_Iterable[_Union[SubCategory, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSubCategoryRequest(_message.Message):
    __slots__ = ("sub_category", "update_mask")
    SUB_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    sub_category: SubCategory
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, sub_category: _Optional[_Union[SubCategory, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateSubCategoryResponse(_message.Message):
    __slots__ = ("sub_category",)
    SUB_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    sub_category: SubCategory
    def __init__(self, sub_category: _Optional[_Union[SubCategory, _Mapping]] = ...) -> None: ...

class DeleteSubCategoryRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteSubCategoryResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
