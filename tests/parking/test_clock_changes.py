"""Until when a zone's statuses hold with the clock alone: `status.clock_instants` with the
regulated hours' own changes must name every instant at which `zone_status` can answer
differently, or the live feed would keep a stale status (parking.live recomputes a zone
only then). Checked on random zones with the typical hours of core.hours (lunch breaks,
nights, Sundays) in Europe/Paris."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from core import hours
from parking.feed import rules_of
from parking.occupancy import Interval
from parking.status import (
    CLOCK_STEP,
    BayInput,
    Session,
    clock_instants,
    first_after,
    zone_status,
)
from parking.tariffs import Tariff

PARIS = ZoneInfo("Europe/Paris")
MONDAY = datetime(2026, 11, 23, tzinfo=PARIS)
TYPICAL = hours.RegulatedHours.typical()
HORIZON = timedelta(days=3)  # how far to look when nothing is due

# durations, often short: grace periods and paid ends then fall between now and the next hour
minutes = st.one_of(st.integers(0, 12), st.integers(0, 600)).map(lambda m: timedelta(minutes=m))


def _zone(grace_minutes: int) -> dict[str, object]:
    """A zone row: typical hours, the example tariff (3 hours at most)."""
    return {
        "hours": TYPICAL.model_dump(mode="json"),
        "tariff": Tariff.example().model_dump(mode="json"),
        "grace_minutes": grace_minutes,
    }


@st.composite
def zones(draw: st.DrawFn) -> tuple[datetime, dict[str, object], list[BayInput], list[Session]]:
    """A zone at a random instant of a week: bays with or without a car (some leaving
    later, some arriving later: sensor clocks ahead) and sessions by bay or for the zone,
    started before or after now, with or without a paid end or a stop."""
    daytime = st.integers(8 * 60 + 30, 19 * 60 + 30)  # mostly charged: 09-12 and 14-19
    day = draw(st.integers(0, 6))
    now = MONDAY + timedelta(days=day, minutes=draw(st.one_of(daytime, st.integers(0, 1439))))
    zone = _zone(grace_minutes=draw(st.sampled_from([0, 10, 15])))
    bays = []
    for number in range(draw(st.integers(1, 6))):
        stay = None
        if draw(st.integers(0, 3)):  # mostly a car
            early = draw(st.sampled_from([0, 0, 7]))  # minutes ahead: a sensor clock drifting
            arrived = now - draw(minutes) + timedelta(minutes=early)
            left = arrived + draw(minutes) + timedelta(minutes=1) if draw(st.booleans()) else None
            stay = Interval(arrived, left)
        bays.append(BayInput(f"B{number}", draw(st.booleans()) or stay is None, stay))
    sessions = []
    for number in range(draw(st.integers(0, 4))):
        started = now - draw(minutes) + timedelta(minutes=draw(st.sampled_from([0, 0, 5])))
        ends = started + draw(minutes) + timedelta(minutes=1) if draw(st.booleans()) else None
        stopped = started + draw(minutes) if draw(st.booleans()) else None
        bay = draw(st.sampled_from([None, *(b.bay_id for b in bays)]))
        sessions.append(Session(number, f"AB-{number:03d}-CD", bay, started, ends, stopped))
    return now, zone, bays, sessions


@settings(max_examples=1000, deadline=None)
@given(zones())
def test_statuses_hold_until_the_next_clock_change(
    case: tuple[datetime, dict[str, object], list[BayInput], list[Session]],
) -> None:
    now, zone, bays, sessions = case
    rules = rules_of(zone)
    result = zone_status(now, rules, bays, sessions)
    instants = clock_instants(now, rules, bays, sessions, result)
    due = first_after(now, [*instants, hours.next_change(TYPICAL, now)])
    assert due is None or due > now
    change = due - CLOCK_STEP if due is not None else now + HORIZON
    for later in (now + (change - now) / 3, now + (change - now) * 0.9, change - CLOCK_STEP):
        if later >= now:
            assert zone_status(later, rules, bays, sessions) == result, (
                f"statuses at {later} differ from those at {now}; the zone was due at {due}"
            )


def test_grace_end_and_paid_end_are_named() -> None:
    now = MONDAY.replace(hour=10)
    rules = rules_of(_zone(grace_minutes=10))
    bays = [BayInput("B1", True, Interval(now - timedelta(minutes=4), None)),
            BayInput("B2", True, Interval(now - timedelta(minutes=30), None))]  # fmt: skip
    paid_end = now + timedelta(minutes=20)
    sessions = [Session(1, "AB-001-CD", "B2", now - timedelta(minutes=29), paid_end, None)]
    result = zone_status(now, rules, bays, sessions)
    due = first_after(now, clock_instants(now, rules, bays, sessions, result))
    assert due == now + timedelta(minutes=6) + CLOCK_STEP  # B1's grace ends first
    later = zone_status(due, rules, bays, sessions)
    assert str(later.bays["B1"].status) == "unpaid" and str(later.bays["B2"].status) == "paid"
    after_grace = first_after(due, clock_instants(due, rules, bays, sessions, later))
    assert after_grace == paid_end + CLOCK_STEP
