"""What one gRPC call may cost before it runs: calls in progress at once, request bytes and items per method
(transport layer).

grpc.aio's own `maximum_concurrent_rpcs` counts a call from its headers on, so
streams that never finish sending their message would hold every slot; the
limit here counts only Arbiter calls whose request arrived whole and decoded,
and never health or reflection. Per-method byte and item limits refuse an
oversized request from its raw bytes, before protobuf decodes it on the
event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ...domain.decisions import MAX_BATCH_DECISIONS
from ...domain.errors import InvalidArgument, ResourceExhausted
from ...domain.outcomes import MAX_BULK_OUTCOMES

# Requests of the hot path, whose size nothing else bounds below --max-message-bytes: decoding
# a few MB of Struct or map entries takes the event loop for hundreds of ms. 256 KiB holds
# the largest attributes Decide accepts (64 KiB as JSON) beside full propensity maps and filters.
REQUEST_BYTE_LIMITS = {
    "/arbiter.v1.DecisionService/Decide": 256 * 1024,
    "/arbiter.v1.DecisionService/WhyNot": 256 * 1024,
}
# How many top-level fields of an oversized request are read to name the one that makes it so.
_SCANNED_FIELDS = 64


class ConcurrencyLimit:
    """At most `limit` calls between `enter` and `leave`; used from the one event loop, so no lock."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the concurrency limit must be at least 1, got {limit}")
        self.limit = limit
        self.active = 0

    def enter(self) -> None:
        """Take a slot, or raise ResourceExhausted when all are taken."""
        if self.active >= self.limit:
            raise ResourceExhausted(
                f"the server is already handling {self.limit} calls (--max-concurrent-rpcs); retry shortly",
                reason="TOO_MANY_CONCURRENT_CALLS",
            )
        self.active += 1

    def leave(self) -> None:
        self.active -= 1


@dataclass(frozen=True, slots=True)
class ItemLimit:
    """A repeated field of a request whose items the use case limits; `problem` says so for a request over it."""

    field: str  # JSON name, for the violation
    number: int
    limit: int
    problem: str


# Counted on the raw bytes, stopping just past the limit, before protobuf builds every item:
# a few MB of tiny outcomes take tens of ms to decode, for a call the use case refuses anyway.
REQUEST_ITEM_LIMITS = {
    "/arbiter.v1.DecisionService/RecordOutcomes": ItemLimit(
        "outcomes",
        1,
        MAX_BULK_OUTCOMES,
        f"must hold 1 to {MAX_BULK_OUTCOMES} outcomes, got more than {MAX_BULK_OUTCOMES}",
    ),
    "/arbiter.v1.DecisionService/BatchDecide": ItemLimit(
        "requests",
        1,
        MAX_BATCH_DECISIONS,
        f"must hold 1 to {MAX_BATCH_DECISIONS:,} requests, got more than {MAX_BATCH_DECISIONS:,}",
    ),
}
# Below this a request is decoded at once (cheaper than counting its items in Python).
ITEM_SCAN_ABOVE_BYTES = 256 * 1024

RawCheck = Callable[[bytes], InvalidArgument | None]


def raw_check(method: str, descriptor: Any) -> RawCheck | None:
    """What `method`'s request bytes are checked for before decoding (None: nothing), as INVALID_ARGUMENT."""
    max_bytes = REQUEST_BYTE_LIMITS.get(method)
    items = REQUEST_ITEM_LIMITS.get(method)
    if max_bytes is None and items is None:
        return None

    def check(data: bytes) -> InvalidArgument | None:
        if max_bytes is not None and len(data) > max_bytes:
            return oversized_request(descriptor, data, max_bytes)
        if items is None or len(data) <= ITEM_SCAN_ABOVE_BYTES:
            return None
        if _count_entries(data, items.number, items.limit) > items.limit:
            return InvalidArgument.single(items.field, items.problem)
        return None

    return check


def oversized_request(descriptor: Any, data: bytes, limit: int) -> InvalidArgument:
    """INVALID_ARGUMENT for a request over its method's byte limit, naming the field that holds most of it.

    `descriptor` is the request message's protobuf Descriptor (None when unknown).
    """
    full_name = descriptor.full_name if descriptor is not None else "request message"
    size = len(data)
    field = _dominant_field(descriptor, data) if descriptor is not None else None
    if field is None:
        return InvalidArgument.single("request", f"is {size:,} bytes; {full_name} is at most {limit:,} bytes")
    name, field_bytes = field
    return InvalidArgument.single(
        name, f"is {field_bytes:,} bytes encoded, too large: {full_name} is at most {limit:,} bytes in all"
    )


def _dominant_field(descriptor: Any, data: bytes) -> tuple[str, int] | None:
    """The JSON name and byte count of the field holding more than half of `data`, read from a bounded scan."""
    sizes = _top_level_sizes(data, _SCANNED_FIELDS)
    if not sizes:
        return None
    number, field_bytes = max(sizes.items(), key=lambda item: item[1])
    found = descriptor.fields_by_number.get(number)
    if found is None or field_bytes * 2 <= len(data):
        return None
    return found.json_name, field_bytes


def _top_level_sizes(data: bytes, max_fields: int) -> dict[int, int]:
    """Bytes per field number over the first `max_fields` top-level fields (what parsed before any damage)."""
    sizes: dict[int, int] = {}
    for number, length in itertools.islice(_fields(data), max_fields):
        sizes[number] = sizes.get(number, 0) + length
    return sizes


def _count_entries(data: bytes, number: int, stop_after: int) -> int:
    """Top-level entries of field `number` (each one item of a repeated field), counted only past `stop_after`."""
    count = 0
    for found, _ in _fields(data):
        if found == number:
            count += 1
            if count > stop_after:
                break
    return count


def _fields(data: bytes) -> Iterator[tuple[int, int]]:
    """(field number, bytes taken) of each top-level field, in order, until the end or the first damage."""
    position, end = 0, len(data)
    while position < end:
        start = position
        tag, position = _varint(data, position)
        wire_type = tag & 7
        if position < 0 or wire_type not in (0, 1, 2, 5):  # cut short, groups or garbage: stop reading
            return
        if wire_type == 0:
            _, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            position = position + length if position >= 0 else position
        else:
            position += 8 if wire_type == 1 else 4
        if position < 0:
            return
        yield tag >> 3, min(position, end) - start


def _varint(data: bytes, position: int) -> tuple[int, int]:
    """A base-128 varint at `position` and the position after it; (0, -1) when it is cut short or too long."""
    value = shift = 0
    for offset in range(10):
        if position + offset >= len(data):
            return 0, -1
        byte = data[position + offset]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position + offset + 1
        shift += 7
    return 0, -1
