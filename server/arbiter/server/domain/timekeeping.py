"""Time zones, instants and local calendar helpers (domain layer)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ASCII digits only (\d also matches "١٢"), matched whole (a "$" would let a trailing newline through).
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@functools.cache
def iana_zone_names() -> frozenset[str]:
    """The zone names of the IANA database, as the tzdata package lists them.

    Not the host's zone directory: that also holds `localtime` (whatever zone
    the machine is set to) and, on some systems, `posixrules`.
    """
    listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    return frozenset(listing.split())


@functools.lru_cache(maxsize=1024)
def load_timezone(name: str) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when the IANA database has no such zone."""
    if name not in iana_zone_names():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def parse_hhmm(text: str) -> int | None:
    """Minutes after midnight of an "HH:MM" string (00:00 to 23:59), or None."""
    match = _HHMM.fullmatch(text)
    if match is None:
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def to_epoch_micros(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


# The instants a decision or an outcome may happen at: Timestamp's range less a
# day at either end, so that the local calendar day of any time zone, and the
# midnight after it, can be computed for every instant accepted.
EARLIEST_EVENT_US = to_epoch_micros(datetime(1, 1, 2, tzinfo=UTC))
LATEST_EVENT_US = to_epoch_micros(datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=UTC))


def event_time_problem(micros: int) -> str | None:
    """Why an instant cannot be a decision's or an outcome's time (None: it can)."""
    if EARLIEST_EVENT_US <= micros <= LATEST_EVENT_US:
        return None
    return "must be between 0001-01-02T00:00:00Z and 9999-12-30T23:59:59.999999Z"


# zone key -> (first instant, instant after the last, day ordinal) of the local day last asked for
_DAY_SPANS: dict[str, tuple[int, int, int]] = {}


def local_day(moment_micros: int, zone: ZoneInfo) -> int:
    """The local calendar day containing an instant, as a proleptic ordinal (date.toordinal()).

    Remembers the span of the last day per zone: most instants asked about
    (now, and outcomes that just happened) fall in it.
    """
    span = _DAY_SPANS.get(zone.key)
    if span is not None and span[0] <= moment_micros < span[1]:
        return span[2]
    day = from_epoch_micros(moment_micros).astimezone(zone).date()
    if day == date.max:  # the calendar's last day: no midnight after it to end a span with
        return day.toordinal()
    start = to_epoch_micros(datetime.combine(day, time(), tzinfo=zone))
    end = to_epoch_micros(datetime.combine(day + timedelta(days=1), time(), tzinfo=zone))
    # Where midnight is skipped or repeated (a DST change at midnight) the span
    # computed from wall-clock midnights can be off: remember it only if it holds.
    if start <= moment_micros < end and _day_of(start, zone) == day.toordinal() == _day_of(end - 1, zone):
        _DAY_SPANS[zone.key] = (start, end, day.toordinal())
    return day.toordinal()


def _day_of(moment_micros: int, zone: ZoneInfo) -> int:
    return from_epoch_micros(moment_micros).astimezone(zone).date().toordinal()


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_now_us() -> int:
    return to_epoch_micros(utc_now())


class Clock(Protocol):
    """Where the server reads the time: one object, so tests can set it instead of waiting for it."""

    def now(self) -> datetime:
        """The current instant, an aware UTC datetime."""
        ...

    def now_us(self) -> int:
        """The current instant in microseconds since the epoch."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return utc_now()

    def now_us(self) -> int:
        return utc_now_us()


class ManualClock:
    """A clock that moves only when told to (tests and simulations)."""

    def __init__(self, start: datetime) -> None:
        self._us = to_epoch_micros(start)

    def now(self) -> datetime:
        return from_epoch_micros(self._us)

    def now_us(self) -> int:
        return self._us

    def advance(self, delta: timedelta) -> None:
        self._us += to_epoch_micros(_EPOCH + delta)

    def set(self, moment: datetime) -> None:
        self._us = to_epoch_micros(moment)
