"""Service-level clocks of incidents: classes, priorities, GTI and GTR delays and deadlines.

An incident has two clocks, both started when it is opened: the GTI (garantie de temps
d'intervention), reached when someone acknowledges the incident or starts working on it, and
the GTR (garantie de temps de rétablissement), reached when it is resolved. A tenant's
`SlaPolicy` gives each priority its two delays and says which time counts:

- `business` (the default): only business hours count, Monday to Friday 08:00-18:00
  Europe/Paris without French public holidays (a `core.hours.RegulatedHours` schedule), the
  way French public contracts count delays "en heures ouvrées" and "en jours ouvrés".
  A delay in hours is that many counted hours: a 4 h GTI opened on Friday at 17:00 ends on
  Monday at 11:00, and P2's 24 h GTI is 24 counted hours (two business days and four hours),
  not one business day. A delay in business days is that many days of the schedule's length:
  with 10-hour days P2's 5-day GTR is 50 counted hours, which lands at the same time of day
  on the fifth following business day (a P2 opened on Friday at 17:30 is due the next Friday
  at 17:30). Business days need every business day of the schedule to last as long.
- `24/7`: every second counts; hours are plain hours and a business day lasts 24 hours.

A delay is a strict bound ("P0 < 1 h"): the deadline is the first instant at which the
counted elapsed time reaches the delay, the clock is breached from that instant on (also over
the following night or weekend, when no time counts), and a milestone reached at the deadline
misses it.

Pauses: the clock stands still while the incident waits on the requester or a third party
(and while it sits resolved before a reopening). Each pause pushes the deadline later by its
counted length. While a pause is open the elapsed and remaining times are frozen and the
deadline is unknown (None: it depends on when the pause ends), unless it had already passed
when the pause began: a breach is final. A reached clock stops for good; pauses after
its milestone do not count.

Warnings: each running clock warns once before its deadline, when the counted elapsed time
reaches the delay minus the policy's lead (a fraction of the delay, a quarter by default, or a
counted duration), and once at the deadline. Instants are timezone-aware (naive datetimes are
refused) and come back in the schedule's timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.hours import WEEKDAYS, RegulatedHours, TimeRange, add_regulated, regulated_seconds

__all__ = [
    "DEFAULT_DELAYS",
    "DEFAULT_PRIORITY",
    "AlertKind",
    "CalendarMode",
    "ClockState",
    "Delay",
    "DurationLead",
    "FractionLead",
    "IncidentClass",
    "Milestone",
    "Pause",
    "Priority",
    "PriorityDelays",
    "SlaAlert",
    "SlaClock",
    "SlaPolicy",
    "as_utc",
]


class IncidentClass(StrEnum):
    """How badly an incident hurts the service, as French public contracts classify it."""

    BLOQUANT = "bloquant"
    MAJEUR = "majeur"
    MINEUR = "mineur"


class Priority(StrEnum):
    """How fast an incident must be handled; P0 is the most urgent."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"


#: The priority an incident gets from its class when its rule does not say otherwise.
DEFAULT_PRIORITY: dict[IncidentClass, Priority] = {
    IncidentClass.BLOQUANT: Priority.P0,
    IncidentClass.MAJEUR: Priority.P1,
    IncidentClass.MINEUR: Priority.P2,
}


class Milestone(StrEnum):
    """The two service-level guarantees: intervention (GTI) and restoration (GTR)."""

    GTI = "gti"
    GTR = "gtr"


class CalendarMode(StrEnum):
    """Which time a clock counts: business hours only, or every second."""

    BUSINESS = "business"
    ALWAYS = "24/7"


class ClockState(StrEnum):
    """A clock at an instant; `met` and `missed` once its milestone is reached."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    PAUSED = "paused"
    MET = "met"
    MISSED = "missed"


class AlertKind(StrEnum):
    """The two notifications of a clock: before its deadline and at it."""

    WARNING = "warning"
    BREACH = "breach"


class Delay(BaseModel):
    """A service-level delay: counted hours or business days ("heures/jours ouvrés")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: float = Field(gt=0, le=1000, allow_inf_nan=False)
    unit: Literal["hours", "business_days"] = "hours"

    def __str__(self) -> str:
        return f"{self.amount:g} {'h' if self.unit == 'hours' else 'business days'}"


