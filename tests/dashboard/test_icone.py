"""ICONE confinement index: the formula, bands, occupied time, time step and validity.

Expected levels are worked out by hand from ICONE = (2.5 / log10 2) * log10(1 + f1 + 3 f2),
rounded half up. The school is open Monday, Tuesday, Thursday, Friday 08:30-16:30 (48 steps of
10 minutes) and Wednesday 08:30-11:30 (18 steps), Europe/Paris, public holidays off.
Monday 2024-03-04 is an ordinary school day; Monday 2024-04-01 is Easter Monday.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashboard.icone import (
    IconeLevel,
    IconeResult,
    Sample,
    daily_icone,
    icone,
    icone_index,
    school_hours,
)

PARIS = ZoneInfo("Europe/Paris")
STEP = timedelta(minutes=10)
SCHOOL = school_hours()
MONDAY = date(2024, 3, 4)
WEDNESDAY = date(2024, 3, 6)
EASTER_MONDAY = date(2024, 4, 1)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=PARIS)


def every_step(day: date, values: list[float], *, hour: int = 8, minute: int = 30) -> list[Sample]:
    """One sample per 10-minute step from `hour:minute` on `day`, mid-step."""
    start = at(day, hour, minute) + timedelta(minutes=5)
    return [(start + i * STEP, value) for i, value in enumerate(values)]


def day_index(samples: list[Sample], day: date = MONDAY) -> IconeResult:
    return icone(samples, SCHOOL, start=at(day, 0), end=at(day + timedelta(days=1), 0))


# --- the formula ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("f1", "f2", "expected"),
    [
        (0.0, 0.0, 0),  # log10(1) = 0
        (0.0, 1.0, 5),  # 8.3048 * log10(4) = 5 exactly
        (1.0, 0.0, 3),  # 8.3048 * log10(2) = 2.5 exactly: half up (Python's round gives 2)
        (0.12, 0.0, 0),  # 8.3048 * log10(1.12) = 0.41
        (0.15, 0.0, 1),  # 8.3048 * log10(1.15) = 0.504
        (0.5, 0.0, 1),  # 8.3048 * log10(1.5) = 1.46
        (0.2, 0.1, 1),  # same 1 + f1 + 3 f2 = 1.5: a high value weighs three middle ones
        (0.0, 0.2, 2),  # 8.3048 * log10(1.6) = 1.70
        (0.3, 0.2, 2),  # 8.3048 * log10(1.9) = 2.31
        (0.0, 0.5, 3),  # 8.3048 * log10(2.5) = 3.30
        (0.5, 0.5, 4),  # 8.3048 * log10(3) = 3.96
        (0.0, 0.75, 4),  # 8.3048 * log10(3.25) = 4.25
        (0.0, 0.85, 5),  # 8.3048 * log10(3.55) = 4.57
    ],
)
def test_index_from_shares(f1: float, f2: float, expected: int) -> None:
    assert icone_index(f1, f2) == expected


@pytest.mark.parametrize(("f1", "f2"), [(-0.1, 0.0), (0.0, 1.1), (0.6, 0.6), (math.nan, 0.0)])
def test_shares_outside_zero_one_are_refused(f1: float, f2: float) -> None:
    with pytest.raises(ValueError, match="shares"):
        icone_index(f1, f2)


@pytest.mark.parametrize(
    ("level", "french", "english"),
    [
        (IconeLevel.NONE, "confinement nul", "no confinement"),
        (IconeLevel.LOW, "confinement faible", "low confinement"),
        (IconeLevel.MODERATE, "confinement moyen", "moderate confinement"),
        (IconeLevel.HIGH, "confinement élevé", "high confinement"),
        (IconeLevel.VERY_HIGH, "confinement très élevé", "very high confinement"),
        (IconeLevel.EXTREME, "confinement extrême", "extreme confinement"),
    ],
)
def test_level_labels(level: IconeLevel, french: str, english: str) -> None:
    assert level.label() == french
    assert level.label("en") == english


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_index_is_bounded_and_monotonic(a: float, b: float, c: float, d: float) -> None:
    # Two (f1, f2) pairs with f1 + f2 <= 1, the second at least as confined in both bands.
    f2, more_f2 = sorted((a * (1 - b), a))
    f1 = b * (1 - more_f2) * c
    more_f1 = f1 + (1 - more_f2 - f1) * d
    low, high = icone_index(f1, f2), icone_index(more_f1, more_f2)
    assert 0 <= low <= high <= 5


# --- a school day ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected", "f1", "f2"),
    [
        ([600.0] * 48, 0, 0.0, 0.0),  # all below 1,000 ppm
        ([1000.0] * 48, 0, 0.0, 0.0),  # 1,000 exactly is not above 1,000
        ([1000.5] * 48, 3, 1.0, 0.0),  # just above: middle band all day, 2.5 -> 3
        ([1700.0] * 48, 3, 1.0, 0.0),  # 1,700 exactly stays in the middle band
        ([1700.5] * 48, 5, 0.0, 1.0),  # just above 1,700 all day
        ([2500.0] * 48, 5, 0.0, 1.0),
        ([800.0] * 24 + [1200.0] * 24, 1, 0.5, 0.0),  # 8.3048 * log10(1.5) = 1.46
        ([800.0] * 24 + [1800.0] * 24, 3, 0.0, 0.5),  # 8.3048 * log10(2.5) = 3.30
        ([800.0] * 24 + [1200.0] * 12 + [1800.0] * 12, 3, 0.25, 0.25),  # log10(2) -> 2.5 -> 3
    ],
)
def test_school_day(values: list[float], expected: int, f1: float, f2: float) -> None:
    result = day_index(every_step(MONDAY, values))
    assert (result.index, result.f1, result.f2) == (expected, f1, f2)
    assert (result.occupied_steps, result.expected_steps, result.valid) == (48, 48, True)


def test_samples_outside_occupied_hours_are_ignored() -> None:
    # Stuffy before class (07:00-08:30), at night and after 16:30: only class hours count.
    night = every_step(MONDAY, [3000.0] * 9, hour=7, minute=0)
    evening = every_step(MONDAY, [3000.0] * 30, hour=16, minute=30)
    result = day_index(night + every_step(MONDAY, [600.0] * 48) + evening)
    assert (result.index, result.occupied_steps) == (IconeLevel.NONE, 48)


def test_wednesday_counts_the_morning_only() -> None:
    samples = every_step(WEDNESDAY, [1800.0] * 18 + [600.0] * 30)
    result = day_index(samples, WEDNESDAY)
    assert (result.index, result.expected_steps, result.f2) == (IconeLevel.EXTREME, 18, 1.0)


@pytest.mark.parametrize(
    "day",
    [
        EASTER_MONDAY,  # public holiday
        date(2024, 3, 9),  # Saturday
    ],
)
def test_day_without_class_has_no_index(day: date) -> None:
    result = day_index(every_step(day, [2500.0] * 48), day)
    assert (result.index, result.f1, result.f2, result.valid) == (None, None, None, False)
    assert (result.expected_steps, result.coverage) == (0, 0.0)


@pytest.mark.parametrize(
    ("readings", "valid"),
    [
        (48, True),
        (34, True),  # 34 read + 2 held = 36 steps, 75 % of 48
        (33, False),  # 35 steps
        (0, False),
    ],
)
def test_insufficient_data_is_flagged(readings: int, valid: bool) -> None:
    # The sensor falls silent after `readings` steps; its last value holds for two more.
    result = day_index(every_step(MONDAY, [1200.0] * readings))
    assert (result.valid, result.occupied_steps, result.expected_steps) == (
        valid,
        min(48, readings + 2) if readings else 0,
        48,
    )
    assert result.index == (IconeLevel.HIGH if valid else None)


# --- the 10-minute step ---------------------------------------------------------------------


def test_a_step_takes_the_mean_of_its_samples() -> None:
    # Two samples a minute apart in each step: 900 and 1150 average 1,025 ppm (middle band).
    start = at(MONDAY, 8, 30)
    samples = [
        (start + i * STEP + timedelta(minutes=m), v)
        for i in range(48)
        for m, v in ((1, 900.0), (2, 1150.0))
    ]
    result = day_index(samples)
    assert (result.f1, result.occupied_steps, result.index) == (1.0, 48, IconeLevel.HIGH)


def test_a_sensor_reporting_every_15_minutes_fills_every_step() -> None:
    start = at(MONDAY, 8, 30)
    samples = [(start + i * timedelta(minutes=15), 1800.0) for i in range(32)]
    result = day_index(samples)
    assert (result.occupied_steps, result.valid, result.index) == (48, True, IconeLevel.EXTREME)


def test_a_silent_sensor_holds_its_last_value_for_20_minutes_only() -> None:
    # Readings until 10:30 (12 steps), then silence: 10:30 and 10:40 are held, not 10:50.
    samples = every_step(MONDAY, [1800.0] * 12)
    assert day_index(samples).occupied_steps == 14


def test_a_reading_before_class_fills_the_first_step() -> None:
    samples = [(at(MONDAY, 8, 25), 1200.0), *every_step(MONDAY, [1200.0] * 47, minute=40)]
    assert day_index(samples).occupied_steps == 48


# --- a series, day by day -------------------------------------------------------------------


def test_daily_icone_gives_every_day_of_the_span() -> None:
    # Friday 29 March to Tuesday 2 April 2024: Easter weekend and Easter Monday in between.
    friday, tuesday = date(2024, 3, 29), date(2024, 4, 2)
    samples = [
        *every_step(friday, [800.0] * 24 + [1800.0] * 24),
        *every_step(EASTER_MONDAY, [2500.0] * 48),  # heating test in an empty school
        *every_step(tuesday, [1200.0] * 48),
    ]
    days = daily_icone(samples, SCHOOL)
    assert [(result.day, result.index) for result in days] == [
        (friday, IconeLevel.HIGH),
        (date(2024, 3, 30), None),
        (date(2024, 3, 31), None),
        (EASTER_MONDAY, None),
        (tuesday, IconeLevel.HIGH),
    ]


def test_daily_icone_matches_icone_over_each_day() -> None:
    samples = every_step(MONDAY, [900.0 + 25 * i for i in range(60)], hour=7)
    samples += every_step(MONDAY + timedelta(days=1), [1500.0 + 10 * i for i in range(48)])
    days = daily_icone(samples, SCHOOL)
    assert days == [day_index(samples, day.day) for day in days]


def test_daily_icone_of_nothing_is_empty() -> None:
    assert daily_icone([], SCHOOL) == []


# --- input checks ---------------------------------------------------------------------------


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        day_index([(datetime(2024, 3, 4, 9), 800.0)])


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_impossible_concentrations_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="CO2 value"):
        day_index([(at(MONDAY, 9), value)])


def test_end_before_start_is_refused() -> None:
    with pytest.raises(ValueError, match="before start"):
        icone([], SCHOOL, start=at(MONDAY, 12), end=at(MONDAY, 8))
