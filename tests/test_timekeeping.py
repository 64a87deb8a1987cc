"""local_day remembers day spans; it must always agree with the plain conversion (unit, no I/O)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from arbiter.server.domain.timekeeping import from_epoch_micros, local_day

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
