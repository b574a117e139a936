"""Each bay's enforcement status at an instant, from its occupancy and the zone's payment sessions.

What the agent sees
-------------------
For every bay of a tariff zone, at instant `now`, one of:

- `unknown`: the bay's sensor is silent, faulty or absent (since None);
- `unregulated`: parking is free of charge in the zone right now (since None: the caller knows
  when charging starts again);
- `free`: no car in the bay (since None: the caller knows when the last car left);
- `paid`: a session pays for the car (since the later of its arrival and the session's start);
- `overstay`: the car's session has expired (since its paid-until end), or the car has exceeded
  the zone's maximum stay (since the instant it reached it);
- `grace`: a car without a session, within the zone's grace period (since its arrival);
- `unpaid`: a car without a session, past the grace period (since the end of grace, or since
  the driver stopped the bay's session if that came later);
- `unverified`: like `unpaid`, but some zone-level session could not be placed on a bay, so this
  car may be paid for: the agent checks its plate (since as for `unpaid`).

Durations (grace, maximum stay) count regulated time only: a car parked at 08:50 where charging
starts at 09:00 with 15 minutes of grace is in grace until 09:15.

The rules, in order, for one bay
--------------------------------
1. Sensor not OK -> `unknown`. 2. Zone not regulated now -> `unregulated`.
3. No stay covering `now` -> `free`.
4. The car arrived at A. Its *bay-level* sessions are the sessions naming this bay that have
   started by `now` and did not end (stop or paid-until end, whichever came first) by A. A
   session started before A counts (drivers pay while walking to the car or before leaving the
   previous spot); one that ended before A paid for a previous car and does not.
   - One of them covers `now` -> `paid` (the newest if several), or `overstay` if the car's
     regulated time already exceeds the zone's maximum stay.
   - Else, if the newest one expired (its paid-until end passed without an earlier stop) ->
     `overstay` since that end.
   - Else (no bay-level session, or the driver stopped it while the car stayed) the bay goes on
     to the zone-level matching below.

Zone-level session matching
---------------------------
Many drivers pay for the zone without naming a bay. Such a session is matched to a car by time:
a driver starts the phone session a few minutes after parking.

- The bays to match are the occupied bays left by rule 4. Each has a *payable-from* instant: its
  arrival, or the start of the next regulated period when the car arrived while parking was free
  (cars parked overnight all become payable at 09:00, which is when their drivers pay).
- The sessions to match are the zone-level sessions that cover `now` or that expired (paid-until
  end passed, not stopped before it) — an expired session may belong to a car still there.
  Sessions the driver stopped are left out: the car has gone.
- Greedy, in order of session start S (ties by id), each session takes at most one bay among
  the bays not yet taken whose car arrived before the session ended:
  1. the bay with the latest payable-from P in [S - PAYMENT_DELAY_LIMIT, S + LATENCY_TOLERANCE]
     (the car arrived shortly before the driver paid; the tolerance absorbs sensor latency);
  2. if there is none, the bay with the earliest P in (S + LATENCY_TOLERANCE,
     S + EARLY_PAYMENT_LIMIT] (the driver paid just before the sensor saw the car);
  3. if there is none either, the session stays unassigned;
  and the choice must be unambiguous: if another bay not yet taken has a payable-from within
  AMBIGUITY_WINDOW of the chosen one, the session stays unassigned (two cars parked at nearly
  the same time cannot be told apart by time alone). Both bays stay available to later
  sessions.
- A bay that takes a session is `paid`, or `overstay` when that session has expired or the
  maximum stay is exceeded, with `matched="zone"`.

Bays left without a session
---------------------------
A car whose regulated time is below the grace period is in `grace`. The other n cars are past
grace. If no unassigned zone-level session covers `now`, each is `unpaid`. If k unassigned
sessions cover `now`, some of those cars may be paid for: each of the n cars is `unverified` (the
agent checks its plate) and at least max(0, n - k) of them are unpaid, which is what the zone's
`unpaid_count` adds (it also counts every `unpaid` bay). A session is never assigned to two bays,
and `unpaid_count` never exceeds the number of occupied bays.

Deliberate leanings: a wrong `paid` loses a fine, a wrong `unpaid` fines a driver who paid, so
the matching gives up rather than guess — an unmatched session turns the remaining cars into
`unverified`, never into `paid`.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from .occupancy import Interval

LATENCY_TOLERANCE = timedelta(minutes=2)
"""A session may start this long before the sensor reports the car and still count as 'after'."""
EARLY_PAYMENT_LIMIT = timedelta(minutes=10)
"""A zone-level session may start at most this long before the car's arrival."""
PAYMENT_DELAY_LIMIT = timedelta(minutes=20)
"""A zone-level session is matched to cars that arrived at most this long before it started."""
AMBIGUITY_WINDOW = timedelta(minutes=5)
"""Two cars whose payable-from instants are this close cannot be told apart by time."""

