"""Occupancy intervals of one parking bay, rebuilt from its sensor's `occupied` readings.

A bay sensor reports `occupied` readings: 1 when a car stands over it, 0 when the bay is free.
What reaches us is not a clean sequence of state changes:

- readings arrive in any order (a gateway replays its buffer, an uplink is retried late);
- the same reading may arrive twice (two gateways, a replayed batch);
- the same state is repeated at later times (heartbeats every few minutes);
- a reading's value may be a vendor's raw figure rather than exactly 0 or 1.

`intervals` turns such readings into the bay's stays, in four steps:

1. A value above 0.5 means occupied, anything else free; a value that is not a number (NaN)
   says nothing and is dropped.
2. Readings that share the exact same time keep the value that came last in the input. The
   input order is the order in which readings reached us, so the last one is the sensor's
   latest word about that instant (a corrected retransmission replaces the first copy).
3. The remaining readings are sorted by time, so a late reading falls into its place.
4. Walking through them in time order: an occupied reading while the bay is free opens a stay
   at its time; an occupied reading while a stay is open is a heartbeat and changes nothing;
   a free reading closes the open stay at its time; a free reading while the bay is free (for
   instance the first reading we ever saw) means nothing. The last stay stays open
   (`left_at is None`) when no free reading followed it.

Because the readings are sorted before the walk, a free reading that arrives after the next
occupied one still splits the stay: occupied 10:00, occupied 10:22, then (late) free 10:20 give
the stays [10:00, 10:20) and [10:22, still there) — two cars, not one long stay.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

OCCUPIED_THRESHOLD = 0.5
"""A reading whose value is above this means the bay is occupied."""


@dataclass(frozen=True)
class Interval:
    """One stay in a bay: from the car's arrival to its departure (None while it is still there)."""

    arrived_at: datetime
    left_at: datetime | None

    def covers(self, at: datetime) -> bool:
        """Whether the car was in the bay at `at` (arrival included, departure excluded)."""
        return self.arrived_at <= at and (self.left_at is None or at < self.left_at)


def intervals(readings: Iterable[tuple[datetime, float]]) -> list[Interval]:
    """The bay's stays, oldest first, from `(time, value)` readings in arrival order.

    Readings may come in any time order, repeated, or as heartbeats; see the module docstring
    for the rules. All times must be comparable (all timezone-aware, as stored).
    """
    occupied_at: dict[datetime, bool] = {}
    for at, value in readings:
        if math.isnan(value):
            continue
        # Re-inserting keeps the key's first position but the last value: last arrival wins.
        occupied_at[at] = value > OCCUPIED_THRESHOLD

    stays: list[Interval] = []
    arrived_at: datetime | None = None
    for at in sorted(occupied_at):
        if occupied_at[at]:
            if arrived_at is None:
                arrived_at = at
        elif arrived_at is not None:
            stays.append(Interval(arrived_at=arrived_at, left_at=at))
            arrived_at = None
    if arrived_at is not None:
        stays.append(Interval(arrived_at=arrived_at, left_at=None))
    return stays


def current(stays: Sequence[Interval], at: datetime) -> Interval | None:
    """The stay covering instant `at`, or None when the bay was free then.

    A stay covers `at` when `arrived_at <= at` and it had not yet ended (`left_at` is None or
    later than `at`). Stays built by `intervals` never overlap; should a caller pass overlapping
    ones, the latest arrival wins.
    """
    covering = [stay for stay in stays if stay.covers(at)]
    return max(covering, key=lambda stay: stay.arrived_at) if covering else None
