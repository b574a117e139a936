"""Occupancy stays rebuilt from a bay sensor's readings: out of order, repeated, late, raw."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from parking.occupancy import Interval, current, intervals


def at(clock: str) -> datetime:
    """An instant on Monday 3 June 2024, UTC, from 'HH:MM' or 'HH:MM:SS'."""
    return datetime.fromisoformat(f"2024-06-03T{clock}").replace(tzinfo=UTC)


def stay(arrived: str, left: str | None) -> Interval:
    return Interval(arrived_at=at(arrived), left_at=at(left) if left is not None else None)


@dataclass(frozen=True)
class Case:
    name: str
    readings: list[tuple[str, float]]  # in arrival order
    expected: list[Interval]


CASES = [
    Case("empty input gives no stay", [], []),
    Case("a single occupied reading opens a stay", [("10:00", 1)], [stay("10:00", None)]),
    Case(
        "a leading free reading means nothing", [("09:00", 0), ("10:00", 1)], [stay("10:00", None)]
    ),
    Case("only free readings give no stay", [("09:00", 0), ("09:30", 0)], []),
    Case(
        "heartbeats do not create new arrivals",
        [("10:00", 1), ("10:10", 1), ("10:20", 1), ("10:30", 0), ("10:40", 0)],
        [stay("10:00", "10:30")],
    ),
    Case(
        "duplicated readings count once",
        [("10:00", 1), ("10:00", 1), ("10:30", 0), ("10:30", 0)],
        [stay("10:00", "10:30")],
    ),
    Case(
        "readings in any order are sorted by time",
        [("10:30", 0), ("11:00", 1), ("10:00", 1), ("11:30", 0)],
        [stay("10:00", "10:30"), stay("11:00", "11:30")],
    ),
    Case(
        "two cars between two uplinks give two stays",
        [("10:00", 1), ("10:20", 0), ("10:22", 1)],
        [stay("10:00", "10:20"), stay("10:22", None)],
    ),
    Case(
        "a late free reading arriving after the next occupied one splits the stay",
        [("10:00", 1), ("10:22", 1), ("10:20", 0)],
        [stay("10:00", "10:20"), stay("10:22", None)],
    ),
    Case(
        "a late occupied reading before the first one moves the arrival earlier",
        [("10:05", 1), ("10:30", 0), ("10:00", 1)],
        [stay("10:00", "10:30")],
    ),
    Case(
        "same time with different values: the last received wins (free)",
        [("10:00", 1), ("10:20", 1), ("10:20", 0)],
        [stay("10:00", "10:20")],
    ),
    Case(
        "same time with different values: the last received wins (occupied)",
        [("10:00", 1), ("10:20", 0), ("10:20", 1)],
        [stay("10:00", None)],
    ),
    Case(
        "values above one half mean occupied, others free",
        [("10:00", 0.8), ("10:10", 2.0), ("10:20", 0.5), ("10:30", 0.51), ("10:40", -1.0)],
        [stay("10:00", "10:20"), stay("10:30", "10:40")],
    ),
    Case(
        "a NaN value says nothing",
        [("10:00", 1), ("10:10", float("nan")), ("10:20", 0)],
        [stay("10:00", "10:20")],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_intervals(case: Case) -> None:
    readings = [(at(clock), float(value)) for clock, value in case.readings]
    assert intervals(readings) == case.expected


def test_intervals_accepts_any_iterable_once() -> None:
    readings = iter([(at("10:00"), 1.0), (at("10:05"), 0.0)])
    assert intervals(readings) == [stay("10:00", "10:05")]


STAYS = [stay("10:00", "10:20"), stay("10:22", None)]


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        ("09:59:59", None),
        ("10:00", stay("10:00", "10:20")),
        ("10:19:59", stay("10:00", "10:20")),
        ("10:20", None),  # the departure is excluded
        ("10:21", None),
        ("10:22", stay("10:22", None)),
        ("23:00", stay("10:22", None)),
    ],
)
def test_current_is_the_stay_covering_the_instant(instant: str, expected: Interval | None) -> None:
    assert current(STAYS, at(instant)) == expected


def test_current_of_no_stays_is_none() -> None:
    assert current([], at("10:00")) is None