Matched = Literal["bay", "zone"]


class Status(StrEnum):
    """What an enforcement agent sees on a bay."""

    FREE = "free"
    PAID = "paid"
    GRACE = "grace"
    UNPAID = "unpaid"
    OVERSTAY = "overstay"
    UNKNOWN = "unknown"
    UNREGULATED = "unregulated"
    UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Session:
    """A phone payment session: for a plate, in the zone, optionally on one bay.

    `ends_at` is the paid-until end (None while the driver has not chosen a duration; moved by
    extensions); `stopped_at` is when the driver stopped it.
    """

    id: int
    plate: str
    bay_id: str | None
    started_at: datetime
    ends_at: datetime | None
    stopped_at: datetime | None

    @property
    def ended_at(self) -> datetime | None:
        """When the session stopped paying: its stop or its paid-until end, whichever is first."""
        ends = [at for at in (self.ends_at, self.stopped_at) if at is not None]
        return min(ends) if ends else None

    def covers(self, at: datetime) -> bool:
        """Whether the session pays for instant `at`."""
        ended_at = self.ended_at
        return self.started_at <= at and (ended_at is None or at < ended_at)

    def expired_by(self, at: datetime) -> bool:
        """Whether its paid-until end has passed by `at` without the driver stopping it earlier."""
        return (
            self.ends_at is not None
            and self.ends_at <= at
            and (self.stopped_at is None or self.stopped_at >= self.ends_at)
        )


@dataclass(frozen=True)
class ZoneRules:
    """What the zone's tariff says about time, as callables (the caller builds them from hours).

    - `is_regulated(at)`: whether parking is charged at `at`.
    - `regulated_seconds(start, end)`: charged seconds within [start, end) (0 when end <= start).
    - `add_regulated(start, seconds)`: the instant at which `seconds` of charged time have
      elapsed since `start` (the clock stops outside charged hours); `add_regulated(start, 0)`
      must be the first charged instant at or after `start` — the matching relies on it.
    """

    grace_minutes: int
    max_duration_minutes: int | None
    is_regulated: Callable[[datetime], bool]
    regulated_seconds: Callable[[datetime, datetime], float]
    add_regulated: Callable[[datetime, float], datetime]


@dataclass(frozen=True)
class BayInput:
    """One bay as the caller knows it: whether its sensor can be trusted, and its current stay."""

    bay_id: str
    sensor_ok: bool
    occupancy: Interval | None


@dataclass(frozen=True)
class BayStatus:
    """One bay's status at the instant asked, with the session that explains it, if any."""

    bay_id: str
    status: Status
    since: datetime | None
    session_id: int | None = None
    plate: str | None = None
    matched: Matched | None = None


@dataclass(frozen=True)
class ZoneStatus:
    """Every bay's status, how many cars are unpaid at least, and the sessions not placed on a bay.

    `unassigned_sessions` holds the ids of the zone-level sessions considered for matching
    (covering now, or expired) that no bay took, oldest first.
    """

    bays: dict[str, BayStatus]
    unpaid_count: int
    unassigned_sessions: list[int]


@dataclass(frozen=True)
class _Unpaid:
    """An occupied bay without a session covering its car (yet)."""

    bay_id: str
    arrived_at: datetime
    payable_from: datetime
    paid_until: datetime | None  # when a bay-level session the driver stopped ended


