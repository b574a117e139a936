"""A bay's enforcement status: paid, grace, unpaid, overstay, zone-level session matching."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parking.occupancy import Interval, current, intervals
from parking.status import (
    BayInput,
    BayStatus,
    Matched,
    Session,
    Status,
    ZoneRules,
    zone_status,
)

# --- a zone charged Monday to Saturday, 09:00-19:00 UTC ------------------------------------

MONDAY = date(2024, 6, 3)
OPENS, CLOSES = time(9), time(19)


def at(clock: str, day: int = 0) -> datetime:
    """An instant `day` days after Monday 3 June 2024, UTC, from 'HH:MM' or 'HH:MM:SS'."""
    return datetime.combine(MONDAY + timedelta(days=day), time.fromisoformat(clock), UTC)


def _charged_periods(start: datetime) -> Iterator[tuple[datetime, datetime]]:
    day = start.date()
    while True:
        if day.weekday() != 6:
            yield datetime.combine(day, OPENS, UTC), datetime.combine(day, CLOSES, UTC)
        day += timedelta(days=1)


def is_regulated(moment: datetime) -> bool:
    return moment.weekday() != 6 and OPENS <= moment.time() < CLOSES


def regulated_seconds(start: datetime, end: datetime) -> float:
    total = 0.0
    for opens, closes in _charged_periods(start):
        if opens >= end:
            return total
        overlap = (min(closes, end) - max(opens, start)).total_seconds()
        total += max(0.0, overlap)
    raise AssertionError("unreachable")


def add_regulated(start: datetime, seconds: float) -> datetime:
    elapsed = 0.0
    for opens, closes in _charged_periods(start):
        begin = max(opens, start)
        if begin >= closes:
            continue
        available = (closes - begin).total_seconds()
        if seconds - elapsed <= available:
            return begin + timedelta(seconds=seconds - elapsed)
        elapsed += available
    raise AssertionError("unreachable")


def rules(grace_minutes: int = 15, max_duration_minutes: int | None = None) -> ZoneRules:
    return ZoneRules(
        grace_minutes=grace_minutes,
        max_duration_minutes=max_duration_minutes,
        is_regulated=is_regulated,
        regulated_seconds=regulated_seconds,
        add_regulated=add_regulated,
    )


def test_fake_rules_count_charged_time_only() -> None:
    assert regulated_seconds(at("18:00"), at("10:00", day=1)) == 2 * 3600
    assert regulated_seconds(at("18:00", day=5), at("10:00", day=7)) == 2 * 3600  # Sunday
    assert add_regulated(at("18:50"), 15 * 60) == at("09:05", day=1)
    assert add_regulated(at("07:00"), 0) == at("09:00")
    assert add_regulated(at("10:00"), 0) == at("10:00")
    assert add_regulated(at("18:50"), 600) == at("19:00")


# --- building scenarios ---------------------------------------------------------------------


def plate(session_id: int) -> str:
    return f"AB-{session_id:03d}-CD"


def session(
    session_id: int,
    started: datetime,
    ends: datetime | None = None,
    stopped: datetime | None = None,
    bay: str | None = None,
) -> Session:
    return Session(session_id, plate(session_id), bay, started, ends, stopped)


def occupied(bay_id: str, arrived: datetime, sensor_ok: bool = True) -> BayInput:
    return BayInput(bay_id, sensor_ok, Interval(arrived_at=arrived, left_at=None))


def free(bay_id: str) -> BayInput:
    return BayInput(bay_id, True, None)


def expect(
    bay_id: str,
    status: Status,
    since: datetime | None = None,
    session_id: int | None = None,
    matched: Matched | None = None,
) -> BayStatus:
    return BayStatus(
        bay_id,
        status,
        since,
        session_id,
        plate(session_id) if session_id is not None else None,
        matched,
    )


def two_cars_between_two_uplinks() -> BayInput:
    """Car 1 10:00-10:20, car 2 from 10:22; the free reading arrives after the occupied one."""
    readings = [(at("10:00"), 1.0), (at("10:10"), 1.0), (at("10:22"), 1.0), (at("10:20"), 0.0)]
    stays = intervals(readings)
    return BayInput("B1", True, current(stays, at("10:30")))


@dataclass(frozen=True)
class Scenario:
    name: str
    now: datetime
    bays: list[BayInput]
    sessions: list[Session]
    expected: list[BayStatus]
    unpaid_count: int = 0
    unassigned: list[int] = field(default_factory=list)
    grace_minutes: int = 15
    max_duration_minutes: int | None = None


PAID = Status.PAID
GRACE, UNPAID, UNVERIFIED = Status.GRACE, Status.UNPAID, Status.UNVERIFIED
OVERSTAY, UNKNOWN, UNREGULATED, FREE = (
    Status.OVERSTAY,
    Status.UNKNOWN,
    Status.UNREGULATED,
    Status.FREE,
)

SCENARIOS = [
    # --- bay-level sessions
    Scenario(
        "session started before arrival pays for the car",
        now=at("10:30"),
        bays=[occupied("B1", at("10:05"))],
        sessions=[session(1, at("10:00"), ends=at("11:00"), bay="B1")],
        expected=[expect("B1", PAID, at("10:05"), 1, "bay")],
    ),
    Scenario(
        "session started after arrival is paid since its start",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:04"), ends=at("11:00"), bay="B1")],
        expected=[expect("B1", PAID, at("10:04"), 1, "bay")],
    ),
    Scenario(
        "session without a chosen duration pays until stopped",
        now=at("15:00"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:04"), bay="B1")],
        expected=[expect("B1", PAID, at("10:04"), 1, "bay")],
    ),
    Scenario(
        "free bay is free even with a session on it",
        now=at("10:30"),
        bays=[free("B1")],
        sessions=[session(1, at("10:04"), ends=at("11:00"), bay="B1")],
        expected=[expect("B1", FREE)],
    ),
    Scenario(
        "grace just before it ends",
        now=at("10:14:59"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[],
        expected=[expect("B1", GRACE, at("10:00"))],
    ),
    Scenario(
        "unpaid at the instant grace ends",
        now=at("10:15"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[],
        expected=[expect("B1", UNPAID, at("10:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "unpaid just after grace ends",
        now=at("10:15:01"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[],
        expected=[expect("B1", UNPAID, at("10:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "grace counts charged time only: a car parked before 09:00",
        now=at("09:14:59"),
        bays=[occupied("B1", at("08:00"))],
        sessions=[],
        expected=[expect("B1", GRACE, at("08:00"))],
    ),
    Scenario(
        "a car parked before 09:00 is unpaid from 09:15",
        now=at("09:15"),
        bays=[occupied("B1", at("08:00"))],
        sessions=[],
        expected=[expect("B1", UNPAID, at("09:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "grace started at 18:50 runs on the next morning",
        now=at("09:05", day=1),
        bays=[occupied("B1", at("18:50"))],
        sessions=[],
        expected=[expect("B1", UNPAID, at("09:05", day=1))],
        unpaid_count=1,
    ),
    Scenario(
        "extension moves the paid end and keeps the bay paid",
        now=at("11:30"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("12:00"), bay="B1")],  # was 11:00
        expected=[expect("B1", PAID, at("10:02"), 1, "bay")],
    ),
    Scenario(
        "extension by a second session: the newest covering session is shown",
        now=at("11:30"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[
            session(1, at("10:02"), ends=at("11:00"), bay="B1"),
            session(2, at("10:58"), ends=at("12:00"), bay="B1"),
        ],
        expected=[expect("B1", PAID, at("10:58"), 2, "bay")],
    ),
    Scenario(
        "overstay after the paid end",
        now=at("11:10"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("11:00"), bay="B1")],
        expected=[expect("B1", OVERSTAY, at("11:00"), 1, "bay")],
    ),
    Scenario(
        "overstay at the very instant the paid end is reached",
        now=at("11:00"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("11:00"), bay="B1")],
        expected=[expect("B1", OVERSTAY, at("11:00"), 1, "bay")],
    ),
    Scenario(
        "paid exactly at the maximum stay",
        now=at("12:00"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("14:00"), bay="B1")],
        expected=[expect("B1", PAID, at("10:02"), 1, "bay")],
        max_duration_minutes=120,
    ),
    Scenario(
        "overstay beyond the maximum stay even though paid",
        now=at("12:30"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("14:00"), bay="B1")],
        expected=[expect("B1", OVERSTAY, at("12:00"), 1, "bay")],
        max_duration_minutes=120,
    ),
    Scenario(
        "maximum stay counts charged time across the night",
        now=at("10:30", day=1),
        bays=[occupied("B1", at("18:00"))],
        sessions=[session(1, at("18:01"), bay="B1")],
        expected=[expect("B1", OVERSTAY, at("10:00", day=1), 1, "bay")],
        max_duration_minutes=120,
    ),
    Scenario(
        "overstay since the earlier of the paid end and the maximum stay",
        now=at("11:45"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("11:30"), bay="B1")],
        expected=[expect("B1", OVERSTAY, at("11:00"), 1, "bay")],
        max_duration_minutes=60,
    ),
    Scenario(
        "session stopped before the car arrived does not count",
        now=at("11:00"),
        bays=[occupied("B1", at("10:40"))],
        sessions=[session(1, at("10:00"), ends=at("12:00"), stopped=at("10:30"), bay="B1")],
        expected=[expect("B1", UNPAID, at("10:55"))],
        unpaid_count=1,
    ),
    Scenario(
        "session that expired before the car arrived does not make it overstay",
        now=at("11:00"),
        bays=[occupied("B1", at("10:40"))],
        sessions=[session(1, at("10:00"), ends=at("10:30"), bay="B1")],
        expected=[expect("B1", UNPAID, at("10:55"))],
        unpaid_count=1,
    ),
    Scenario(
        "session for another bay does not count",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00")), free("B2")],
        sessions=[session(1, at("10:02"), ends=at("12:00"), bay="B2")],
        expected=[expect("B1", UNPAID, at("10:15")), expect("B2", FREE)],
        unpaid_count=1,
    ),
    Scenario(
        "driver stopped the session while the car stays: unpaid since the stop",
        now=at("11:00"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("12:00"), stopped=at("10:40"), bay="B1")],
        expected=[expect("B1", UNPAID, at("10:40"))],
        unpaid_count=1,
    ),
    Scenario(
        "session not started yet does not count",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:31"), ends=at("12:00"), bay="B1")],
        expected=[expect("B1", UNPAID, at("10:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "two cars in a bay between two uplinks: the second car's grace starts at its arrival",
        now=at("10:30"),
        bays=[two_cars_between_two_uplinks()],
        sessions=[session(1, at("10:01"), ends=at("11:00"), stopped=at("10:19"), bay="B1")],
        expected=[expect("B1", GRACE, at("10:22"))],
    ),
    Scenario(
        "two cars in a bay between two uplinks: the second car is unpaid after its own grace",
        now=at("10:37"),
        bays=[two_cars_between_two_uplinks()],
        sessions=[session(1, at("10:01"), ends=at("11:00"), stopped=at("10:19"), bay="B1")],
        expected=[expect("B1", UNPAID, at("10:37"))],
        unpaid_count=1,
    ),
    # --- sensors and hours
    Scenario(
        "silent sensor is unknown, even on a paid bay",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00"), sensor_ok=False), BayInput("B2", False, None)],
        sessions=[session(1, at("10:02"), ends=at("12:00"), bay="B1")],
        expected=[expect("B1", UNKNOWN), expect("B2", UNKNOWN)],
    ),
    Scenario(
        "unpaid just before charging ends",
        now=at("18:59:59"),
        bays=[occupied("B1", at("18:00"))],
        sessions=[],
        expected=[expect("B1", UNPAID, at("18:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "end of charged hours: every trusted bay is unregulated",
        now=at("19:00"),
        bays=[occupied("B1", at("18:00")), free("B2"), BayInput("B3", False, None)],
        sessions=[session(1, at("18:30"), ends=at("19:30"))],
        expected=[expect("B1", UNREGULATED), expect("B2", UNREGULATED), expect("B3", UNKNOWN)],
        unassigned=[1],
    ),
    Scenario(
        "Sunday is unregulated",
        now=at("12:00", day=6),
        bays=[occupied("B1", at("10:00", day=6))],
        sessions=[],
        expected=[expect("B1", UNREGULATED)],
    ),
    # --- zone-level sessions
    Scenario(
        "zone-level sessions matched unambiguously to the cars that arrived just before",
        now=at("10:45"),
        bays=[occupied("B1", at("10:00")), occupied("B2", at("10:30"))],
        sessions=[session(1, at("10:03"), ends=at("12:00")), session(2, at("10:32"))],
        expected=[
            expect("B1", PAID, at("10:03"), 1, "zone"),
            expect("B2", PAID, at("10:32"), 2, "zone"),
        ],
    ),
    Scenario(
        "zone-level sessions started in the reverse order of the arrivals",
        now=at("10:45"),
        bays=[occupied("B1", at("10:10")), occupied("B2", at("10:20"))],
        sessions=[session(1, at("10:22")), session(2, at("10:25"))],
        expected=[
            expect("B1", PAID, at("10:25"), 2, "zone"),
            expect("B2", PAID, at("10:22"), 1, "zone"),
        ],
    ),
    Scenario(
        "zone-level session started a few minutes before the car arrived",
        now=at("10:30"),
        bays=[occupied("B1", at("10:06"))],
        sessions=[session(1, at("10:00"), ends=at("12:00"))],
        expected=[expect("B1", PAID, at("10:06"), 1, "zone")],
    ),
    Scenario(
        "a car reported up to two minutes after the session start counts as arrived before it",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00")), occupied("B2", at("10:12"))],
        sessions=[session(1, at("10:10"), ends=at("12:00"))],
        expected=[
            expect("B1", UNPAID, at("10:15")),
            expect("B2", PAID, at("10:12"), 1, "zone"),
        ],
        unpaid_count=1,
    ),
    Scenario(
        "zone-level session goes to the bay without a bay-level session",
        now=at("10:30"),
        bays=[occupied("B1", at("10:00")), occupied("B2", at("10:02"))],
        sessions=[session(1, at("10:01"), ends=at("12:00"), bay="B1"), session(2, at("10:04"))],
        expected=[
            expect("B1", PAID, at("10:01"), 1, "bay"),
            expect("B2", PAID, at("10:04"), 2, "zone"),
        ],
    ),
    Scenario(
        "expired zone-level session makes its car overstay",
        now=at("11:20"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("11:00"))],
        expected=[expect("B1", OVERSTAY, at("11:00"), 1, "zone")],
    ),
    Scenario(
        "zone-level session beyond the maximum stay is overstay",
        now=at("12:10"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"))],
        expected=[expect("B1", OVERSTAY, at("12:00"), 1, "zone")],
        max_duration_minutes=120,
    ),
    Scenario(
        "stopped zone-level session is left out",
        now=at("10:45"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:02"), ends=at("12:00"), stopped=at("10:30"))],
        expected=[expect("B1", UNPAID, at("10:15"))],
        unpaid_count=1,
    ),
    Scenario(
        "zone-level session that ended before the car arrived is not matched to it",
        now=at("10:45"),
        bays=[occupied("B1", at("10:20"))],
        sessions=[session(1, at("10:12"), ends=at("10:18"))],
        expected=[expect("B1", UNPAID, at("10:35"))],
        unpaid_count=1,
        unassigned=[1],
    ),
    Scenario(
        "more cars than zone-level sessions: cars are unverified and one at least is unpaid",
        now=at("10:30"),
        bays=[
            occupied("B1", at("10:00")),
            occupied("B2", at("10:01")),
            occupied("B3", at("10:03")),
        ],
        sessions=[session(1, at("10:04"), ends=at("12:00")), session(2, at("10:05"))],
        expected=[
            expect("B1", UNVERIFIED, at("10:15")),
            expect("B2", UNVERIFIED, at("10:16")),
            expect("B3", UNVERIFIED, at("10:18")),
        ],
        unpaid_count=1,
        unassigned=[1, 2],
    ),
    Scenario(
        "zone-level session started long after every arrival is not guessed",
        now=at("10:45"),
        bays=[occupied("B1", at("10:00"))],
        sessions=[session(1, at("10:40"))],
        expected=[expect("B1", UNVERIFIED, at("10:15"))],
        unassigned=[1],
    ),
    Scenario(
        "cars parked overnight become payable together at 09:00 and cannot be told apart",
        now=at("09:30", day=1),
        bays=[occupied("B1", at("22:00")), occupied("B2", at("06:30", day=1))],
        sessions=[session(1, at("09:03", day=1))],
        expected=[
            expect("B1", UNVERIFIED, at("09:15", day=1)),
            expect("B2", UNVERIFIED, at("09:15", day=1)),
        ],
        unpaid_count=1,
        unassigned=[1],
    ),
    Scenario(
        "a car parked overnight matches the session started when charging starts",
        now=at("09:30", day=1),
        bays=[occupied("B1", at("22:00"))],
        sessions=[session(1, at("09:03", day=1))],
        expected=[expect("B1", PAID, at("09:03", day=1), 1, "zone")],
    ),
    Scenario(
        "cars in grace stay in grace while an unplaced session makes the others unverified",
        now=at("10:30"),
        bays=[
            occupied("B1", at("10:00")),
            occupied("B2", at("10:20")),
            occupied("B3", at("10:22")),
        ],
        sessions=[session(1, at("10:23"))],
        expected=[
            expect("B1", UNVERIFIED, at("10:15")),
            expect("B2", GRACE, at("10:20")),
            expect("B3", GRACE, at("10:22")),
        ],
        unassigned=[1],
    ),
    Scenario(
        "zone-level session with no car to pay for stays unassigned",
        now=at("10:30"),
        bays=[free("B1")],
        sessions=[session(1, at("10:10"))],
        expected=[expect("B1", FREE)],
        unassigned=[1],
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_zone_status(scenario: Scenario) -> None:
    result = zone_status(
        scenario.now,
        rules(scenario.grace_minutes, scenario.max_duration_minutes),
        scenario.bays,
        scenario.sessions,
    )
    assert result.bays == {bay.bay_id: bay for bay in scenario.expected}
    assert result.unpaid_count == scenario.unpaid_count
    assert result.unassigned_sessions == scenario.unassigned


def test_bays_come_back_in_input_order() -> None:
    bays = [free("B3"), free("B1"), free("B2")]
    assert list(zone_status(at("10:00"), rules(), bays, []).bays) == ["B3", "B1", "B2"]


def test_duplicate_bay_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        zone_status(at("10:00"), rules(), [free("B1"), free("B1")], [])


def test_status_values_are_the_agents_words() -> None:
    assert {status.value for status in Status} == {
        "free",
        "paid",
        "grace",
        "unpaid",
        "overstay",
        "unknown",
        "unregulated",
        "unverified",
    }


# --- properties -----------------------------------------------------------------------------

WEEK_MINUTES = 7 * 24 * 60
START = datetime.combine(MONDAY, time(0), UTC)
OCCUPIED_STATUSES = {PAID, GRACE, UNPAID, OVERSTAY, UNVERIFIED}


def minutes(value: int) -> datetime:
    return START + timedelta(minutes=value)


@st.composite
def zones(draw: st.DrawFn) -> tuple[datetime, ZoneRules, list[BayInput], list[Session]]:
    now_minute = draw(st.integers(min_value=600, max_value=WEEK_MINUTES - 1))
    bay_count = draw(st.integers(min_value=0, max_value=8))
    bays = []
    for index in range(bay_count):
        sensor_ok = draw(st.sampled_from([True, True, True, False]))
        arrival = draw(st.none() | st.integers(min_value=now_minute - 900, max_value=now_minute))
        stay = Interval(minutes(arrival), None) if arrival is not None else None
        bays.append(BayInput(f"B{index}", sensor_ok, stay))
    session_count = draw(st.integers(min_value=0, max_value=10))
    sessions = []
    for session_id in range(session_count):
        start = draw(st.integers(min_value=now_minute - 900, max_value=now_minute + 10))
        ends = draw(st.none() | st.integers(min_value=start + 1, max_value=start + 600))
        stopped = draw(st.none() | st.integers(min_value=start + 1, max_value=start + 600))
        bay_index = draw(st.none() | st.integers(min_value=0, max_value=max(0, bay_count - 1)))
        sessions.append(
            session(
                session_id,
                minutes(start),
                ends=minutes(ends) if ends is not None else None,
                stopped=minutes(stopped) if stopped is not None else None,
                bay=f"B{bay_index}" if bay_index is not None and bay_count else None,
            )
        )
    zone_rules = rules(
        grace_minutes=draw(st.integers(min_value=0, max_value=30)),
        max_duration_minutes=draw(st.none() | st.integers(min_value=1, max_value=300)),
    )
    return minutes(now_minute), zone_rules, bays, sessions


@settings(max_examples=300, deadline=None)
@given(zones())
def test_every_bay_gets_one_status_and_every_session_at_most_one_bay(
    zone: tuple[datetime, ZoneRules, list[BayInput], list[Session]],
) -> None:
    now, zone_rules, bays, sessions = zone
    result = zone_status(now, zone_rules, bays, sessions)

    assert list(result.bays) == [bay.bay_id for bay in bays]
    regulated = zone_rules.is_regulated(now)
    occupied_count = 0
    for bay in bays:
        status = result.bays[bay.bay_id]
        assert status.bay_id == bay.bay_id
        is_occupied = bay.sensor_ok and bay.occupancy is not None
        occupied_count += is_occupied
        if not bay.sensor_ok:
            assert status.status is UNKNOWN
        elif not regulated:
            assert status.status is UNREGULATED
        elif is_occupied:
            assert status.status in OCCUPIED_STATUSES
        else:
            assert status.status is FREE

    by_id = {session.id: session for session in sessions}
    shown = [status for status in result.bays.values() if status.session_id is not None]
    assert len({status.session_id for status in shown}) == len(shown)
    assert not {status.session_id for status in shown} & set(result.unassigned_sessions)
    for status in shown:
        assert status.session_id is not None
        assert status.status in {PAID, OVERSTAY}
        shown_session = by_id[status.session_id]
        assert status.plate == shown_session.plate
        assert shown_session.bay_id == (status.bay_id if status.matched == "bay" else None)
        assert shown_session.started_at <= now

    unpaid_bays = sum(status.status is UNPAID for status in result.bays.values())
    assert unpaid_bays <= result.unpaid_count <= occupied_count
