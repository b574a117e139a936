"""One alert's life, observation by observation: pending, open, repeated, cleared.

Pure: the engine (alerts.alerting) loads the active alert of a rule and subject, feeds it
each observation in time order, and writes what comes out. An observation says whether the
rule's condition holds, whether its clear condition holds (neither, in a hysteresis band),
at which instant and with which value.

- The condition holds and no alert is active: the alert opens at once, or becomes
  `pending` when the rule asks for a duration. A pending alert opens at the first
  observation that still holds `hold_for` after the condition began; an observation that
  no longer holds (cleared or in the band) drops it: the duration was not reached.
- The condition holds while the alert is open: one more repeat, not a second alert.
- The clear condition holds while the alert is open: the alert clears.
- An observation older than the alert's last one is late (a buffered uplink): it is
  ignored, the newer one already decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Change(StrEnum):
    """What an observation did to the alert."""

    NONE = "none"
    PENDING = "pending"  # the condition began (or goes on) but its duration is not reached
    OPENED = "opened"
    REPEATED = "repeated"
    CLEARED = "cleared"
    DROPPED = "dropped"  # a pending alert whose condition ended before its duration


@dataclass(frozen=True, slots=True)
class Active:
    """An alert that is not cleared (`id` None until written)."""

    state: str  # 'pending' | 'open'
    started_at: datetime
    last_seen_at: datetime
    opened_at: datetime | None = None
    repeats: int = 0
    value: float | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """The rule's verdict on one reading (or one check of a job)."""

    at: datetime
    holds: bool
    clears: bool
    value: float | None = None


_NO_DURATION = timedelta(0)


def step(
    active: Active | None, seen: Observation, hold_for: timedelta = _NO_DURATION
) -> tuple[Active | None, Change]:
    """The alert after `seen`, and what changed."""
    if active is not None and seen.at < active.last_seen_at:
        return active, Change.NONE
    if seen.holds:
        if active is None:
            if hold_for > _NO_DURATION:
                return Active("pending", seen.at, seen.at, value=seen.value), Change.PENDING
            return Active("open", seen.at, seen.at, seen.at, value=seen.value), Change.OPENED
        if active.state == "pending":
            if seen.at - active.started_at >= hold_for:
                opened = Active("open", active.started_at, seen.at, seen.at, active.repeats,
                                seen.value, active.id)  # fmt: skip
                return opened, Change.OPENED
            pending = Active("pending", active.started_at, seen.at, None, active.repeats,
                             seen.value, active.id)  # fmt: skip
            return pending, Change.PENDING
        repeated = Active(active.state, active.started_at, seen.at, active.opened_at,
                          active.repeats + 1, seen.value, active.id)  # fmt: skip
        return repeated, Change.REPEATED
    if active is None:
        return None, Change.NONE
    if active.state == "pending":
        return None, Change.DROPPED
    if seen.clears:
        return None, Change.CLEARED
    return active, Change.NONE