def zone_status(
    now: datetime,
    rules: ZoneRules,
    bays: Iterable[BayInput],
    sessions: Iterable[Session],
) -> ZoneStatus:
    """Each bay's status at `now` in one zone; see the module docstring for the rules.

    `sessions` are the zone's sessions relevant around `now` (active or recently expired);
    sessions naming a bay not in `bays` are ignored.
    """
    bay_inputs = list(bays)
    bay_ids = [bay.bay_id for bay in bay_inputs]
    if len(set(bay_ids)) != len(bay_ids):
        raise ValueError("bay ids must be unique within a zone")
    session_list = list(sessions)
    zone_sessions = sorted(
        (
            session
            for session in session_list
            if session.bay_id is None
            and session.started_at <= now
            and (session.covers(now) or session.expired_by(now))
        ),
        key=lambda session: (session.started_at, session.id),
    )

    statuses: dict[str, BayStatus] = {}
    if not rules.is_regulated(now):
        for bay in bay_inputs:
            status = Status.UNKNOWN if not bay.sensor_ok else Status.UNREGULATED
            statuses[bay.bay_id] = BayStatus(bay.bay_id, status, since=None)
        return ZoneStatus(statuses, 0, [session.id for session in zone_sessions])

    by_bay: dict[str, list[Session]] = defaultdict(list)
    for session in session_list:
        if session.bay_id is not None:
            by_bay[session.bay_id].append(session)

    waiting: list[_Unpaid] = []
    for bay in bay_inputs:
        if not bay.sensor_ok:
            statuses[bay.bay_id] = BayStatus(bay.bay_id, Status.UNKNOWN, since=None)
        elif bay.occupancy is None or not bay.occupancy.covers(now):
            statuses[bay.bay_id] = BayStatus(bay.bay_id, Status.FREE, since=None)
        else:
            outcome = _bay_level(now, rules, bay.bay_id, bay.occupancy, by_bay[bay.bay_id])
            if isinstance(outcome, BayStatus):
                statuses[bay.bay_id] = outcome
            else:
                waiting.append(outcome)

    taken = _match_zone_sessions(waiting, zone_sessions)
    by_id = {session.id: session for session in zone_sessions}
    for session_id, car in taken.items():
        statuses[car.bay_id] = _session_status(
            now, rules, car.bay_id, car.arrived_at, by_id[session_id], matched="zone"
        )

    unassigned = [session for session in zone_sessions if session.id not in taken]
    remaining_sessions = sum(1 for session in unassigned if session.covers(now))
    taken_bays = {car.bay_id for car in taken.values()}
    past_grace: list[tuple[_Unpaid, datetime]] = []
    for car in waiting:
        if car.bay_id in taken_bays:
            continue
        if rules.regulated_seconds(car.arrived_at, now) < rules.grace_minutes * 60:
            statuses[car.bay_id] = BayStatus(car.bay_id, Status.GRACE, since=car.arrived_at)
            continue
        due_since = rules.add_regulated(car.arrived_at, rules.grace_minutes * 60)
        if car.paid_until is not None:
            due_since = max(due_since, car.paid_until)
        past_grace.append((car, due_since))

    status = Status.UNVERIFIED if remaining_sessions else Status.UNPAID
    for car, due_since in past_grace:
        statuses[car.bay_id] = BayStatus(car.bay_id, status, since=due_since)
    unpaid_count = max(0, len(past_grace) - remaining_sessions)
    return ZoneStatus(
        bays={bay_id: statuses[bay_id] for bay_id in bay_ids},
        unpaid_count=unpaid_count,
        unassigned_sessions=[session.id for session in unassigned],
    )


def _bay_level(
    now: datetime,
    rules: ZoneRules,
    bay_id: str,
    stay: Interval,
    bay_sessions: Sequence[Session],
) -> BayStatus | _Unpaid:
    """The status a bay's own sessions give its car, or the car still waiting for a session."""
    arrived_at = stay.arrived_at
    overlapping = [
        session
        for session in bay_sessions
        if session.started_at <= now and (session.ended_at is None or session.ended_at > arrived_at)
    ]
    covering = [session for session in overlapping if session.covers(now)]
    newest_first = sorted(
        covering or overlapping, key=lambda session: (session.started_at, session.id), reverse=True
    )
    if newest_first and (covering or newest_first[0].expired_by(now)):
        return _session_status(now, rules, bay_id, arrived_at, newest_first[0], matched="bay")
    return _Unpaid(
        bay_id=bay_id,
        arrived_at=arrived_at,
        payable_from=rules.add_regulated(arrived_at, 0),
        paid_until=newest_first[0].ended_at if newest_first else None,
    )


def _session_status(
    now: datetime,
    rules: ZoneRules,
    bay_id: str,
    arrived_at: datetime,
    session: Session,
    matched: Matched,
) -> BayStatus:
    """`paid` or `overstay` for a car whose session covers now or has expired."""
    limit_reached_at = _max_duration_reached_at(now, rules, arrived_at)
    if session.covers(now):
        if limit_reached_at is None:
            status, since = Status.PAID, max(session.started_at, arrived_at)
        else:
            status, since = Status.OVERSTAY, limit_reached_at
    else:
        if session.ends_at is None:
            raise ValueError(f"session {session.id} neither covers {now} nor has expired")
        status, since = Status.OVERSTAY, session.ends_at
        if limit_reached_at is not None:
            since = min(since, limit_reached_at)
    return BayStatus(bay_id, status, since, session.id, session.plate, matched)


