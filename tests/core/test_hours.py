"""Regulated hours: weekly schedule, French public holidays, DST-exact durations."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.hours import (
    RegulatedHours,
    TimeRange,
    add_regulated,
    is_regulated,
    next_change,
    regulated_seconds,
)

PARIS = ZoneInfo("Europe/Paris")
TYPICAL = RegulatedHours.typical()
HOUR = 3600.0


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def hours_with(weekly: dict[str, list[tuple[str, str]]], **fields: Any) -> RegulatedHours:
    ranges = {day: [{"start": s, "end": e} for s, e in spans] for day, spans in weekly.items()}
    return RegulatedHours.model_validate({"weekly": ranges, **fields})


ALL_DAY_EVERY_DAY = hours_with(
    {day: [("00:00", "00:00")] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
)
SUNDAY_NIGHT = hours_with({"sun": [("01:00", "04:00")]})
FRIDAY_NIGHT = hours_with({"fri": [("20:00", "00:00")], "sat": [("00:00", "02:00")]})


# --- is_regulated -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "regulated"),
    [
        (paris(2026, 3, 10, 8, 59), False),  # Tuesday, before opening
        (paris(2026, 3, 10, 9, 0), True),
        (paris(2026, 3, 10, 11, 59), True),
        (paris(2026, 3, 10, 12, 0), False),  # lunch pause, end is exclusive
        (paris(2026, 3, 10, 13, 30), False),
        (paris(2026, 3, 10, 14, 0), True),
        (paris(2026, 3, 10, 18, 59), True),
        (paris(2026, 3, 10, 19, 0), False),
        (paris(2026, 3, 14, 10, 0), True),  # Saturday
        (paris(2026, 3, 15, 10, 0), False),  # Sunday
        (paris(2026, 7, 14, 10, 0), False),  # Bastille Day, a Tuesday
        (paris(2026, 5, 1, 10, 0), False),  # Labour Day, a Friday
        (paris(2026, 4, 6, 10, 0), False),  # Easter Monday
        (paris(2026, 4, 3, 10, 0), True),  # Good Friday: only a holiday in Alsace-Moselle
        (datetime(2026, 3, 10, 9, 30, tzinfo=UTC), True),  # 10:30 in Paris
        (datetime(2026, 3, 10, 11, 30, tzinfo=UTC), False),  # 12:30 in Paris
    ],
)
def test_is_regulated_typical_week(instant: datetime, regulated: bool) -> None:
    assert is_regulated(TYPICAL, instant) is regulated


def test_business_hours_are_weekdays_eight_to_six_without_holidays() -> None:
    business = RegulatedHours.business()
    assert not is_regulated(business, paris(2026, 3, 10, 7, 59))  # Tuesday
    assert is_regulated(business, paris(2026, 3, 10, 8))
    assert is_regulated(business, paris(2026, 3, 10, 12, 30))  # no lunch break
    assert not is_regulated(business, paris(2026, 3, 10, 18))
    assert not is_regulated(business, paris(2026, 3, 14, 10))  # Saturday
    assert not is_regulated(business, paris(2026, 4, 6, 10))  # Easter Monday
    # Monday 9 to Monday 16 March 2026: five days of 10 h.
    assert regulated_seconds(business, paris(2026, 3, 9), paris(2026, 3, 16)) == 50 * HOUR


def test_holidays_regulated_follows_the_weekly_schedule() -> None:
    hours = TYPICAL.model_copy(update={"holidays_regulated": True})
    assert is_regulated(hours, paris(2026, 7, 14, 10))
    assert not is_regulated(hours, paris(2026, 7, 14, 13))


@pytest.mark.parametrize(
    ("subdivision", "day"),
    [("57", date(2026, 4, 3)), ("67", date(2026, 4, 3)), ("68", date(2026, 12, 26))],
)
def test_alsace_moselle_has_two_more_holidays(subdivision: str, day: date) -> None:
    hours = TYPICAL.model_copy(update={"holiday_subdivision": subdivision})
    noon_before = datetime.combine(day, time(10), tzinfo=PARIS)
    assert is_regulated(TYPICAL, noon_before)
    assert not is_regulated(hours, noon_before)


def test_extra_free_days_are_free_even_when_holidays_are_regulated() -> None:
    hours = hours_with(
        {"tue": [("09:00", "19:00")]},
        holidays_regulated=True,
        extra_free_days=["2026-03-10"],
    )
    assert not is_regulated(hours, paris(2026, 3, 10, 10))
    assert is_regulated(hours, paris(2026, 3, 17, 10))


def test_range_ending_at_midnight_covers_the_evening() -> None:
    assert is_regulated(FRIDAY_NIGHT, paris(2026, 3, 13, 23, 59))
    assert is_regulated(FRIDAY_NIGHT, paris(2026, 3, 14, 0, 0))
    assert not is_regulated(FRIDAY_NIGHT, paris(2026, 3, 14, 2, 0))


# --- regulated_seconds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "start", "end", "expected_hours"),
    [
        pytest.param(TYPICAL, paris(2026, 3, 10, 11), paris(2026, 3, 10, 15), 2, id="lunch-pause"),
        pytest.param(TYPICAL, paris(2026, 3, 10), paris(2026, 3, 11), 8, id="whole-weekday"),
        pytest.param(TYPICAL, paris(2026, 3, 14, 18), paris(2026, 3, 16, 10), 2, id="sunday"),
        pytest.param(TYPICAL, paris(2026, 7, 13, 18), paris(2026, 7, 15, 10), 2, id="14-july"),
        pytest.param(TYPICAL, paris(2026, 3, 9), paris(2026, 3, 16), 48, id="whole-week"),
        pytest.param(TYPICAL, paris(2026, 3, 10, 20), paris(2026, 3, 11, 8), 0, id="night"),
        pytest.param(
            FRIDAY_NIGHT, paris(2026, 3, 13, 22), paris(2026, 3, 14, 1), 3, id="across-midnight"
        ),
        pytest.param(
            SUNDAY_NIGHT, paris(2026, 3, 29), paris(2026, 3, 29, 12), 2, id="dst-spring-forward"
        ),
        pytest.param(
            SUNDAY_NIGHT, paris(2026, 10, 25), paris(2026, 10, 25, 12), 4, id="dst-fall-back"
        ),
        pytest.param(
            SUNDAY_NIGHT, paris(2026, 3, 22), paris(2026, 3, 22, 12), 3, id="ordinary-sunday"
        ),
        pytest.param(
            ALL_DAY_EVERY_DAY, paris(2026, 3, 29), paris(2026, 3, 30), 23, id="23-hour-day"
        ),
        pytest.param(
            ALL_DAY_EVERY_DAY, paris(2026, 10, 25), paris(2026, 10, 26), 25, id="25-hour-day"
        ),
        pytest.param(
            TYPICAL, paris(2026, 3, 28, 18), paris(2026, 3, 30, 10), 2, id="weekend-with-dst"
        ),
        pytest.param(TYPICAL, paris(2026, 3, 10, 10), paris(2026, 3, 10, 10), 0, id="empty"),
    ],
)
def test_regulated_seconds(
    hours: RegulatedHours, start: datetime, end: datetime, expected_hours: float
) -> None:
    assert regulated_seconds(hours, start, end) == expected_hours * HOUR


def test_regulated_seconds_mixes_timezones_by_instant() -> None:
    start = datetime(2026, 3, 10, 10, tzinfo=UTC)  # 11:00 in Paris
    end = paris(2026, 3, 10, 15)
    assert regulated_seconds(TYPICAL, start, end) == 2 * HOUR


def test_regulated_seconds_rejects_end_before_start() -> None:
    with pytest.raises(ValueError, match="before start"):
        regulated_seconds(TYPICAL, paris(2026, 3, 10, 12), paris(2026, 3, 10, 11))


# --- add_regulated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [
        pytest.param(paris(2026, 3, 10, 11, 30), HOUR, paris(2026, 3, 10, 14, 30), id="pause"),
        pytest.param(paris(2026, 3, 10, 10), HOUR, paris(2026, 3, 10, 11), id="plain"),
        pytest.param(paris(2026, 3, 10, 7), 1800, paris(2026, 3, 10, 9, 30), id="before-opening"),
        pytest.param(paris(2026, 3, 10, 12, 30), 0, paris(2026, 3, 10, 14), id="zero-in-pause"),
        pytest.param(paris(2026, 3, 10, 10), 0, paris(2026, 3, 10, 10), id="zero-regulated"),
        pytest.param(paris(2026, 3, 14, 18, 30), HOUR, paris(2026, 3, 16, 9, 30), id="sunday"),
        pytest.param(paris(2026, 3, 15, 12), HOUR, paris(2026, 3, 16, 10), id="from-sunday"),
        pytest.param(paris(2026, 7, 13, 18, 30), HOUR, paris(2026, 7, 15, 9, 30), id="14-july"),
        pytest.param(paris(2026, 3, 28, 18, 30), HOUR, paris(2026, 3, 30, 9, 30), id="dst"),
        pytest.param(paris(2026, 3, 10, 9), 8 * HOUR, paris(2026, 3, 10, 19), id="whole-day"),
        pytest.param(
            paris(2026, 3, 10, 9),
            8 * HOUR + 1,
            paris(2026, 3, 11, 9) + timedelta(seconds=1),
            id="one-second-into-next-day",
        ),
    ],
)
def test_add_regulated(start: datetime, seconds: float, expected: datetime) -> None:
    assert add_regulated(TYPICAL, start, seconds) == expected


def test_add_regulated_answers_in_the_zone_timezone() -> None:
    end = add_regulated(TYPICAL, datetime(2026, 3, 10, 10, 30, tzinfo=UTC), HOUR)
    assert end.tzinfo == PARIS
    assert (end.hour, end.minute) == (14, 30)


def test_add_regulated_counts_dst_hours_as_they_pass() -> None:
    end = add_regulated(SUNDAY_NIGHT, paris(2026, 10, 25), 3.5 * HOUR)
    # 01:00 summer time is 23:00 UTC; the repeated hour counts twice, so 3.5 h later the
    # clocks show 03:30 winter time, not 04:30.
    assert end == datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert end.isoformat() == "2026-10-25T03:30:00+01:00"


def test_add_regulated_rejects_negative_seconds() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        add_regulated(TYPICAL, paris(2026, 3, 10, 10), -1)


def test_add_regulated_without_regulated_time_gives_up() -> None:
    with pytest.raises(ValueError, match="no regulated time"):
        add_regulated(hours_with({}), paris(2026, 3, 10, 10), HOUR)


# --- next_change --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "instant", "expected"),
    [
        pytest.param(TYPICAL, paris(2026, 3, 10, 10), paris(2026, 3, 10, 12), id="until-noon"),
        pytest.param(TYPICAL, paris(2026, 3, 10, 12), paris(2026, 3, 10, 14), id="at-noon"),
        pytest.param(TYPICAL, paris(2026, 3, 10, 19, 30), paris(2026, 3, 11, 9), id="evening"),
        pytest.param(TYPICAL, paris(2026, 3, 14, 19, 30), paris(2026, 3, 16, 9), id="weekend"),
        pytest.param(TYPICAL, paris(2026, 7, 13, 19, 30), paris(2026, 7, 15, 9), id="14-july"),
        pytest.param(
            FRIDAY_NIGHT, paris(2026, 3, 13, 21), paris(2026, 3, 14, 2), id="through-midnight"
        ),
        pytest.param(
            hours_with({"mon": [("09:00", "12:00"), ("12:00", "14:00")]}),
            paris(2026, 3, 9, 10),
            paris(2026, 3, 9, 14),
            id="adjacent-ranges",
        ),
        pytest.param(
            ALL_DAY_EVERY_DAY.model_copy(update={"holidays_regulated": False}),
            paris(2026, 7, 13, 10),
            paris(2026, 7, 14),
            id="holiday-ends-all-day-regulation",
        ),
        pytest.param(hours_with({}), paris(2026, 3, 10, 10), None, id="never-regulated"),
        pytest.param(
            ALL_DAY_EVERY_DAY.model_copy(update={"holidays_regulated": True}),
            paris(2026, 3, 10, 10),
            None,
            id="always-regulated",
        ),
        pytest.param(
            hours_with({"mon": [("09:00", "10:00")]}, extra_free_days=["2026-03-16", "2026-03-23"]),
            paris(2026, 3, 10, 10),
            None,
            id="beyond-14-days",
        ),
    ],
)
def test_next_change(hours: RegulatedHours, instant: datetime, expected: datetime | None) -> None:
    assert next_change(hours, instant) == expected


# --- naive datetimes ----------------------------------------------------------------------

NAIVE = datetime(2026, 3, 10, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: is_regulated(TYPICAL, NAIVE),
        lambda: regulated_seconds(TYPICAL, NAIVE, paris(2026, 3, 11)),
        lambda: regulated_seconds(TYPICAL, paris(2026, 3, 9), NAIVE),
        lambda: add_regulated(TYPICAL, NAIVE, HOUR),
        lambda: next_change(TYPICAL, NAIVE),
    ],
    ids=["is_regulated", "regulated_seconds-start", "regulated_seconds-end", "add", "next"],
)
def test_naive_datetimes_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# --- validation ---------------------------------------------------------------------------


def test_ranges_are_sorted() -> None:
    hours = hours_with({"mon": [("14:00", "19:00"), ("09:00", "12:00")]})
    assert [r.start for r in hours.weekly["mon"]] == [time(9), time(14)]


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        (
            [("09:00", "12:00"), ("11:00", "13:00")],
            "ranges 09:00-12:00 and 11:00-13:00 on mon overlap",
        ),
        (
            [("20:00", "00:00"), ("22:00", "23:00")],
            "ranges 20:00-24:00 and 22:00-23:00 on mon overlap",
        ),
        ([("09:00", "12:00"), ("09:00", "10:00")], "overlap"),
        ([("12:00", "09:00")], "end 09:00:00 must be after start 12:00:00"),
        ([("09:00", "09:00")], "must be after start"),
        ([("09:00+02:00", "12:00")], "without offset"),
    ],
)
def test_invalid_ranges_rejected(spans: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        hours_with({"mon": spans})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"weekly": {}, "timezone": "Europe/Pariss"}, "unknown timezone 'Europe/Pariss'"),
        ({"weekly": {}, "timezone": "../etc/passwd"}, "unknown timezone"),
        ({"weekly": {"monday": []}}, "Input should be 'mon'"),
        ({"weekly": {}, "holiday_subdivision": "75"}, "unknown holiday subdivision '75'"),
        ({"weekly": {}, "holiday_subdivision": "6AE"}, "unknown holiday subdivision"),
        ({"weekly": {}, "holidays_regulated": "yes"}, "valid boolean"),
        ({"weekly": {}, "colour": "blue"}, "Extra inputs are not permitted"),
        ({"weekly": {"mon": [{"start": "09:00", "end": "12:00", "x": 1}]}}, "Extra inputs"),
        ({}, "weekly"),
    ],
)
def test_invalid_hours_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegulatedHours.model_validate(data)


def test_round_trips_through_json() -> None:
    hours = hours_with(
        {"fri": [("20:00", "00:00")]},
        holiday_subdivision="57",
        extra_free_days=["2026-12-24", "2026-12-24", "2026-06-21"],
    )
    assert hours.extra_free_days == [date(2026, 6, 21), date(2026, 12, 24)]
    assert RegulatedHours.model_validate_json(hours.model_dump_json()) == hours


def test_time_range_renders_midnight_as_24() -> None:
    assert str(TimeRange(start=time(22), end=time(0))) == "22:00-24:00"


# --- property -----------------------------------------------------------------------------

starts_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2026, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([UTC, PARIS]),
)
up_to_three_days = st.floats(min_value=0, max_value=3 * 24 * HOUR, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(start=starts_2026, seconds=up_to_three_days)
def test_add_regulated_inverts_regulated_seconds(start: datetime, seconds: float) -> None:
    for hours in (TYPICAL, SUNDAY_NIGHT, FRIDAY_NIGHT):
        end = add_regulated(hours, start, seconds)
        assert end >= start
        assert regulated_seconds(hours, start, end) == pytest.approx(seconds, abs=1e-6)
