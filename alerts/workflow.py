"""The incident workflow: states, named transitions, and what they do to the service-level clocks.

    acknowledge   new                                 -> acknowledged
    start         new, acknowledged                   -> in_progress
    wait          acknowledged, in_progress           -> waiting
    resume        waiting                             -> in_progress
    resolve       acknowledged, in_progress, waiting  -> resolved
    reopen        resolved                            -> in_progress
    close         resolved                            -> closed
    auto_close    resolved                            -> closed

Transitions have names (`acknowledge`, `start`, `wait`, ...) so that the API can map each to
a permission. `close` is a person's (the requester or a manager confirming the resolution);
`auto_close` is the scheduler's, 20 days after the resolution without a reaction. `closed`
is final: a problem that comes back after closing is a new incident.

Clocks: the GTI is reached by the first `acknowledge` or `start`, the GTR by `resolve`, and
`reopen` takes the GTR back (its clock runs on from where it stood). The clocks stand still
in `waiting` (the incident waits on the requester or a third party) and in `resolved` (the
resolution awaits confirmation; a reopening does not charge that wait to the provider).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from .sla import Milestone, Pause, Priority, SlaClock, SlaPolicy, as_utc

__all__ = [
    "AUTO_CLOSE_AFTER",
    "CLOCK_STOPPED_STATES",
    "MILESTONE_REACHED_BY",
    "TRANSITIONS",
    "IllegalTransitionError",
    "IncidentHistory",
    "State",
    "Step",
    "Transition",
    "TransitionRule",
    "allowed_transitions",
    "auto_close_at",
    "next_state",
    "replay",
]

#: How long a resolved incident waits for a reaction before it closes itself.
AUTO_CLOSE_AFTER = timedelta(days=20)


class State(StrEnum):
    """Where an incident stands."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    WAITING = "waiting"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Transition(StrEnum):
    """What someone (or the scheduler, for `auto_close`) does to an incident."""

    ACKNOWLEDGE = "acknowledge"
    START = "start"
    WAIT = "wait"
    RESUME = "resume"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"
    AUTO_CLOSE = "auto_close"


@dataclass(frozen=True)
class TransitionRule:
    """From which states a transition applies, where it leads, and whether only the system
    may apply it."""

    sources: frozenset[State]
    target: State
    automatic: bool = False


TRANSITIONS: dict[Transition, TransitionRule] = {
    Transition.ACKNOWLEDGE: TransitionRule(frozenset({State.NEW}), State.ACKNOWLEDGED),
    Transition.START: TransitionRule(frozenset({State.NEW, State.ACKNOWLEDGED}), State.IN_PROGRESS),
    Transition.WAIT: TransitionRule(
        frozenset({State.ACKNOWLEDGED, State.IN_PROGRESS}), State.WAITING
    ),
    Transition.RESUME: TransitionRule(frozenset({State.WAITING}), State.IN_PROGRESS),
    Transition.RESOLVE: TransitionRule(
        frozenset({State.ACKNOWLEDGED, State.IN_PROGRESS, State.WAITING}), State.RESOLVED
    ),
    Transition.REOPEN: TransitionRule(frozenset({State.RESOLVED}), State.IN_PROGRESS),
    Transition.CLOSE: TransitionRule(frozenset({State.RESOLVED}), State.CLOSED),
    Transition.AUTO_CLOSE: TransitionRule(
        frozenset({State.RESOLVED}), State.CLOSED, automatic=True
    ),
}

#: States in which the service-level clocks stand still.
CLOCK_STOPPED_STATES = frozenset({State.WAITING, State.RESOLVED, State.CLOSED})

#: The milestone each transition reaches (the GTI only the first time).
MILESTONE_REACHED_BY: dict[Transition, Milestone] = {
    Transition.ACKNOWLEDGE: Milestone.GTI,
    Transition.START: Milestone.GTI,
    Transition.RESOLVE: Milestone.GTR,
}


class IllegalTransitionError(ValueError):
    """A transition that does not apply to the incident's current state."""

    def __init__(self, state: State, transition: Transition) -> None:
        rule = TRANSITIONS[transition]
        sources = ", ".join(sorted(rule.sources))
        super().__init__(
            f"cannot {transition} an incident from {state} to {rule.target}: "
            f"{transition} applies only to {sources}"
        )
        self.state = state
        self.transition = transition


def next_state(state: State, transition: Transition) -> State:
    """The state `transition` leads to from `state`; raises `IllegalTransitionError`."""
    rule = TRANSITIONS[transition]
    if state not in rule.sources:
        raise IllegalTransitionError(state, transition)
    return rule.target


def allowed_transitions(state: State) -> list[Transition]:
    """The transitions that apply to `state`, in declaration order."""
    return [transition for transition, rule in TRANSITIONS.items() if state in rule.sources]


def auto_close_at(resolved_at: datetime, last_reaction_at: datetime | None = None) -> datetime:
    """When a resolved incident closes itself: 20 days after its resolution.

    A reaction (a comment or an attachment after the resolution that does not reopen the
    incident) starts the 20 days again. The days are exact 24-hour periods, so across a
    daylight-saving change the wall-clock time moves by an hour.
    """
    since = as_utc(resolved_at, "resolved_at")
    if last_reaction_at is not None:
        since = max(since, as_utc(last_reaction_at, "last_reaction_at"))
    return (since + AUTO_CLOSE_AFTER).astimezone(resolved_at.tzinfo)


@dataclass(frozen=True)
class Step:
    """A transition applied at an instant."""

    transition: Transition
    at: datetime


@dataclass(frozen=True)
class IncidentHistory:
    """What an incident's steps add up to: its state and its clocks' inputs (UTC)."""

    state: State
    opened_at: datetime
    pauses: tuple[Pause, ...]
    reached: dict[Milestone, datetime]

    def clock(self, policy: SlaPolicy, priority: Priority, milestone: Milestone) -> SlaClock:
        """The `milestone` clock under `policy` (a re-qualified priority counts from opening)."""
        return SlaClock(
            policy=policy,
            priority=priority,
            milestone=milestone,
            opened_at=self.opened_at,
            pauses=self.pauses,
            reached_at=self.reached.get(milestone),
        )


def replay(opened_at: datetime, steps: list[Step]) -> IncidentHistory:
    """Apply `steps` in order to an incident opened at `opened_at`.

    Raises `IllegalTransitionError` on a step that does not apply, ValueError on a step
    dated before the previous one (or before the opening).
    """
    state = State.NEW
    previous = as_utc(opened_at, "opened_at")
    pauses: list[Pause] = []
    pause_start: datetime | None = None
    reached: dict[Milestone, datetime] = {}
    for step in steps:
        at = as_utc(step.at, "step time")
        if at < previous:
            raise ValueError(
                f"{step.transition} at {step.at.isoformat()} is dated before the previous "
                f"step or the opening ({previous.isoformat()})"
            )
        target = next_state(state, step.transition)
        if target in CLOCK_STOPPED_STATES and pause_start is None:
            pause_start = at
        elif target not in CLOCK_STOPPED_STATES and pause_start is not None:
            pauses.append(Pause(pause_start, at))
            pause_start = None
        milestone = MILESTONE_REACHED_BY.get(step.transition)
        if milestone is not None:
            reached.setdefault(milestone, at)
        if step.transition is Transition.REOPEN:
            del reached[Milestone.GTR]
        state, previous = target, at
    if pause_start is not None:
        pauses.append(Pause(pause_start))
    return IncidentHistory(
        state=state, opened_at=as_utc(opened_at, "opened_at"), pauses=tuple(pauses), reached=reached
    )