class PriorityDelays(BaseModel):
    """The GTI and GTR delays of one priority."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gti: Delay
    gtr: Delay


DEFAULT_DELAYS: dict[Priority, PriorityDelays] = {
    Priority.P0: PriorityDelays(gti=Delay(amount=1), gtr=Delay(amount=4)),
    Priority.P1: PriorityDelays(gti=Delay(amount=4), gtr=Delay(amount=12)),
    Priority.P2: PriorityDelays(gti=Delay(amount=24), gtr=Delay(amount=5, unit="business_days")),
}


class FractionLead(BaseModel):
    """Warn when this fraction of the delay remains (0.25: at three quarters of it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["fraction"] = "fraction"
    fraction: float = Field(gt=0, lt=1)


class DurationLead(BaseModel):
    """Warn when this much counted time remains before the deadline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["duration"] = "duration"
    duration: timedelta = Field(gt=timedelta(0))


class SlaPolicy(BaseModel):
    """A tenant's service levels: counted time, delays per priority, warning lead."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calendar: CalendarMode = CalendarMode.BUSINESS
    business_hours: RegulatedHours = Field(
        default_factory=RegulatedHours.business,
        description="The hours that count in business mode; its timezone is the tenant's.",
    )
    delays: dict[Priority, PriorityDelays] = Field(
        default_factory=lambda: dict(DEFAULT_DELAYS),
        description="Delays per priority; a priority left out keeps the default delays.",
    )
    warning_lead: Annotated[FractionLead | DurationLead, Field(discriminator="kind")] = (
        FractionLead(fraction=0.25)
    )

    @field_validator("delays", mode="before")
    @classmethod
    def _defaults_for_missing_priorities(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**DEFAULT_DELAYS, **value}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.calendar is CalendarMode.BUSINESS and not any(self.business_hours.weekly.values()):
            raise ValueError("business hours must have at least one range")
        for priority in Priority:
            gti = self.delay(priority, Milestone.GTI)
            gtr = self.delay(priority, Milestone.GTR)
            if gti > gtr:
                raise ValueError(
                    f"{priority} GTI ({self.delays[priority].gti}) is longer than its GTR "
                    f"({self.delays[priority].gtr})"
                )
            lead = self.warning_lead
            if isinstance(lead, DurationLead) and lead.duration >= gti:
                raise ValueError(
                    f"warning lead {lead.duration} must be shorter than {priority} GTI "
                    f"({self.delays[priority].gti})"
                )
        return self

    def business_day(self) -> timedelta:
        """The counted length of a business day: 24 h in 24/7 mode, else the schedule's day."""
        if self.calendar is CalendarMode.ALWAYS:
            return timedelta(days=1)
        lengths = {
            day: sum((_span_length(span) for span in spans), timedelta(0))
            for day in WEEKDAYS
            if (spans := self.business_hours.weekly.get(day))
        }
        if len(set(lengths.values())) != 1:
            days = ", ".join(f"{day} {length}" for day, length in lengths.items())
            raise ValueError(
                f"delays in business days need business days of equal length ({days}); "
                "give the delays in hours"
            )
        return next(iter(lengths.values()))

    def delay(self, priority: Priority, milestone: Milestone) -> timedelta:
        """The counted time `milestone` of a `priority` incident is allowed."""
        delays = self.delays[priority]
        delay = delays.gti if milestone is Milestone.GTI else delays.gtr
        unit = timedelta(hours=1) if delay.unit == "hours" else self.business_day()
        return unit * delay.amount

    def warning_threshold(self, delay: timedelta) -> timedelta:
        """The counted elapsed time from which a clock with `delay` is in warning."""
        lead = self.warning_lead
        if isinstance(lead, FractionLead):
            return delay * (1 - lead.fraction)
        return delay - lead.duration


def _span_length(span: TimeRange) -> timedelta:
    """The nominal length of a day's range (as the wall clock reads it)."""
    start = span.start
    return span.end_offset() - timedelta(
        hours=start.hour, minutes=start.minute, seconds=start.second, microseconds=start.microsecond
    )


@dataclass(frozen=True)
class Pause:
    """A span during which an incident's clocks stand still; `end` is None while it lasts."""

    start: datetime
    end: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start, "pause start"))
        if self.end is not None:
            object.__setattr__(self, "end", as_utc(self.end, "pause end"))
            if self.end < self.start:
                raise ValueError(
                    f"pause end {self.end.isoformat()} is before its start {self.start.isoformat()}"
                )


@dataclass(frozen=True)
class SlaAlert:
    """A notification a scheduler must send at `at`."""

    milestone: Milestone
    kind: AlertKind
    at: datetime


