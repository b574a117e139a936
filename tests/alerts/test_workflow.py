"""Incident workflow: legal and illegal transitions, pauses and milestones, automatic closing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.sla import ClockState, Milestone, Pause, Priority, SlaPolicy
from alerts.workflow import (
    TRANSITIONS,
    IllegalTransitionError,
    State,
    Step,
    Transition,
    allowed_transitions,
    auto_close_at,
    next_state,
    replay,
)

PARIS = ZoneInfo("Europe/Paris")
S, T = State, Transition


def paris(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=PARIS)


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


# Written out by hand: every (state, transition) pair not listed here is illegal.
LEGAL: dict[tuple[State, Transition], State] = {
    (S.NEW, T.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.NEW, T.START): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, T.START): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, T.WAIT): S.WAITING,
    (S.ACKNOWLEDGED, T.RESOLVE): S.RESOLVED,
    (S.IN_PROGRESS, T.WAIT): S.WAITING,
    (S.IN_PROGRESS, T.RESOLVE): S.RESOLVED,
    (S.WAITING, T.RESUME): S.IN_PROGRESS,
    (S.WAITING, T.RESOLVE): S.RESOLVED,
    (S.RESOLVED, T.REOPEN): S.IN_PROGRESS,
    (S.RESOLVED, T.CLOSE): S.CLOSED,
    (S.RESOLVED, T.AUTO_CLOSE): S.CLOSED,
}


@pytest.mark.parametrize(("state", "transition"), list(LEGAL))
def test_legal_transition(state: State, transition: Transition) -> None:
    assert next_state(state, transition) is LEGAL[(state, transition)]


ILLEGAL = [
    (state, transition) for state in S for transition in T if (state, transition) not in LEGAL
]


@pytest.mark.parametrize(("state", "transition"), ILLEGAL)
def test_illegal_transition(state: State, transition: Transition) -> None:
    with pytest.raises(IllegalTransitionError) as raised:
        next_state(state, transition)
    assert raised.value.state is state
    assert raised.value.transition is transition


@pytest.mark.parametrize(
    ("state", "transition", "message"),
    [
        (
            S.NEW,
            T.RESOLVE,
            "cannot resolve an incident from new to resolved: "
            "resolve applies only to acknowledged, in_progress, waiting",
        ),
        (
            S.CLOSED,
            T.REOPEN,
            "cannot reopen an incident from closed to in_progress: reopen applies only to resolved",
        ),
        (
            S.NEW,
            T.WAIT,
            "cannot wait an incident from new to waiting: "
            "wait applies only to acknowledged, in_progress",
        ),
    ],
)
def test_illegal_transition_message_names_both_states(
    state: State, transition: Transition, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        next_state(state, transition)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (S.NEW, [T.ACKNOWLEDGE, T.START]),
        (S.ACKNOWLEDGED, [T.START, T.WAIT, T.RESOLVE]),
        (S.IN_PROGRESS, [T.WAIT, T.RESOLVE]),
        (S.WAITING, [T.RESUME, T.RESOLVE]),
        (S.RESOLVED, [T.REOPEN, T.CLOSE, T.AUTO_CLOSE]),
        (S.CLOSED, []),
    ],
)
def test_allowed_transitions(state: State, expected: list[Transition]) -> None:
    assert allowed_transitions(state) == expected


def test_only_the_scheduler_auto_closes() -> None:
    assert [name for name, rule in TRANSITIONS.items() if rule.automatic] == [T.AUTO_CLOSE]


# --- replay: pauses and milestones --------------------------------------------------------

OPENED = paris(2026, 3, 9, 9)  # Monday


@pytest.mark.parametrize(
    ("steps", "state", "pauses", "reached"),
    [
        pytest.param([], S.NEW, [], {}, id="new"),
        pytest.param(
            [(T.ACKNOWLEDGE, paris(2026, 3, 9, 9, 20)), (T.START, paris(2026, 3, 9, 9, 40))],
            S.IN_PROGRESS, [], {Milestone.GTI: paris(2026, 3, 9, 9, 20)},
            id="gti-at-acknowledgement-not-at-start",
        ),
        pytest.param(
            [(T.START, paris(2026, 3, 9, 9, 40))],
            S.IN_PROGRESS, [], {Milestone.GTI: paris(2026, 3, 9, 9, 40)},
            id="gti-at-start-without-acknowledgement",
        ),
        pytest.param(
            [
                (T.START, paris(2026, 3, 9, 9, 30)),
                (T.WAIT, paris(2026, 3, 9, 10)),
                (T.RESUME, paris(2026, 3, 10, 10)),
                (T.RESOLVE, paris(2026, 3, 10, 15)),
            ],
            S.RESOLVED,
            [(paris(2026, 3, 9, 10), paris(2026, 3, 10, 10)), (paris(2026, 3, 10, 15), None)],
            {Milestone.GTI: paris(2026, 3, 9, 9, 30), Milestone.GTR: paris(2026, 3, 10, 15)},
            id="waiting-then-resolved",
        ),
        pytest.param(
            [
                (T.ACKNOWLEDGE, paris(2026, 3, 9, 9, 5)),
                (T.WAIT, paris(2026, 3, 9, 10)),
                (T.RESOLVE, paris(2026, 3, 9, 11)),
                (T.CLOSE, paris(2026, 3, 9, 12)),
            ],
            S.CLOSED,
            [(paris(2026, 3, 9, 10), None)],
            {Milestone.GTI: paris(2026, 3, 9, 9, 5), Milestone.GTR: paris(2026, 3, 9, 11)},
            id="resolved-while-waiting-one-pause",
        ),
        pytest.param(
            [
                (T.START, paris(2026, 3, 9, 9, 30)),
                (T.RESOLVE, paris(2026, 3, 9, 15)),
                (T.REOPEN, paris(2026, 3, 11, 10)),
            ],
            S.IN_PROGRESS,
            [(paris(2026, 3, 9, 15), paris(2026, 3, 11, 10))],
            {Milestone.GTI: paris(2026, 3, 9, 9, 30)},
            id="reopen-takes-the-gtr-back",
        ),
        pytest.param(
            [
                (T.START, paris(2026, 3, 9, 9, 30)),
                (T.RESOLVE, paris(2026, 3, 9, 15)),
                (T.REOPEN, paris(2026, 3, 11, 10)),
                (T.RESOLVE, paris(2026, 3, 11, 12)),
            ],
            S.RESOLVED,
            [(paris(2026, 3, 9, 15), paris(2026, 3, 11, 10)), (paris(2026, 3, 11, 12), None)],
            {Milestone.GTI: paris(2026, 3, 9, 9, 30), Milestone.GTR: paris(2026, 3, 11, 12)},
            id="second-resolution-reaches-the-gtr",
        ),
    ],
)  # fmt: skip
def test_replay(
    steps: list[tuple[Transition, datetime]],
    state: State,
    pauses: list[tuple[datetime, datetime | None]],
    reached: dict[Milestone, datetime],
) -> None:
    history = replay(OPENED, [Step(transition, at) for transition, at in steps])
    assert history.state is state
    assert history.pauses == tuple(Pause(start, end) for start, end in pauses)
    assert history.reached == {milestone: utc(at) for milestone, at in reached.items()}


def test_reopened_incident_is_not_charged_for_the_time_it_sat_resolved() -> None:
    history = replay(
        OPENED,
        [
            Step(T.ACKNOWLEDGE, paris(2026, 3, 9, 9, 20)),
            Step(T.START, paris(2026, 3, 9, 9, 40)),
            Step(T.WAIT, paris(2026, 3, 9, 10)),
            Step(T.RESUME, paris(2026, 3, 10, 10)),
            Step(T.RESOLVE, paris(2026, 3, 10, 15)),
            Step(T.REOPEN, paris(2026, 3, 12, 10)),
            Step(T.RESOLVE, paris(2026, 3, 12, 12)),
        ],
    )
    gtr = history.clock(SlaPolicy(), Priority.P1, Milestone.GTR)
    # Counted: Mon 9 09:00-10:00 (1 h) + Tue 10 10:00-15:00 (5 h) + Thu 12 10:00-12:00 (2 h)
    # = 8 h < 12 h. Had the resolved spell counted (Tue 15:00-Thu 10:00, 15 h) it would be 23 h.
    assert gtr.elapsed(paris(2026, 3, 12, 12)) == timedelta(hours=8)
    assert gtr.state(paris(2026, 3, 20)) is ClockState.MET
    gti = history.clock(SlaPolicy(), Priority.P1, Milestone.GTI)
    assert gti.reached_at == utc(paris(2026, 3, 9, 9, 20))
    assert gti.reached_in_time() is True


def test_waiting_incident_has_a_paused_gtr_without_deadline() -> None:
    history = replay(
        OPENED,
        [Step(T.START, paris(2026, 3, 9, 9, 30)), Step(T.WAIT, paris(2026, 3, 9, 11))],
    )
    gtr = history.clock(SlaPolicy(), Priority.P0, Milestone.GTR)
    assert gtr.state(paris(2026, 3, 10, 12)) is ClockState.PAUSED
    assert gtr.remaining(paris(2026, 3, 10, 12)) == timedelta(hours=2)  # 4 h - (09:00-11:00)
    assert gtr.deadline() is None


def test_replay_refuses_an_illegal_step() -> None:
    with pytest.raises(IllegalTransitionError, match="from new to resolved"):
        replay(OPENED, [Step(T.RESOLVE, paris(2026, 3, 9, 10))])


@pytest.mark.parametrize(
    "steps",
    [
        [Step(T.START, paris(2026, 3, 9, 8))],
        [Step(T.START, paris(2026, 3, 9, 10)), Step(T.WAIT, paris(2026, 3, 9, 9, 30))],
    ],
    ids=["before-opening", "before-previous-step"],
)
def test_replay_refuses_steps_out_of_order(steps: list[Step]) -> None:
    with pytest.raises(ValueError, match="is dated before the previous step or the opening"):
        replay(OPENED, steps)


# --- automatic closing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolved_at", "last_reaction_at", "expected"),
    [
        pytest.param(paris(2026, 3, 2, 10), None, paris(2026, 3, 22, 10), id="20-days"),
        pytest.param(
            paris(2026, 3, 2, 10), paris(2026, 3, 5, 16), paris(2026, 3, 25, 16),
            id="reaction-starts-again",
        ),
        pytest.param(
            paris(2026, 3, 2, 10), paris(2026, 3, 1, 16), paris(2026, 3, 22, 10),
            id="reaction-before-resolution-ignored",
        ),
        pytest.param(
            paris(2026, 3, 20, 10), None, paris(2026, 4, 9, 11),
            id="across-the-spring-change",
        ),  # 20 x 24 h from 09:00 UTC = 09:00 UTC on 9 April = 11:00 summer time
    ],
)  # fmt: skip
def test_auto_close_at(
    resolved_at: datetime, last_reaction_at: datetime | None, expected: datetime
) -> None:
    assert auto_close_at(resolved_at, last_reaction_at) == expected


# --- naive datetimes ----------------------------------------------------------------------

NAIVE = datetime(2026, 3, 10, 10)


@pytest.mark.parametrize(
    "call",
    [
        lambda: auto_close_at(NAIVE),
        lambda: auto_close_at(paris(2026, 3, 2), NAIVE),
        lambda: replay(NAIVE, []),
        lambda: replay(OPENED, [Step(T.START, NAIVE)]),
    ],
    ids=["resolved_at", "last_reaction_at", "opened_at", "step"],
)
def test_naive_datetimes_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()
