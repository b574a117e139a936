"""Counted hours: a weekly wall-clock schedule with public holidays off, and the clock that
runs only inside it.

Parking zones use it for regulated hours: French towns charge for on-street parking on some
hours of some days (typically Monday to Saturday, 09:00-12:00 and 14:00-19:00), not on public
holidays, and the paid clock stops outside those hours: one hour bought at 11:30 runs until
14:30. Service levels use it for business hours (Monday to Friday, 08:00-18:00): a four-hour
restoration delay opened on Friday at 17:00 ends on Monday at 11:00. Everything here is
computed from the local wall-clock schedule turned into exact instants day by day, so
durations stay right across midnight and daylight-saving changes (a 01:00-04:00 range lasts
two hours on the last Sunday of March and four on the last Sunday of October in Europe/Paris).

Conventions: functions take and return timezone-aware datetimes (naive ones are refused) and
return instants in the zone's timezone. Wall-clock times follow Python's (PEP 495) reading: a
time skipped by a spring-forward change is read with the offset in force before the change
(02:30 becomes 03:30 summer time), a time repeated in autumn is its first occurrence.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from typing import Any, Literal, Self, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "HOLIDAY_SUBDIVISIONS",
    "WEEKDAYS",
    "RegulatedHours",
    "TimeRange",
    "Weekday",
    "add_regulated",
    "is_regulated",
    "next_change",
    "regulated_seconds",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = get_args(Weekday)

#: Départements with public holidays of their own, as accepted by `holiday_subdivision`,
#: mapped to the `holidays` library's subdivision code. Alsace-Moselle (57, 67, 68) adds
#: Good Friday and 26 December; the overseas départements add their own days.
HOLIDAY_SUBDIVISIONS: dict[str, str] = {
    "57": "57",
    "67": "6AE",
    "68": "6AE",
    "971": "971",
    "972": "972",
    "973": "973",
    "974": "974",
    "976": "976",
}

#: How far `next_change` looks ahead.
NEXT_CHANGE_HORIZON = timedelta(days=14)
#: How many consecutive days without regulated time `add_regulated` tolerates before giving up.
_MAX_FREE_RUN_DAYS = 400

_MIDNIGHT = time(0, 0)
_Interval = tuple[datetime, datetime]  # [start, end) in UTC


class TimeRange(BaseModel):
    """A regulated range of one day, local wall-clock time; `end` 00:00 means midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time
    end: time

    @field_validator("start", "end")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("times are local to the zone's timezone; give them without offset")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end != _MIDNIGHT and self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} must be after start {self.start.isoformat()} "
                "(use 00:00 for midnight)"
            )
        return self

    def end_offset(self) -> timedelta:
        """The end as a duration since the day's 00:00 (24 h for midnight)."""
        if self.end == _MIDNIGHT:
            return timedelta(days=1)
        return _since_midnight(self.end)

    def __str__(self) -> str:
        end = "24:00" if self.end == _MIDNIGHT else self.end.isoformat("minutes")
        return f"{self.start.isoformat('minutes')}-{end}"


