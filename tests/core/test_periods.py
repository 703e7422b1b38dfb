from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardd.core.periods import parse_duration, window_at

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("tz", "instant", "hours"),
    [
        (BERLIN, datetime(2026, 3, 29, 12, tzinfo=UTC), 23),
        (BERLIN, datetime(2026, 10, 25, 12, tzinfo=UTC), 25),
        (NEW_YORK, datetime(2026, 3, 8, 17, tzinfo=UTC), 23),
        (NEW_YORK, datetime(2026, 11, 1, 17, tzinfo=UTC), 25),
    ],
    ids=["berlin-spring", "berlin-autumn", "ny-spring", "ny-autumn"],
)
def test_days_across_dst_have_their_real_length(tz, instant, hours):
    window = window_at("daily", tz, instant)
    assert window.length == timedelta(hours=hours)
    assert window.start.astimezone(tz).hour == 0


def test_weeks_start_on_the_configured_day():
    saturday = datetime(2026, 11, 21, 12, tzinfo=UTC)
    assert window_at("weekly", BERLIN, saturday, 0).start.astimezone(BERLIN).weekday() == 0
    assert window_at("weekly", BERLIN, saturday, 6).start.astimezone(BERLIN).weekday() == 6


def test_a_leap_february_has_29_days_and_the_year_rolls_over():
    assert window_at("monthly", BERLIN, datetime(2028, 2, 15, tzinfo=UTC)).length.days == 29
    december = window_at("monthly", NEW_YORK, datetime(2026, 12, 31, 23, tzinfo=UTC))
    assert december.end.astimezone(NEW_YORK).date().isoformat() == "2027-01-01"


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(["daily", "weekly", "monthly"]),
    st.sampled_from([BERLIN, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
)
def test_the_window_contains_the_instant_and_the_next_one_starts_where_it_ends(now, kind, tz):
    window = window_at(kind, tz, now)
    assert window.start <= now < window.end
    assert window_at(kind, tz, window.end).start == window.end


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("4h", 14400), ("1d", 86400), ("0", 0)])
def test_durations_parse(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_a_bad_duration_says_how_to_write_one():
    with pytest.raises(ValueError, match="10m"):
        parse_duration("fast")


@pytest.mark.parametrize("value", [5, "5", 4.0, "-1h", "forever"])
def test_a_duration_without_a_unit_or_a_word_is_refused(value):
    with pytest.raises(ValueError):
        parse_duration(value)