def _max_duration_reached_at(
    now: datetime, rules: ZoneRules, arrived_at: datetime
) -> datetime | None:
    """When the car's regulated time reached the zone's maximum stay, if it exceeds it by now."""
    if rules.max_duration_minutes is None:
        return None
    limit = rules.max_duration_minutes * 60
    if rules.regulated_seconds(arrived_at, now) <= limit:
        return None
    return rules.add_regulated(arrived_at, limit)


def _match_zone_sessions(
    bays: Sequence[_Unpaid], sessions: Sequence[Session]
) -> dict[int, _Unpaid]:
    """Zone-level session id -> the bay it pays for; greedy by session start, never guessing.

    Bays are kept sorted by the time they became payable, so each session's candidates
    and the ambiguity check are found by bisection (a zone of hundreds of bays and
    sessions is matched in a few milliseconds)."""
    available = sorted(bays, key=lambda bay: (bay.payable_from, bay.bay_id))
    times = [bay.payable_from for bay in available]
    taken: dict[int, _Unpaid] = {}
    for session in sessions:
        chosen = _closest_arrival(session, available, times)
        if chosen is None:
            continue
        near = bisect_right(times, chosen.payable_from + AMBIGUITY_WINDOW) - bisect_left(
            times, chosen.payable_from - AMBIGUITY_WINDOW
        )
        if near == 1:  # no other car became payable within the window: not ambiguous
            taken[session.id] = chosen
            index = available.index(chosen)
            del available[index], times[index]
    return taken


def _closest_arrival(
    session: Session, available: Sequence[_Unpaid], times: Sequence[datetime]
) -> _Unpaid | None:
    """The car `session` most likely pays for, by time alone: the latest one payable up to
    the session's start (plus latency), else the earliest one payable soon after."""

    def possible(bay: _Unpaid) -> bool:
        return session.ended_at is None or session.ended_at > bay.arrived_at

    started_at = session.started_at
    low = bisect_left(times, started_at - PAYMENT_DELAY_LIMIT)
    middle = bisect_right(times, started_at + LATENCY_TOLERANCE)
    high = bisect_right(times, started_at + EARLY_PAYMENT_LIMIT)
    before = (bay for bay in reversed(available[low:middle]) if possible(bay))
    after = (bay for bay in available[middle:high] if possible(bay))
    return next(before, None) or next(after, None)


CLOCK_STEP = timedelta(milliseconds=1)
"""How long after a rule's instant its status is surely different: some rules flip at the
instant (grace ends), others just after it (the maximum stay is exceeded)."""


def clock_instants(
    now: datetime,
    rules: ZoneRules,
    bays: Iterable[BayInput],
    sessions: Iterable[Session],
    result: ZoneStatus,
) -> list[datetime]:
    """The instants at which `zone_status` may answer differently than at `now` with the same
    inputs: the clock alone moves a bay out of grace, a paid car past the zone's maximum stay,
    a session in or out of covering, a stay to its start or end. Past ones may be included.

    `result` is `zone_status(now, rules, bays, sessions)`. The start and end of regulated
    hours are left to the caller (`core.hours.next_change` knows them); outside them only
    the sessions' instants matter (the unassigned sessions are still counted).
    """
    instants: list[datetime] = []
    for session in sessions:
        instants += [at for at in (session.started_at, session.ends_at, session.stopped_at) if at]
    if not rules.is_regulated(now):
        return instants
    for bay in bays:
        stay = bay.occupancy
        if stay is None:
            continue
        instants += [at for at in (stay.arrived_at, stay.left_at) if at]
        state = result.bays[bay.bay_id].status
        if state == Status.GRACE:
            limit_s: float = rules.grace_minutes * 60
        elif state == Status.PAID and rules.max_duration_minutes is not None:
            limit_s = rules.max_duration_minutes * 60
        else:
            continue
        with contextlib.suppress(ValueError):  # no regulated time left within a year
            instants.append(rules.add_regulated(stay.arrived_at, limit_s))
    return instants


def first_after(now: datetime, instants: Iterable[datetime | None]) -> datetime | None:
    """The earliest of `instants` still to come, given `CLOCK_STEP` late so that a status
    recomputed then has flipped whichever side of the instant its rule falls on; None if
    none is to come."""
    later = [at + CLOCK_STEP for at in instants if at is not None and at + CLOCK_STEP > now]
    return min(later, default=None)