class RegulatedHours(BaseModel):
    """When a zone's parking is paid: a weekly schedule, minus public holidays and free days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Europe/Paris"
    weekly: dict[Weekday, list[TimeRange]] = Field(
        description="Regulated ranges per weekday; a day absent (or with no range) is free."
    )
    holidays_regulated: bool = Field(
        default=False,
        strict=True,
        description="Whether French public holidays follow the weekly schedule (else free).",
    )
    holiday_subdivision: str | None = Field(
        default=None,
        description="Département with extra public holidays: 57, 67 or 68 (Alsace-Moselle), "
        "971, 972, 973, 974 or 976 (overseas).",
    )
    extra_free_days: list[date] = Field(
        default_factory=list, description="The town's own free days (e.g. sales days)."
    )

    _days: dict[date, list[_Interval]] = PrivateAttr(default_factory=dict)  # _day_intervals

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with its own day cache (a changed schedule must not reuse this one's)."""
        copied = super().model_copy(update=update, deep=deep)
        copied._days = {}
        return copied

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as 'Europe/Paris'"
            ) from None
        return value

    @field_validator("weekly")
    @classmethod
    def _sorted_without_overlap(
        cls, value: dict[Weekday, list[TimeRange]]
    ) -> dict[Weekday, list[TimeRange]]:
        tidy: dict[Weekday, list[TimeRange]] = {}
        for day in WEEKDAYS:
            if day not in value:
                continue
            ranges = sorted(value[day], key=lambda item: item.start)
            for before, after in pairwise(ranges):
                if before.end_offset() > _since_midnight(after.start):
                    raise ValueError(f"ranges {before} and {after} on {day} overlap")
            tidy[day] = ranges
        return tidy

    @field_validator("holiday_subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None) -> str | None:
        if value is not None and value not in HOLIDAY_SUBDIVISIONS:
            known = ", ".join(HOLIDAY_SUBDIVISIONS)
            raise ValueError(
                f"unknown holiday subdivision {value!r}; use a département with its own "
                f"public holidays ({known}) or leave it empty"
            )
        return value

    @field_validator("extra_free_days")
    @classmethod
    def _sorted_days(cls, value: list[date]) -> list[date]:
        return sorted(set(value))

    @classmethod
    def typical(cls) -> RegulatedHours:
        """Monday to Saturday, 09:00-12:00 and 14:00-19:00, holidays free: a common pattern."""
        day = [TimeRange(start=time(9), end=time(12)), TimeRange(start=time(14), end=time(19))]
        return cls(weekly={name: list(day) for name in WEEKDAYS[:6]})

    @classmethod
    def business(cls) -> RegulatedHours:
        """Monday to Friday, 08:00-18:00, holidays off: the business hours of service levels."""
        return cls(weekly={name: [TimeRange(start=time(8), end=time(18))] for name in WEEKDAYS[:5]})

    @property
    def zone(self) -> ZoneInfo:
        """The zone's timezone."""
        return ZoneInfo(self.timezone)

    def is_free_day(self, day: date) -> bool:
        """Whether the whole local `day` is free (no schedule, a free day or a holiday)."""
        if not self.weekly.get(WEEKDAYS[day.weekday()]):
            return True
        if day in self.extra_free_days:
            return True
        return not self.holidays_regulated and day in _public_holidays(
            day.year, self.holiday_subdivision
        )


@lru_cache(maxsize=64)
def _public_holidays(year: int, subdivision: str | None) -> frozenset[date]:
    """French public holidays of `year`, with the département's own days if it has any."""
    subdiv = HOLIDAY_SUBDIVISIONS[subdivision] if subdivision is not None else None
    return frozenset(holidays.France(years=year, subdiv=subdiv))


def is_regulated(hours: RegulatedHours, instant: datetime) -> bool:
    """Whether parking must be paid at `instant`."""
    moment = _to_utc(instant, "instant")
    return any(start <= moment < end for start, end in _intervals_around(hours, moment))


def regulated_seconds(hours: RegulatedHours, start: datetime, end: datetime) -> float:
    """The number of regulated seconds within [start, end)."""
    since = _to_utc(start, "start")
    until = _to_utc(end, "end")
    if until < since:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    zone = hours.zone
    total = timedelta(0)
    day = _local_day(since, zone) - timedelta(days=1)
    last_day = _local_day(until, zone)
    while day <= last_day:
        for interval_start, interval_end in _day_intervals(hours, day):
            overlap = min(interval_end, until) - max(interval_start, since)
            if overlap > timedelta(0):
                total += overlap
        day += timedelta(days=1)
    return total.total_seconds()


def add_regulated(hours: RegulatedHours, start: datetime, seconds: float) -> datetime:
    """The instant at which `seconds` of regulated time have elapsed since `start`.

    The clock runs only during regulated hours: outside them it starts at the next regulated
    instant, and it stops over lunch breaks, nights, free days and holidays. With `seconds`
    0 the answer is therefore the first regulated instant at or after `start`.
    """
    since = _to_utc(start, "start")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
    zone = hours.zone
    remaining = timedelta(seconds=seconds)
    day = _local_day(since, zone) - timedelta(days=1)
    free_run = 0
    while True:
        intervals = _day_intervals(hours, day)
        free_run = 0 if intervals else free_run + 1
        if free_run > _MAX_FREE_RUN_DAYS:
            raise ValueError(
                f"no regulated time within {_MAX_FREE_RUN_DAYS} days after {start.isoformat()}"
            )
        for interval_start, interval_end in intervals:
            if interval_end <= since:
                continue
            clock_start = max(interval_start, since)
            available = interval_end - clock_start
            if remaining <= available:
                return (clock_start + remaining).astimezone(zone)
            remaining -= available
        day += timedelta(days=1)


def next_change(hours: RegulatedHours, instant: datetime) -> datetime | None:
    """The next instant at which the regulated status flips, or None if not within 14 days.

    Adjacent ranges (12:00-14:00 then 14:00-19:00, or 22:00-24:00 then 00:00-06:00 the next
    day) are one stretch: the status does not flip where they meet.
    """
    moment = _to_utc(instant, "instant")
    zone = hours.zone
    horizon = moment + NEXT_CHANGE_HORIZON
    first_day = _local_day(moment, zone) - timedelta(days=1)
    last_day = _local_day(horizon, zone) + timedelta(days=1)
    for stretch_start, stretch_end in _merged(_intervals_between(hours, first_day, last_day)):
        if stretch_end <= moment:
            continue
        change = stretch_end if stretch_start <= moment else stretch_start
        return change.astimezone(zone) if change <= horizon else None
    return None


def _to_utc(value: datetime, name: str) -> datetime:
    """`value` in UTC, refusing naive datetimes (their timezone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)


def _since_midnight(value: time) -> timedelta:
    return timedelta(
        hours=value.hour, minutes=value.minute, seconds=value.second, microseconds=value.microsecond
    )


def _local_day(moment: datetime, zone: tzinfo) -> date:
    return moment.astimezone(zone).date()


def _day_intervals(hours: RegulatedHours, day: date) -> list[_Interval]:
    """The regulated intervals of local `day`, as UTC instants, in order (kept by the
    schedule: a bay-status snapshot asks for the same few days thousands of times)."""
    cached = hours._days.get(day)
    if cached is None:
        cached = hours._days[day] = _compute_day_intervals(hours, day)
    return cached


def _compute_day_intervals(hours: RegulatedHours, day: date) -> list[_Interval]:
    if hours.is_free_day(day):
        return []
    zone = hours.zone
    intervals: list[_Interval] = []
    for span in hours.weekly[WEEKDAYS[day.weekday()]]:
        start = datetime.combine(day, span.start, tzinfo=zone).astimezone(UTC)
        if span.end == _MIDNIGHT:
            end_local = datetime.combine(day + timedelta(days=1), _MIDNIGHT, tzinfo=zone)
        else:
            end_local = datetime.combine(day, span.end, tzinfo=zone)
        intervals.append((start, end_local.astimezone(UTC)))
    # Ranges touching a skipped hour can come out empty or overlapping: keep their union.
    return list(_merged(sorted(span for span in intervals if span[1] > span[0])))


def _intervals_between(hours: RegulatedHours, first: date, last: date) -> Iterator[_Interval]:
    day = first
    while day <= last:
        yield from _day_intervals(hours, day)
        day += timedelta(days=1)


def _intervals_around(hours: RegulatedHours, moment: datetime) -> Iterator[_Interval]:
    """The intervals of the local days that may contain `moment`."""
    day = _local_day(moment, hours.zone)
    return _intervals_between(hours, day - timedelta(days=1), day)


def _merged(intervals: Iterable[_Interval]) -> Iterator[_Interval]:
    """Ordered intervals with touching or overlapping ones joined."""
    current: _Interval | None = None
    for start, end in intervals:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current
