"""Time helpers: local_day's remembered spans, "HH:MM" and IANA zone names (unit, no I/O)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from arbiter.server.domain.timekeeping import from_epoch_micros, iana_zone_names, load_timezone, local_day, parse_hhmm

# Zones with DST changes at midnight (Havana, Santiago), half-hour DST (Lord Howe) and a skipped day (Apia 2011).
ZONES = [
    ZoneInfo(z)
    for z in (
        "UTC",
        "Europe/London",
        "America/Havana",
        "America/Santiago",
        "Australia/Lord_Howe",
        "Pacific/Apia",
        "Asia/Kolkata",
    )
]
DAY_US = 86_400_000_000
START_2010 = 1_262_304_000_000_000


@given(
    st.lists(
        st.tuples(st.sampled_from(ZONES), st.integers(0, 17 * 365 * DAY_US), st.integers(-2 * DAY_US, 2 * DAY_US)),
        min_size=1,
        max_size=40,
    )
)
def test_local_day_agrees_with_the_plain_conversion(steps: list[tuple[ZoneInfo, int, int]]) -> None:
    # Pairs of nearby instants exercise the remembered span and its edges.
    for zone, offset, jitter in steps:
        for moment in (START_2010 + offset, START_2010 + offset + jitter):
            assert local_day(moment, zone) == from_epoch_micros(moment).astimezone(zone).date().toordinal()


# -- "HH:MM" and zone names: what validation accepts ------------------------------------------------------

HHMM_ALPHABET = "0123456789:\n \t١٢٣٠٩１２０۱۲"  # ASCII, Arabic-Indic, fullwidth and Persian digits, spaces


@given(st.text(alphabet=HHMM_ALPHABET, max_size=7))
@example("1٢:30")  # an Arabic-Indic digit where \d would take it
@example("12:00\n")  # a trailing newline, which "$" lets through
@example("0۹:3٠")
def test_hhmm_is_exactly_two_ascii_digits_colon_two_ascii_digits(text: str) -> None:
    minutes = parse_hhmm(text)
    if minutes is None:
        assert text not in {f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)}
    else:
        assert text == f"{minutes // 60:02d}:{minutes % 60:02d}"


def test_every_minute_of_the_day_parses() -> None:
    for minutes in range(24 * 60):
        assert parse_hhmm(f"{minutes // 60:02d}:{minutes % 60:02d}") == minutes
    assert parse_hhmm("24:00") is None and parse_hhmm("7:00") is None


@pytest.mark.parametrize(
    "name", ["localtime", "posixrules", "Europe/London\n", " UTC", "europe/london", "Mars/Base", ""]
)
def test_only_iana_zone_names_load(name: str) -> None:
    # `localtime` is a file in the host's zone directory that follows the machine's setting.
    assert load_timezone(name) is None


@pytest.mark.parametrize("name", ["UTC", "Europe/London", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_zones_load(name: str) -> None:
    zone = load_timezone(name)
    assert zone is not None and zone.key == name
    assert name in iana_zone_names() and "localtime" not in iana_zone_names()