@dataclass(frozen=True)
class SlaClock:
    """One milestone's clock of one incident (instants are stored in UTC).

    `pauses` are in order and do not overlap; only the last may be open. `reached_at` is when
    the milestone was reached (acknowledgement or first intervention for the GTI, resolution
    for the GTR), None while it is not.
    """

    policy: SlaPolicy
    priority: Priority
    milestone: Milestone
    opened_at: datetime
    pauses: tuple[Pause, ...] = ()
    reached_at: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "opened_at", as_utc(self.opened_at, "opened_at"))
        if self.reached_at is not None:
            object.__setattr__(self, "reached_at", as_utc(self.reached_at, "reached_at"))
            if self.reached_at < self.opened_at:
                raise ValueError(
                    f"reached_at {self.reached_at.isoformat()} is before the opening "
                    f"{self.opened_at.isoformat()}"
                )
        previous_end = self.opened_at
        for index, pause in enumerate(self.pauses):
            if pause.start < previous_end:
                raise ValueError(
                    f"pause starting {pause.start.isoformat()} starts before the opening or "
                    "overlaps the previous pause"
                )
            if pause.end is None:
                if index != len(self.pauses) - 1:
                    raise ValueError("only the last pause may still be open")
            else:
                previous_end = pause.end

    @property
    def delay(self) -> timedelta:
        """The counted time allowed."""
        return self.policy.delay(self.priority, self.milestone)

    def elapsed(self, at: datetime) -> timedelta:
        """The counted time since the opening at `at`, without pauses, frozen once reached."""
        moment = self._instant(at)
        if self.reached_at is not None:
            moment = min(moment, self.reached_at)
        total = self._counted(self.opened_at, moment)
        for start, end in self._stops():
            if start >= moment:
                break
            total -= self._counted(start, moment if end is None else min(end, moment))
        return total

    def remaining(self, at: datetime) -> timedelta:
        """The counted time left at `at`; negative once the deadline has passed."""
        return self.delay - self.elapsed(at)

    def deadline(self) -> datetime | None:
        """When the delay runs out; None while an open pause holds the clock before it."""
        return self._instant_reaching(self.delay)

    def warning_at(self) -> datetime | None:
        """When the clock enters its warning window; None if an open pause comes first."""
        return self._instant_reaching(self.policy.warning_threshold(self.delay))

    def reached_in_time(self) -> bool | None:
        """Whether the milestone was reached before its deadline; None if not reached yet."""
        if self.reached_at is None:
            return None
        return self.elapsed(self.reached_at) < self.delay

    def state(self, at: datetime) -> ClockState:
        """The clock's state at `at`."""
        moment = self._instant(at)
        if self.reached_at is not None and moment >= self.reached_at:
            return ClockState.MET if self.reached_in_time() else ClockState.MISSED
        elapsed = self.elapsed(moment)
        if elapsed >= self.delay:
            return ClockState.BREACHED
        if any(start <= moment and (end is None or moment < end) for start, end in self._stops()):
            return ClockState.PAUSED
        if elapsed >= self.policy.warning_threshold(self.delay):
            return ClockState.WARNING
        return ClockState.OK

    def alerts(self) -> list[SlaAlert]:
        """The warning and breach notifications still due, with their known instants."""
        if self.reached_at is not None:
            return []
        planned = [(AlertKind.WARNING, self.warning_at()), (AlertKind.BREACH, self.deadline())]
        return [SlaAlert(self.milestone, kind, at) for kind, at in planned if at is not None]

    def _instant(self, at: datetime) -> datetime:
        moment = as_utc(at, "at")
        if moment < self.opened_at:
            raise ValueError(f"{at.isoformat()} is before the opening {self.opened_at.isoformat()}")
        return moment

    def _stops(self) -> list[tuple[datetime, datetime | None]]:
        """The pauses that count: those before the milestone, cut where it was reached."""
        reached = self.reached_at
        if reached is None:
            return [(pause.start, pause.end) for pause in self.pauses]
        return [
            (pause.start, reached if pause.end is None else min(pause.end, reached))
            for pause in self.pauses
            if pause.start < reached
        ]

    def _instant_reaching(self, amount: timedelta) -> datetime | None:
        """The first instant at which the counted elapsed time reaches `amount` (> 0)."""
        cursor = self.opened_at
        remaining = amount
        for start, end in self._stops():
            candidate = self._add_counted(cursor, remaining)
            if candidate <= start:
                return candidate.astimezone(self.policy.business_hours.zone)
            remaining -= self._counted(cursor, start)
            if end is None:
                return None
            cursor = end
        return self._add_counted(cursor, remaining).astimezone(self.policy.business_hours.zone)

    def _counted(self, start: datetime, end: datetime) -> timedelta:
        if self.policy.calendar is CalendarMode.ALWAYS:
            return end - start
        return timedelta(seconds=regulated_seconds(self.policy.business_hours, start, end))

    def _add_counted(self, start: datetime, amount: timedelta) -> datetime:
        if self.policy.calendar is CalendarMode.ALWAYS:
            return start + amount
        return add_regulated(self.policy.business_hours, start, amount.total_seconds())


def as_utc(value: datetime, name: str) -> datetime:
    """`value` in UTC, refusing naive datetimes (their timezone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)
