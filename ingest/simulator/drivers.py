"""The simulated drivers: who pays for a stay, by bay or by zone, how late, for how long,
and who stays beyond what they paid.

One model for every simulation: `civicsense simulate` sends what the drivers do to the
platform as a payment operator's webhooks (`payments.py`), the parking demo applies it
straight to its database. Every choice is drawn from a hash of (seed, bay, arrival), so a
stay always gets the same driver, however often and in whatever order it is looked at.

A driver who pays starts a session `delay` after arriving (within the zone's grace minutes,
or after it for the late ones) and buys some quarter hours. A compliant driver extends the
session shortly before each paid end while still parked, up to the zone's longest stay; an
overstaying one never extends. A session is stopped when the car leaves: the stop carries
the fee for the time paid and used, when the caller knows the zone's tariff.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

__all__ = [
    "DEFAULT_GRACE_MINUTES",
    "DEFAULT_MAX_MINUTES",
    "DEFAULT_SHARES",
    "EXTEND_LEAD",
    "Driver",
    "DriverShares",
    "PaidSession",
    "PaymentEvent",
    "Stay",
    "ZoneFacts",
    "driver_for",
    "payment_events",
]

# The zone `civicsense seed demo` creates (parking's defaults: 10 grace minutes, 3 hours at most).
DEFAULT_GRACE_MINUTES = 10
DEFAULT_MAX_MINUTES = 180
EXTEND_LEAD = timedelta(minutes=5)  # a compliant driver extends this long before the paid end
_QUARTER_HOURS = 4  # a purchase (first or extension) is 1 to 4 quarter hours
_LATE_SPAN_MINUTES = 15  # late drivers start up to this long after the grace minutes
_PLATE_LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"

EventKind = Literal["session.started", "session.extended", "session.stopped"]


@dataclass(frozen=True)
class DriverShares:
    """Shares of drivers: who pay at all; of those, who name their bay (the others pay for
    the zone), who start after the grace minutes, who never extend and so overstay."""

    paying: float = 0.7
    by_bay: float = 0.6
    late: float = 0.4
    overstay: float = 0.2

    def __post_init__(self) -> None:
        for name, share in vars(self).items():
            if not 0 <= share <= 1:
                raise ValueError(f"the {name} share must be between 0 and 1, not {share}")


DEFAULT_SHARES = DriverShares()


def _minutes_later(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


@dataclass(frozen=True)
class ZoneFacts:
    """What a driver reads on the zone's signs.

    `paid_end(start, minutes)` is when `minutes` bought at `start` run out (the parking
    demo counts regulated time; by default wall-clock time); `fee(start, end)` what parking
    from `start` to `end` costs (None: the caller does not know the tariff, no amounts).
    """

    grace_minutes: int = DEFAULT_GRACE_MINUTES
    max_minutes: int = DEFAULT_MAX_MINUTES
    paid_end: Callable[[datetime, int], datetime] = _minutes_later
    fee: Callable[[datetime, datetime], Decimal] | None = None


@dataclass(frozen=True)
class Stay:
    """A car in a bay: from its arrival until it left (None: still there)."""

    bay: str
    zone: str
    arrived_at: datetime
    left_at: datetime | None = None


@dataclass(frozen=True)
class PaidSession:
    """A payment session as the operator knows it (the fields of parking's SessionFacts)."""

    id: str
    plate: str
    zone: str
    bay: str | None
    started_at: datetime
    ends_at: datetime
    stopped_at: datetime | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class PaymentEvent:
    """Something a driver does (`at`), with the whole session as it then stands."""

    event_id: str
    kind: EventKind
    at: datetime
    session: PaidSession


class _Draws:
    """Stable pseudo-random numbers in [0, 1) for one stay."""

    def __init__(self, seed: int, bay: str, arrived_at: datetime) -> None:
        self._key = (seed, bay, arrived_at.timestamp())

    def __call__(self, *label: object) -> float:
        digest = hashlib.blake2b(repr((*self._key, *label)).encode(), digest_size=8).digest()
        return int.from_bytes(digest) / 2**64

    def quarter_hours(self, *label: object) -> int:
        """1 to 4 quarter hours, in minutes."""
        return 15 * (1 + int(self(*label) * _QUARTER_HOURS))


@dataclass(frozen=True)
class Driver:
    """The driver of one stay and what they chose (see the module docstring)."""

    pays: bool
    by_bay: bool
    late: bool
    overstays: bool
    delay: timedelta
    plate: str
    draws: _Draws = field(repr=False, compare=False)

    def timeline(self, stay: Stay, zone: ZoneFacts) -> list[PaymentEvent]:
        """Everything this driver does about `stay`, in order; for a car still there, what
        they will do if it stays on (up to the zone's longest stay)."""
        started_at = stay.arrived_at + self.delay
        if not self.pays or (stay.left_at is not None and started_at >= stay.left_at):
            return []
        bought = min(self.draws.quarter_hours("bought", 0), zone.max_minutes)
        session = PaidSession(
            id=f"{stay.bay}-{int(stay.arrived_at.timestamp())}", plate=self.plate,
            zone=stay.zone, bay=stay.bay if self.by_bay else None, started_at=started_at,
            ends_at=zone.paid_end(started_at, bought),
        )  # fmt: skip
        events: list[PaymentEvent] = []

        def add(kind: EventKind, at: datetime, session: PaidSession) -> None:
            events.append(PaymentEvent(f"{session.id}.{len(events)}", kind, at, session))

        add("session.started", started_at, session)
        while not self.overstays and bought < zone.max_minutes:
            at = session.ends_at - EXTEND_LEAD
            if stay.left_at is not None and at >= stay.left_at:
                break
            bought = min(bought + self.draws.quarter_hours("bought", len(events)), zone.max_minutes)
            session = replace(session, ends_at=zone.paid_end(started_at, bought))
            add("session.extended", at, session)
        if stay.left_at is not None:
            used_until = min(stay.left_at, session.ends_at)
            amount = zone.fee(started_at, used_until) if zone.fee is not None else None
            add("session.stopped", stay.left_at,
                replace(session, stopped_at=stay.left_at, amount=amount))  # fmt: skip
        return events


def driver_for(
    stay: Stay, zone: ZoneFacts, *, shares: DriverShares = DEFAULT_SHARES, seed: int = 0
) -> Driver:
    """The driver of `stay`: the same for the same seed, bay and arrival."""
    draw = _Draws(seed, stay.bay, stay.arrived_at)
    late = draw("late") < shares.late
    if late:  # (grace, grace + 15] minutes after arriving
        minutes = zone.grace_minutes + (1 - draw("delay")) * _LATE_SPAN_MINUTES
    else:  # [0, grace)
        minutes = draw("delay") * zone.grace_minutes
    letters = [_PLATE_LETTERS[int(draw("plate", i) * len(_PLATE_LETTERS))] for i in range(4)]
    number = 100 + int(draw("plate", "number") * 900)
    return Driver(
        pays=draw("pays") < shares.paying,
        by_bay=draw("bay") < shares.by_bay,
        late=late,
        overstays=draw("overstay") < shares.overstay,
        delay=timedelta(minutes=minutes),
        plate=f"{letters[0]}{letters[1]}-{number}-{letters[2]}{letters[3]}",
        draws=draw,
    )


def payment_events(
    stay: Stay,
    zone: ZoneFacts,
    *,
    now: datetime,
    shares: DriverShares = DEFAULT_SHARES,
    seed: int = 0,
) -> list[PaymentEvent]:
    """What the driver of `stay` has done by `now`, in order (see `Driver.timeline`)."""
    driver = driver_for(stay, zone, shares=shares, seed=seed)
    return [event for event in driver.timeline(stay, zone) if event.at <= now]
