"""The ICONE confinement index of a room: how stuffy its air is while occupied, on a 0-5 scale.

ICONE (indice de confinement) is the index French schools, nurseries and leisure centres
report under the regulatory indoor-air monitoring (Code de l'environnement R. 221-30 ff.). It
was devised by the CSTB in 2007 for the OQAI and is computed from continuous CO2 measurements
taken while the room is occupied:

    ICONE = (2.5 / log10 2) * log10(1 + f1 + 3 * f2)        (2.5 / log10 2 = 8.3048...)

- f1 is the share of occupied-time CO2 values between 1,000 and 1,700 ppm (1,000 < C <= 1,700),
- f2 is the share of occupied-time CO2 values above 1,700 ppm (C > 1,700),
- the values at or below 1,000 ppm make up the rest; the shares are over all occupied values.

The result is rounded to the nearest integer, which reads as a level: 0 confinement nul,
1 faible, 2 moyen, 3 élevé, 4 très élevé, 5 extrême. The scale is bounded by construction: no
exceedance gives log10(1) = 0, every value above 1,700 ppm gives (2.5 / log10 2) * log10(4)
= 5 exactly, and every value in the middle band gives 2.5 exactly (rounded half up: 3).

Sources:

- CSTB, O. Ramalho and M. J. Rueda Lopez, "Protocole de mesure en continu du dioxyde de carbone
  dans l'air (indice de confinement ICONE) dans les établissements d'enseignement, d'accueil
  de la petite enfance et d'accueil de loisirs", March 2023, ref. SC-QEI-2022-230
  (copy: https://fr.readkong.com/page/protocole-de-mesure-en-continu-du-dioxyde-de-carbone-dans-7655018;
  published on the OQAI site). It replaces the 2012 protocol by J. Ribéron et al.
- J. Ribéron, O. Ramalho et al., "Indice de confinement de l'air intérieur : des écoles aux
  logements", Pollution atmosphérique no 228, 2016
  (https://vdocuments.fr/indice-de-confinement-de-laair-intrieur-des-coles-aux-lodel-occup.html):
  the 0-5 scale, frequency and intensity of confinement.
- Décret no 2012-14 of 5 January 2012, art. 8 (https://projetco2.fr/node/39): continuous NDIR
  measurement, "1 point toutes les dix minutes", at least eight days of 10-minute records.

What was checked and what is ours. Only the protocol's title and contents were readable in the
copies at hand; the formula, the 1,000 / 1,700 ppm bands and the labels 0 nul to 5 extrême agree
across the 2016 article, the regulatory guidance and independent implementations. Three details
could not be read in the protocol itself and are civicsense choices, kept in named constants:

- boundaries: 1,000 ppm exactly counts as not confined and 1,700 ppm exactly as the middle band
  (the bands read "<= 1 000", "between 1 000 and 1 700", "> 1 700"); a value goes up a band only
  once it is strictly above the threshold. Public implementations disagree here (some count
  1,000 ppm in the middle band); at sensor resolution the choice moves few values.
- rounding: half up (2.5 gives 3), the ordinary "nearest integer"; Python's `round` would give
  2. The exact coefficient 2.5 / log10 2 is used, not the rounded 8.3 often quoted: with 8.3 a
  room in the middle band all day would score 2.49 and round to 2.
- validity: the protocol computes one index over a measured school week; the dashboard shows one
  per room and day. A day (or any period) is valid when CO2 values cover at least 75 % of its
  occupied 10-minute steps (`MIN_COVERAGE`, the data-capture rule of ambient air directives). A
  day without occupied time (weekend, holiday, Wednesday afternoon off) has no index.

Occupied time is the school's timetable as a `core.hours.RegulatedHours` schedule: its weekly
ranges are the class hours, French public holidays are off (and the town's `extra_free_days`,
e.g. school holidays, too). `school_hours()` gives the common primary-school week.

Time step (décret 2012-14: one value every ten minutes). Samples are put on a 10-minute grid in
UTC, which is the local grid in every timezone whose offset is a whole number of ten minutes,
as France's (metropolitan and overseas) are. A step's value is the mean of the samples inside
it, as a logger recording 10-minute means would give; a step without a sample takes the last
earlier sample if it is at most `MAX_HOLD` (20 minutes) older than the step's start, so a sensor
reporting every 15 minutes fills every step and a silent sensor fills none. A step counts as
occupied when its start is within occupied hours (school hours on the half hour fall on the
grid). Values are compared with the thresholds unrounded.

Timestamps are timezone-aware (naive ones are refused); a day is a local day of the schedule's
timezone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from itertools import groupby
from typing import Literal

from core.hours import RegulatedHours, TimeRange, is_regulated

__all__ = [
    "CO2_HIGH_PPM",
    "CO2_MEDIUM_PPM",
    "MAX_HOLD",
    "MIN_COVERAGE",
    "STEP",
    "IconeLevel",
    "IconeResult",
    "Language",
    "Sample",
    "daily_icone",
    "icone",
    "icone_index",
    "school_hours",
]

#: Above this concentration (ppm) a value is in the middle band (f1).
CO2_MEDIUM_PPM = 1000.0
#: Above this concentration (ppm) a value is in the high band (f2).
CO2_HIGH_PPM = 1700.0
#: The protocol's time step.
STEP = timedelta(minutes=10)
#: How long the last sample stands in for missing ones.
MAX_HOLD = timedelta(minutes=20)
#: The share of occupied steps that must have a value for the index to be valid.
MIN_COVERAGE = 0.75

#: 2.5 / log10(2): scales log10(1 + f1 + 3 f2) so that f2 = 1 gives exactly 5.
_SCALE = 2.5 / math.log10(2)
#: Keeps results that are .5 in exact arithmetic (f1 = 1: 2.5) from rounding down on float error.
_ROUNDING_SLACK = 1e-9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Sample = tuple[datetime, float]
Language = Literal["fr", "en"]


class IconeLevel(IntEnum):
    """An ICONE level, 0 (no confinement) to 5 (extreme confinement)."""

    NONE = 0
    LOW = 1
    MODERATE = 2
    HIGH = 3
    VERY_HIGH = 4
    EXTREME = 5

    def label(self, language: Language = "fr") -> str:
        """The level's name, in French (the protocol's wording) or English."""
        return _LABELS[language][self]


_LABELS: dict[Language, dict[IconeLevel, str]] = {
    "fr": {
        IconeLevel.NONE: "confinement nul",
        IconeLevel.LOW: "confinement faible",
        IconeLevel.MODERATE: "confinement moyen",
        IconeLevel.HIGH: "confinement élevé",
        IconeLevel.VERY_HIGH: "confinement très élevé",
        IconeLevel.EXTREME: "confinement extrême",
    },
    "en": {
        IconeLevel.NONE: "no confinement",
        IconeLevel.LOW: "low confinement",
        IconeLevel.MODERATE: "moderate confinement",
        IconeLevel.HIGH: "high confinement",
        IconeLevel.VERY_HIGH: "very high confinement",
        IconeLevel.EXTREME: "extreme confinement",
    },
}


@dataclass(frozen=True)
class IconeResult:
    """The index of one period; `index`, `f1` and `f2` are None when it is not valid."""

    start: datetime
    end: datetime
    index: IconeLevel | None
    f1: float | None
    f2: float | None
    occupied_steps: int
    expected_steps: int

    @property
    def valid(self) -> bool:
        """Whether the period had occupied time and enough values over it."""
        return self.index is not None

    @property
    def coverage(self) -> float:
        """The share of occupied steps with a value (0 when nothing was occupied)."""
        return self.occupied_steps / self.expected_steps if self.expected_steps else 0.0

    @property
    def day(self) -> date:
        """The local day the period starts on."""
        return self.start.date()


def icone_index(f1: float, f2: float) -> IconeLevel:
    """The ICONE level from the shares of values in the middle (f1) and high (f2) bands."""
    if not (0.0 <= f1 <= 1.0 and 0.0 <= f2 <= 1.0 and f1 + f2 <= 1.0 + _ROUNDING_SLACK):
        raise ValueError(f"f1 and f2 must be shares summing to at most 1, got {f1!r} and {f2!r}")
    raw = _SCALE * math.log10(1.0 + f1 + 3.0 * f2)
    return IconeLevel(min(5, math.floor(raw + 0.5 + _ROUNDING_SLACK)))


def icone(
    samples: Iterable[Sample],
    hours: RegulatedHours,
    *,
    start: datetime,
    end: datetime,
    min_coverage: float = MIN_COVERAGE,
) -> IconeResult:
    """The ICONE index of [start, end) from (time, CO2 ppm) samples and the occupied hours.

    Samples outside the period (but for those holding a value into its first steps) and outside
    occupied hours are ignored; see the module docstring for the time step and validity rules.
    """
    since = _as_utc(start, "start")
    until = _as_utc(end, "end")
    if until < since:
        raise ValueError(f"end {end.isoformat()} is before start {start.isoformat()}")
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
    relevant = [
        (moment, value) for moment, value in _checked(samples) if since - MAX_HOLD <= moment < until
    ]
    return _icone(sorted(relevant), hours, since, until, min_coverage)


def daily_icone(
    samples: Iterable[Sample],
    hours: RegulatedHours,
    *,
    min_coverage: float = MIN_COVERAGE,
) -> list[IconeResult]:
    """One ICONE result per local day, from the first sample's day to the last one's.

    Every day of the span is there, days without occupied time (weekends, holidays) and days
    without data included, with no index: a chart shows the gaps instead of hiding them.
    """
    if not 0.0 < min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage!r}")
    ordered = sorted(_checked(samples))
    if not ordered:
        return []
    zone = hours.zone
    results: list[IconeResult] = []
    first = cursor = 0
    day = ordered[0][0].astimezone(zone).date()
    last_day = ordered[-1][0].astimezone(zone).date()
    while day <= last_day:
        since = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
        until = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        while first < len(ordered) and ordered[first][0] < since - MAX_HOLD:
            first += 1
        cursor = max(cursor, first)
        while cursor < len(ordered) and ordered[cursor][0] < until:
            cursor += 1
        results.append(_icone(ordered[first:cursor], hours, since, until, min_coverage))
        day += timedelta(days=1)
    return results


def school_hours(*, holiday_subdivision: str | None = None) -> RegulatedHours:
    """A primary school's week: Monday, Tuesday, Thursday, Friday 08:30-16:30, Wednesday
    08:30-11:30, French public holidays off (add school holidays as `extra_free_days`)."""
    day = [TimeRange(start=time(8, 30), end=time(16, 30))]
    wednesday = [TimeRange(start=time(8, 30), end=time(11, 30))]
    return RegulatedHours(
        weekly={"mon": day, "tue": day, "wed": wednesday, "thu": day, "fri": day},
        holiday_subdivision=holiday_subdivision,
    )


def _icone(
    ordered: list[Sample],
    hours: RegulatedHours,
    since: datetime,
    until: datetime,
    min_coverage: float,
) -> IconeResult:
    """The index of [since, until) (UTC) from `ordered` samples, the held ones included."""
    step_values = _StepLookup(ordered)
    expected = occupied = medium = high = 0
    for step_start in _occupied_steps(hours, since, until):
        expected += 1
        value = step_values(step_start)
        if value is None:
            continue
        occupied += 1
        if value > CO2_HIGH_PPM:
            high += 1
        elif value > CO2_MEDIUM_PPM:
            medium += 1
    zone = hours.zone
    start, end = since.astimezone(zone), until.astimezone(zone)
    if expected == 0 or occupied < min_coverage * expected:
        return IconeResult(start, end, None, None, None, occupied, expected)
    f1, f2 = medium / occupied, high / occupied
    return IconeResult(start, end, icone_index(f1, f2), f1, f2, occupied, expected)


class _StepLookup:
    """Step values of a sorted series, looked up in increasing step order: the mean of the
    step's samples, else the last earlier sample if it is at most `MAX_HOLD` old."""

    def __init__(self, ordered: list[Sample]) -> None:
        self._ordered = ordered
        self._means = {
            step: math.fsum(values) / len(values)
            for step, values in (
                (step, [value for _, value in group])
                for step, group in groupby(ordered, key=lambda sample: _step_of(sample[0]))
            )
        }
        self._next = 0  # index of the first sample at or after the last looked-up step start

    def __call__(self, step_start: datetime) -> float | None:
        while self._next < len(self._ordered) and self._ordered[self._next][0] < step_start:
            self._next += 1
        mean = self._means.get(_step_of(step_start))
        if mean is not None:
            return mean
        if self._next == 0:
            return None
        held_at, held_value = self._ordered[self._next - 1]
        return held_value if step_start - held_at <= MAX_HOLD else None


def _occupied_steps(hours: RegulatedHours, since: datetime, until: datetime) -> Iterator[datetime]:
    """The starts of the grid steps in [since, until) that fall in occupied hours."""
    step_start = _EPOCH + STEP * -(-(since - _EPOCH) // STEP)  # first grid instant >= since
    while step_start < until:
        if is_regulated(hours, step_start):
            yield step_start
        step_start += STEP


def _step_of(moment: datetime) -> int:
    """The number of the grid step containing `moment`."""
    return (moment - _EPOCH) // STEP


def _checked(samples: Iterable[Sample]) -> Iterator[Sample]:
    """The samples in UTC, refusing naive times and impossible concentrations."""
    for moment, value in samples:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"CO2 value at {moment.isoformat()} must be >= 0 ppm, got {value!r}")
        yield _as_utc(moment, "sample time"), float(value)


def _as_utc(value: datetime, name: str) -> datetime:
    """`value` in UTC, refusing naive datetimes (their timezone would be a guess)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
    return value.astimezone(UTC)
