"""SLA clocks: GTI and GTR deadlines in business hours and 24/7, pauses, states, warnings.

Expected instants are worked out by hand in each row's comment. Business hours are Monday to
Friday 08:00-18:00 Europe/Paris (10 counted hours a day) without French public holidays.
Defaults: P0 GTI 1 h / GTR 4 h, P1 4 h / 12 h, P2 24 h / 5 business days (= 50 counted hours).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.sla import (
    AlertKind,
    ClockState,
    Milestone,
    Pause,
    Priority,
    SlaAlert,
    SlaClock,
    SlaPolicy,
)
from core.hours import RegulatedHours

PARIS = ZoneInfo("Europe/Paris")
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
BUSINESS = SlaPolicy()
ALWAYS = SlaPolicy(calendar="24/7")
GTI, GTR = Milestone.GTI, Milestone.GTR
P0, P1, P2 = Priority.P0, Priority.P1, Priority.P2


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def clock(
    priority: Priority,
    milestone: Milestone,
    opened_at: datetime,
    *,
    policy: SlaPolicy = BUSINESS,
    pauses: tuple[tuple[datetime, datetime | None], ...] = (),
    reached_at: datetime | None = None,
) -> SlaClock:
    return SlaClock(
        policy=policy,
        priority=priority,
        milestone=milestone,
        opened_at=opened_at,
        pauses=tuple(Pause(start, end) for start, end in pauses),
        reached_at=reached_at,
    )


# --- policy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "priority", "milestone", "expected"),
    [
        (BUSINESS, P0, GTI, 1 * HOUR),
        (BUSINESS, P0, GTR, 4 * HOUR),
        (BUSINESS, P1, GTI, 4 * HOUR),
        (BUSINESS, P1, GTR, 12 * HOUR),
        (BUSINESS, P2, GTI, 24 * HOUR),  # 24 counted hours, not one business day
        (BUSINESS, P2, GTR, 50 * HOUR),  # 5 business days x 10 h
        (ALWAYS, P2, GTI, 24 * HOUR),
        (ALWAYS, P2, GTR, 120 * HOUR),  # 5 days x 24 h
    ],
)
def test_default_delays(
    policy: SlaPolicy, priority: Priority, milestone: Milestone, expected: timedelta
) -> None:
    assert policy.delay(priority, milestone) == expected


def test_business_days_follow_the_schedule_length() -> None:
    hours = RegulatedHours.model_validate(
        {"weekly": {day: [{"start": "08:30", "end": "17:30"}] for day in ("mon", "tue", "wed")}}
    )
    # 5 business days x 9 h (08:30-17:30).
    assert SlaPolicy(business_hours=hours).delay(P2, GTR) == 45 * HOUR


def test_tenant_overrides_one_priority_and_keeps_the_others() -> None:
    policy = SlaPolicy.model_validate(
        {"delays": {"P1": {"gti": {"amount": 2}, "gtr": {"amount": 1, "unit": "business_days"}}}}
    )
    assert policy.delay(P1, GTI) == 2 * HOUR
    assert policy.delay(P1, GTR) == 10 * HOUR
    assert policy.delay(P0, GTR) == 4 * HOUR
    assert policy.delay(P2, GTR) == 50 * HOUR


def test_policy_round_trips_through_json() -> None:
    policy = SlaPolicy.model_validate(
        {
            "calendar": "24/7",
            "delays": {"P0": {"gti": {"amount": 0.5}, "gtr": {"amount": 2}}},
            "warning_lead": {"kind": "duration", "duration": "PT10M"},
        }
    )
    assert SlaPolicy.model_validate_json(policy.model_dump_json()) == policy


UNEVEN_WEEK = {
    "mon": [{"start": "08:00", "end": "18:00"}],
    "fri": [{"start": "08:00", "end": "12:00"}],
}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"business_hours": {"weekly": UNEVEN_WEEK}},
            "business days need business days of equal length "
            r"\(mon 10:00:00, fri 4:00:00\); give the delays in hours",
        ),
        (
            {"delays": {"P1": {"gti": {"amount": 13}, "gtr": {"amount": 12}}}},
            r"P1 GTI \(13 h\) is longer than its GTR \(12 h\)",
        ),
        (
            {"warning_lead": {"kind": "duration", "duration": "PT1H"}},
            r"warning lead 1:00:00 must be shorter than P0 GTI \(1 h\)",
        ),
        ({"warning_lead": {"kind": "fraction", "fraction": 1}}, "less than 1"),
        ({"warning_lead": {"kind": "fraction", "fraction": 0}}, "greater than 0"),
        ({"warning_lead": {"fraction": 0.5}}, "Unable to extract tag using discriminator"),
        ({"delays": {"P1": {"gti": {"amount": 0}, "gtr": {"amount": 1}}}}, "greater than 0"),
        ({"delays": {"P1": {"gti": {"amount": "nan"}, "gtr": {"amount": 1}}}}, "finite number"),
        ({"delays": {"P1": {"gti": {"amount": 1}, "gtr": {"amount": 1e9}}}}, "less than or equal"),
        ({"delays": {"P3": {"gti": {"amount": 1}, "gtr": {"amount": 2}}}}, "'P0', 'P1' or 'P2'"),
        ({"delays": {"P1": {"gti": {"amount": 1, "unit": "days"}}}}, "'hours' or 'business_days'"),
        ({"calendar": "always"}, "'business' or '24/7'"),
        ({"business_hours": {"weekly": {}}}, "business hours must have at least one range"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_policies_rejected(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SlaPolicy.model_validate(data)


def test_uneven_week_is_fine_with_delays_in_hours() -> None:
    policy = SlaPolicy.model_validate(
        {
            "business_hours": {"weekly": UNEVEN_WEEK},
            "delays": {"P2": {"gti": {"amount": 24}, "gtr": {"amount": 40}}},
        }
    )
    assert policy.delay(P2, GTR) == 40 * HOUR


# --- deadlines ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "priority", "milestone", "opened_at", "expected"),
    [
        # P2 opened on Friday 13 March 2026 at 17:30.
        pytest.param(
            BUSINESS, P2, GTI, paris(2026, 3, 13, 17, 30), paris(2026, 3, 18, 11, 30),
            id="p2-friday-1730-gti",
        ),  # 0.5 h Fri + 10 Mon 16 + 10 Tue 17 = 20.5; 3.5 h more on Wed 18 -> 11:30
        pytest.param(
            BUSINESS, P2, GTR, paris(2026, 3, 13, 17, 30), paris(2026, 3, 20, 17, 30),
            id="p2-friday-1730-gtr",
        ),  # 50 h: 0.5 Fri + 4 x 10 Mon-Thu = 40.5; 9.5 h more on Fri 20 -> 17:30
        pytest.param(
            ALWAYS, P2, GTI, paris(2026, 3, 13, 17, 30), paris(2026, 3, 14, 17, 30),
            id="p2-friday-1730-gti-24/7",
        ),  # + 24 h
        pytest.param(
            ALWAYS, P2, GTR, paris(2026, 3, 13, 17, 30), paris(2026, 3, 18, 17, 30),
            id="p2-friday-1730-gtr-24/7",
        ),  # + 5 x 24 h
        # P0 opened on a weekday (Tuesday 10 March 2026) at 17:30.
        pytest.param(
            BUSINESS, P0, GTI, paris(2026, 3, 10, 17, 30), paris(2026, 3, 11, 8, 30),
            id="p0-tuesday-1730-gti",
        ),  # 0.5 h Tue + 0.5 h Wed from 08:00
        pytest.param(
            BUSINESS, P0, GTR, paris(2026, 3, 10, 17, 30), paris(2026, 3, 11, 11, 30),
            id="p0-tuesday-1730-gtr",
        ),  # 0.5 h Tue + 3.5 h Wed from 08:00
        pytest.param(
            ALWAYS, P0, GTI, paris(2026, 3, 10, 17, 30), paris(2026, 3, 10, 18, 30),
            id="p0-tuesday-1730-gti-24/7",
        ),
        pytest.param(
            ALWAYS, P0, GTR, paris(2026, 3, 10, 17, 30), paris(2026, 3, 10, 21, 30),
            id="p0-tuesday-1730-gtr-24/7",
        ),
        # Weekends.
        pytest.param(
            BUSINESS, P1, GTI, paris(2026, 3, 13, 16), paris(2026, 3, 16, 10),
            id="weekend-friday-1600",
        ),  # 2 h Fri + 2 h Mon 16
        pytest.param(
            BUSINESS, P0, GTI, paris(2026, 3, 14, 10), paris(2026, 3, 16, 9),
            id="opened-on-saturday",
        ),  # nothing counts before Mon 16 08:00; + 1 h
        pytest.param(
            BUSINESS, P0, GTR, paris(2026, 3, 15, 23, 59), paris(2026, 3, 16, 12),
            id="opened-on-sunday-night",
        ),  # Mon 08:00 + 4 h
        # Deadlines exactly at boundaries.
        pytest.param(
            BUSINESS, P1, GTR, paris(2026, 3, 13, 16), paris(2026, 3, 16, 18),
            id="ends-at-18-not-next-morning",
        ),  # 2 h Fri + 10 h Mon = 12 h exactly at Mon 18:00
        pytest.param(
            BUSINESS, P0, GTR, paris(2026, 3, 10, 14), paris(2026, 3, 10, 18),
            id="ends-at-18-same-day",
        ),  # 14:00 + 4 h
        pytest.param(
            BUSINESS, P0, GTI, paris(2026, 3, 10, 18), paris(2026, 3, 11, 9),
            id="opened-at-18",
        ),  # 18:00 is outside business hours: Wed 08:00 + 1 h
        pytest.param(
            BUSINESS, P0, GTI, paris(2026, 3, 10, 8), paris(2026, 3, 10, 9),
            id="opened-at-08",
        ),
        pytest.param(
            BUSINESS, P2, GTR, paris(2026, 3, 14, 11), paris(2026, 3, 20, 18),
            id="p2-gtr-from-weekend-ends-friday-18",
        ),  # Mon 16 08:00 + 5 full days of 10 h -> Fri 20 18:00
        # Easter Monday 2026 (6 April) and 2027 (29 March, the day after the spring change).
        pytest.param(
            BUSINESS, P1, GTI, paris(2026, 4, 3, 17), paris(2026, 4, 7, 11),
            id="easter-monday-2026-gti",
        ),  # 1 h Fri 3 (Good Friday is worked) + 3 h Tue 7
        pytest.param(
            BUSINESS, P1, GTR, paris(2026, 4, 3, 17), paris(2026, 4, 8, 9),
            id="easter-monday-2026-gtr",
        ),  # 1 h Fri + 10 h Tue 7 + 1 h Wed 8
        pytest.param(
            BUSINESS, P1, GTI, paris(2027, 3, 26, 17), paris(2027, 3, 30, 11),
            id="easter-monday-2027-gti",
        ),  # 1 h Fri 26 + 3 h Tue 30 (summer time since Sun 28)
        pytest.param(
            BUSINESS, P1, GTR, paris(2027, 3, 26, 17), paris(2027, 3, 31, 9),
            id="easter-monday-2027-gtr",
        ),  # 1 h Fri + 10 h Tue 30 + 1 h Wed 31
        # Pentecost Monday 2026 (25 May) and 2027 (17 May).
        pytest.param(
            BUSINESS, P2, GTI, paris(2026, 5, 22, 17, 30), paris(2026, 5, 28, 11, 30),
            id="pentecost-monday-2026-gti",
        ),  # 0.5 h Fri 22 + 10 Tue 26 + 10 Wed 27 = 20.5; 3.5 h more on Thu 28
        pytest.param(
            BUSINESS, P2, GTR, paris(2026, 5, 22, 17, 30), paris(2026, 6, 1, 17, 30),
            id="pentecost-monday-2026-gtr",
        ),  # 0.5 h Fri 22 + 4 x 10 Tue 26-Fri 29 = 40.5; 9.5 h more on Mon 1 June
        pytest.param(
            BUSINESS, P1, GTI, paris(2027, 5, 14, 15), paris(2027, 5, 18, 9),
            id="pentecost-monday-2027-gti",
        ),  # 3 h Fri 14 + 1 h Tue 18
        pytest.param(
            BUSINESS, P1, GTR, paris(2027, 5, 14, 15), paris(2027, 5, 18, 17),
            id="pentecost-monday-2027-gtr",
        ),  # 3 h Fri 14 + 9 h Tue 18
        # 1 May and 8 May 2026 are Fridays.
        pytest.param(
            BUSINESS, P2, GTI, paris(2026, 4, 30, 13), paris(2026, 5, 5, 17),
            id="1-may-gti",
        ),  # 5 h Thu 30 + 10 h Mon 4 = 15; 9 h more on Tue 5
        pytest.param(
            BUSINESS, P2, GTR, paris(2026, 4, 30, 13), paris(2026, 5, 11, 13),
            id="1-may-and-8-may-gtr",
        ),  # 5 h Thu 30 + 4 x 10 Mon 4-Thu 7 = 45; Fri 8 off; 5 h more on Mon 11
        # 14 July 2026 is a Tuesday.
        pytest.param(
            BUSINESS, P1, GTI, paris(2026, 7, 13, 17), paris(2026, 7, 15, 11),
            id="14-july-gti",
        ),  # 1 h Mon 13 + 3 h Wed 15
        pytest.param(
            BUSINESS, P1, GTR, paris(2026, 7, 13, 17), paris(2026, 7, 16, 9),
            id="14-july-gtr",
        ),  # 1 h Mon 13 + 10 h Wed 15 + 1 h Thu 16
        # Daylight-saving weekends: 29 March and 25 October 2026, 31 October 2027.
        pytest.param(
            BUSINESS, P1, GTI, paris(2026, 3, 27, 17), paris(2026, 3, 30, 11),
            id="spring-change-business",
        ),  # 1 h Fri 27 + 3 h Mon 30
        pytest.param(
            BUSINESS, P1, GTI, paris(2026, 10, 23, 17), paris(2026, 10, 26, 11),
            id="autumn-change-business",
        ),  # 1 h Fri 23 + 3 h Mon 26
        pytest.param(
            ALWAYS, P1, GTR, paris(2026, 3, 28, 20), paris(2026, 3, 29, 9),
            id="spring-change-24/7",
        ),  # 20:00 +01:00 = 19:00 UTC; + 12 h = 07:00 UTC = 09:00 +02:00 (one hour skipped)
        pytest.param(
            ALWAYS, P1, GTR, paris(2026, 10, 24, 20), paris(2026, 10, 25, 7),
            id="autumn-change-24/7",
        ),  # 20:00 +02:00 = 18:00 UTC; + 12 h = 06:00 UTC = 07:00 +01:00 (one hour repeated)
        pytest.param(
            ALWAYS, P0, GTR, paris(2027, 10, 31, 0, 30), paris(2027, 10, 31, 3, 30),
            id="through-the-repeated-hour-24/7",
        ),  # 00:30 +02:00 = 22:30 UTC; + 4 h = 02:30 UTC = 03:30 +01:00
    ],
)  # fmt: skip
def test_deadline(
    policy: SlaPolicy,
    priority: Priority,
    milestone: Milestone,
    opened_at: datetime,
    expected: datetime,
) -> None:
    deadline = clock(priority, milestone, opened_at, policy=policy).deadline()
    assert deadline == expected
    assert deadline is not None and deadline.tzinfo == PARIS


def test_alsace_moselle_good_friday_is_off() -> None:
    hours = RegulatedHours.business().model_copy(update={"holiday_subdivision": "57"})
    policy = SlaPolicy(business_hours=hours)
    # 1 h Thu 2 April 2026; Good Friday 3 (Moselle) and Easter Monday 6 off; 3 h Tue 7.
    assert clock(P1, GTI, paris(2026, 4, 2, 17), policy=policy).deadline() == paris(2026, 4, 7, 11)


def test_opened_in_utc_answers_in_paris() -> None:
    # 16:30 UTC = 17:30 Paris on Tuesday 10 March 2026: P0 GTI as in the table.
    deadline = clock(P0, GTI, datetime(2026, 3, 10, 16, 30, tzinfo=UTC)).deadline()
    assert deadline is not None and deadline.isoformat() == "2026-03-11T08:30:00+01:00"


# --- pauses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "priority", "opened_at", "pauses", "expected"),
    [
        pytest.param(
            BUSINESS, P1, paris(2026, 3, 13, 10), (), paris(2026, 3, 16, 12),
            id="no-pause",
        ),  # 8 h Fri 13 + 4 h Mon 16
        pytest.param(
            BUSINESS, P1, paris(2026, 3, 13, 10),
            ((paris(2026, 3, 13, 14), paris(2026, 3, 17, 11)),), paris(2026, 3, 18, 9),
            id="across-a-weekend",
        ),  # 4 h Fri before the pause; from Tue 17 11:00: 7 h to 18:00 + 1 h Wed 18
        pytest.param(
            ALWAYS, P1, paris(2026, 3, 13, 10),
            ((paris(2026, 3, 13, 14), paris(2026, 3, 17, 11)),), paris(2026, 3, 17, 19),
            id="across-a-weekend-24/7",
        ),  # 4 h before the pause; Tue 17 11:00 + 8 h
        pytest.param(
            BUSINESS, P0, paris(2026, 3, 10, 17, 30),
            ((paris(2026, 3, 10, 19), paris(2026, 3, 11, 7)),), paris(2026, 3, 11, 11, 30),
            id="pause-outside-business-hours-changes-nothing",
        ),  # the night counts nothing either way: 0.5 h Tue + 3.5 h Wed
        pytest.param(
            BUSINESS, P1, paris(2026, 3, 9, 8),
            (
                (paris(2026, 3, 9, 10), paris(2026, 3, 9, 12)),
                (paris(2026, 3, 9, 14), paris(2026, 3, 10, 9)),
            ),
            paris(2026, 3, 10, 17),
            id="two-pauses",
        ),  # Mon 9: 08-10 (2 h) + 12-14 (2 h); from Tue 10 09:00: 8 h -> 17:00
        pytest.param(
            BUSINESS, P0, paris(2026, 3, 10, 10),
            ((paris(2026, 3, 10, 15), None),), paris(2026, 3, 10, 14),
            id="open-pause-after-the-deadline",
        ),  # 10:00 + 4 h = 14:00 < pause at 15:00: the breach stands
        pytest.param(
            BUSINESS, P0, paris(2026, 3, 10, 10),
            ((paris(2026, 3, 10, 14), None),), paris(2026, 3, 10, 14),
            id="open-pause-at-the-deadline",
        ),  # 4 h are used up exactly when the pause begins
        pytest.param(
            BUSINESS, P1, paris(2026, 3, 13, 10),
            ((paris(2026, 3, 13, 14), None),), None,
            id="open-pause",
        ),  # 4 h used, 8 h left: when they run depends on when the pause ends
        pytest.param(
            BUSINESS, P1, paris(2026, 3, 13, 10),
            ((paris(2026, 3, 13, 10), paris(2026, 3, 13, 12)),), paris(2026, 3, 16, 14),
            id="pause-from-the-opening",
        ),  # Fri 12:00-18:00 (6 h) + 6 h Mon 16
    ],
)  # fmt: skip
def test_deadline_with_pauses(
    policy: SlaPolicy,
    priority: Priority,
    opened_at: datetime,
    pauses: tuple[tuple[datetime, datetime | None], ...],
    expected: datetime | None,
) -> None:
    assert clock(priority, GTR, opened_at, policy=policy, pauses=pauses).deadline() == expected


def test_still_open_pause_freezes_the_clock() -> None:
    paused = clock(P1, GTR, paris(2026, 3, 13, 10), pauses=((paris(2026, 3, 16, 11), None),))
    # 8 h Fri 13 + 3 h Mon 16 before the pause; nothing counts while it lasts.
    for instant in (paris(2026, 3, 16, 11, 30), paris(2026, 3, 18, 15)):
        assert paused.elapsed(instant) == 11 * HOUR
        assert paused.remaining(instant) == 1 * HOUR
        assert paused.state(instant) is ClockState.PAUSED
    assert paused.deadline() is None
    # The warning came before the pause: 9 h = 8 h Fri + 1 h Mon -> Mon 09:00.
    assert paused.alerts() == [SlaAlert(GTR, AlertKind.WARNING, paris(2026, 3, 16, 9))]


def test_breach_stands_during_a_later_pause() -> None:
    late = clock(P0, GTR, paris(2026, 3, 10, 10), pauses=((paris(2026, 3, 10, 15), None),))
    assert late.state(paris(2026, 3, 10, 16)) is ClockState.BREACHED
    assert late.elapsed(paris(2026, 3, 10, 16)) == 5 * HOUR  # 10:00-15:00


@pytest.mark.parametrize(
    ("pauses", "message"),
    [
        (((paris(2026, 3, 10, 9), paris(2026, 3, 10, 11)),), "starts before the opening"),
        (
            (
                (paris(2026, 3, 10, 11), paris(2026, 3, 10, 13)),
                (paris(2026, 3, 10, 12), paris(2026, 3, 10, 14)),
            ),
            "overlaps the previous pause",
        ),
        (
            ((paris(2026, 3, 10, 11), None), (paris(2026, 3, 10, 12), paris(2026, 3, 10, 13))),
            "only the last pause may still be open",
        ),
        (((paris(2026, 3, 10, 12), paris(2026, 3, 10, 11)),), "pause end .* is before its start"),
    ],
)
def test_inconsistent_pauses_rejected(
    pauses: tuple[tuple[datetime, datetime | None], ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        clock(P0, GTR, paris(2026, 3, 10, 10), pauses=pauses)


# --- elapsed, remaining, state ------------------------------------------------------------

# P0 GTI opened on Tuesday 10 March 2026 at 17:30: deadline Wed 08:30, warning (a quarter of
# the hour left, i.e. 45 min elapsed) at Wed 08:15.
P0_EVENING = clock(P0, GTI, paris(2026, 3, 10, 17, 30))


@pytest.mark.parametrize(
    ("instant", "elapsed", "state"),
    [
        (paris(2026, 3, 10, 17, 30), timedelta(0), ClockState.OK),
        (paris(2026, 3, 10, 17, 45), 15 * MINUTE, ClockState.OK),
        (paris(2026, 3, 10, 23), 30 * MINUTE, ClockState.OK),  # 17:30-18:00, then night
        (paris(2026, 3, 11, 8, 14), 44 * MINUTE, ClockState.OK),
        (paris(2026, 3, 11, 8, 15), 45 * MINUTE, ClockState.WARNING),
        (paris(2026, 3, 11, 8, 29), 59 * MINUTE, ClockState.WARNING),
        (paris(2026, 3, 11, 8, 30), 60 * MINUTE, ClockState.BREACHED),
        (paris(2026, 3, 11, 9), 90 * MINUTE, ClockState.BREACHED),
    ],
)
def test_elapsed_remaining_and_state(
    instant: datetime, elapsed: timedelta, state: ClockState
) -> None:
    assert P0_EVENING.elapsed(instant) == elapsed
    assert P0_EVENING.remaining(instant) == HOUR - elapsed
    assert P0_EVENING.state(instant) is state


def test_breached_over_the_weekend_after_a_friday_evening_deadline() -> None:
    # P0 GTR opened Friday 13 March 2026 at 14:00: 4 h -> Fri 18:00; no time counts on
    # Saturday, yet the deadline has passed.
    friday = clock(P0, GTR, paris(2026, 3, 13, 14))
    assert friday.state(paris(2026, 3, 13, 17, 59)) is ClockState.WARNING  # 3h59 >= 3 h
    assert friday.state(paris(2026, 3, 14, 12)) is ClockState.BREACHED
    assert friday.remaining(paris(2026, 3, 14, 12)) == timedelta(0)
    assert friday.remaining(paris(2026, 3, 16, 9)) == -HOUR  # Mon 08:00-09:00 overdue


def test_24_7_counts_the_night() -> None:
    night = clock(P0, GTI, paris(2026, 3, 13, 17, 30), policy=ALWAYS)
    assert night.elapsed(paris(2026, 3, 14, 10)) == 16.5 * HOUR  # Fri 17:30 -> Sat 10:00
    assert night.state(paris(2026, 3, 14, 10)) is ClockState.BREACHED


def test_24_7_elapsed_across_the_spring_change() -> None:
    spring = clock(P2, GTR, paris(2026, 3, 27, 17), policy=ALWAYS)
    # Fri 27 17:00 +01:00 -> Mon 30 09:00 +02:00: 64 h on the wall clock, one of them skipped.
    assert spring.elapsed(paris(2026, 3, 30, 9)) == 63 * HOUR


# --- milestones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("milestone_clock", "in_time", "state"),
    [
        pytest.param(
            clock(P0, GTI, paris(2026, 3, 10, 17, 30), reached_at=paris(2026, 3, 11, 8, 29)),
            True, ClockState.MET, id="a-minute-early",
        ),  # deadline Wed 08:30
        pytest.param(
            clock(P0, GTI, paris(2026, 3, 10, 17, 30), reached_at=paris(2026, 3, 11, 8, 30)),
            False, ClockState.MISSED, id="at-the-deadline",
        ),  # "< 1 h" is strict
        pytest.param(
            clock(P0, GTR, paris(2026, 3, 13, 14), reached_at=paris(2026, 3, 14, 10)),
            False, ClockState.MISSED, id="saturday-after-friday-18",
        ),  # deadline Fri 18:00; Saturday counts nothing but comes after it
        pytest.param(
            clock(P0, GTR, paris(2026, 3, 13, 17), reached_at=paris(2026, 3, 14, 10)),
            True, ClockState.MET, id="saturday-before-monday-deadline",
        ),  # 1 h Fri, 3 h left -> Mon 11:00
        pytest.param(
            clock(
                P1, GTR, paris(2026, 3, 13, 10), pauses=((paris(2026, 3, 13, 14), None),),
                reached_at=paris(2026, 3, 16, 10),
            ),
            True, ClockState.MET, id="during-an-open-pause",
        ),  # 4 h used before the pause
        pytest.param(
            clock(
                P2, GTR, paris(2026, 3, 13, 17, 30), policy=ALWAYS,
                reached_at=paris(2026, 3, 18, 17, 29),
            ),
            True, ClockState.MET, id="24/7-a-minute-early",
        ),  # deadline Wed 18 17:30
    ],
)  # fmt: skip
def test_milestone_reached(milestone_clock: SlaClock, in_time: bool, state: ClockState) -> None:
    assert milestone_clock.reached_in_time() is in_time
    assert milestone_clock.reached_at is not None
    assert milestone_clock.state(milestone_clock.reached_at) is state
    assert milestone_clock.state(paris(2026, 4, 1)) is state
    assert milestone_clock.alerts() == []


def test_reached_clock_stops_and_keeps_its_deadline() -> None:
    done = clock(
        P1,
        GTR,
        paris(2026, 3, 13, 10),
        pauses=((paris(2026, 3, 13, 14), None),),
        reached_at=paris(2026, 3, 16, 10),
    )
    # The open pause ends where the milestone was reached: 8 h left from Mon 10:00 -> 18:00.
    assert done.deadline() == paris(2026, 3, 16, 18)
    assert done.elapsed(paris(2026, 3, 20)) == 4 * HOUR
    assert done.state(paris(2026, 3, 16, 9)) is ClockState.PAUSED


def test_unreached_clock_has_no_verdict() -> None:
    assert P0_EVENING.reached_in_time() is None


# --- warnings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sla_clock", "warning", "deadline"),
    [
        pytest.param(
            P0_EVENING, paris(2026, 3, 11, 8, 15), paris(2026, 3, 11, 8, 30),
            id="p0-gti",
        ),  # 45 min: 0.5 h Tue + 15 min Wed
        pytest.param(
            clock(P0, GTR, paris(2026, 3, 10, 17, 30)),
            paris(2026, 3, 11, 10, 30), paris(2026, 3, 11, 11, 30),
            id="p0-gtr",
        ),  # 3 h: 0.5 h Tue + 2.5 h Wed
        pytest.param(
            clock(P2, GTR, paris(2026, 3, 13, 17, 30)),
            paris(2026, 3, 19, 15), paris(2026, 3, 20, 17, 30),
            id="p2-gtr",
        ),  # 37.5 h: 0.5 h Fri + 3 x 10 Mon-Wed = 30.5; 7 h more on Thu 19
        pytest.param(
            clock(
                P2, GTI, paris(2026, 3, 13, 17, 30),
                policy=SlaPolicy.model_validate(
                    {"warning_lead": {"kind": "duration", "duration": "PT30M"}}
                ),
            ),
            paris(2026, 3, 18, 11), paris(2026, 3, 18, 11, 30),
            id="duration-lead",
        ),  # 23.5 h: 0.5 h Fri + 10 Mon + 10 Tue = 20.5; 3 h more on Wed 18
        pytest.param(
            clock(P1, GTI, paris(2026, 3, 13, 17, 30), policy=ALWAYS),
            paris(2026, 3, 13, 20, 30), paris(2026, 3, 13, 21, 30),
            id="24/7",
        ),  # 3 h and 4 h after 17:30
    ],
)  # fmt: skip
def test_alerts_before_and_at_the_deadline(
    sla_clock: SlaClock, warning: datetime, deadline: datetime
) -> None:
    assert sla_clock.warning_at() == warning
    assert sla_clock.alerts() == [
        SlaAlert(sla_clock.milestone, AlertKind.WARNING, warning),
        SlaAlert(sla_clock.milestone, AlertKind.BREACH, deadline),
    ]


def test_pause_moves_the_warning() -> None:
    # P0 GTR from Tue 10 March 2026 10:00, paused 11:00-14:00: 3 h = 1 h + 2 h from 14:00.
    moved = clock(
        P0, GTR, paris(2026, 3, 10, 10), pauses=((paris(2026, 3, 10, 11), paris(2026, 3, 10, 14)),)
    )
    assert moved.warning_at() == paris(2026, 3, 10, 16)
    assert moved.deadline() == paris(2026, 3, 10, 17)


# --- naive datetimes ----------------------------------------------------------------------

NAIVE = datetime(2026, 3, 10, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: clock(P0, GTI, NAIVE),
        lambda: clock(P0, GTI, paris(2026, 3, 10, 9), reached_at=NAIVE),
        lambda: Pause(NAIVE),
        lambda: Pause(paris(2026, 3, 10, 9), NAIVE),
        lambda: P0_EVENING.state(NAIVE),
        lambda: P0_EVENING.elapsed(NAIVE),
        lambda: P0_EVENING.remaining(NAIVE),
    ],
    ids=["opened_at", "reached_at", "pause-start", "pause-end", "state", "elapsed", "remaining"],
)
def test_naive_datetimes_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


@pytest.mark.parametrize(
    "call",
    [
        lambda: P0_EVENING.state(paris(2026, 3, 10, 17)),
        lambda: clock(P0, GTI, paris(2026, 3, 10, 17), reached_at=paris(2026, 3, 10, 16)),
    ],
    ids=["state", "reached_at"],
)
def test_instants_before_the_opening_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="before the opening"):
        call()


# --- property -----------------------------------------------------------------------------

openings = st.datetimes(
    min_value=datetime(2026, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59),
    timezones=st.just(PARIS),
)
pause_gaps = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=72 * 60),  # minutes after the previous point
        st.integers(min_value=0, max_value=72 * 60),  # pause length in minutes
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    opened_at=openings,
    gaps=pause_gaps,
    policy=st.sampled_from([BUSINESS, ALWAYS]),
    priority=st.sampled_from(list(Priority)),
)
def test_deadline_is_the_first_instant_the_delay_is_used_up(
    opened_at: datetime, gaps: list[tuple[int, int]], policy: SlaPolicy, priority: Priority
) -> None:
    pauses = []
    cursor = opened_at.astimezone(UTC)
    for gap, length in gaps:
        start = cursor + timedelta(minutes=gap)
        cursor = start + timedelta(minutes=length)
        pauses.append((start, cursor))
    sla_clock = clock(priority, GTR, opened_at, policy=policy, pauses=tuple(pauses))
    deadline = sla_clock.deadline()
    assert deadline is not None
    assert sla_clock.elapsed(deadline) == sla_clock.delay
    assert sla_clock.state(deadline) is ClockState.BREACHED
    just_before = deadline - timedelta(seconds=1)
    assert sla_clock.elapsed(just_before) < sla_clock.delay
    assert sla_clock.state(just_before) is not ClockState.BREACHED
