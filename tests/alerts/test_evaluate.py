"""One alert's life, observation by observation (alerts.evaluate) with real rule conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from alerts.evaluate import Active, Change, Observation, step
from alerts.rules import Event, Rate, RuleSpec, Scope, Threshold

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CO2 = Threshold(quantity="co2", value=1700, for_minutes=10, clear_value=1500)


def seen(minutes: float, value: float, condition: Threshold | Event = CO2) -> Observation:
    return Observation(T0 + timedelta(minutes=minutes), condition.holds(value),
                       condition.clears(value), value)  # fmt: skip


def run(
    values: list[tuple[float, float]], condition: Threshold | Event = CO2
) -> tuple[Active | None, list[Change]]:
    hold_for = timedelta(minutes=getattr(condition, "for_minutes", 0))
    active: Active | None = None
    changes = []
    for minutes, value in values:
        active, change = step(active, seen(minutes, value, condition), hold_for)
        changes.append(change)
    return active, changes


def test_a_duration_rule_opens_only_once_the_condition_has_lasted() -> None:
    active, changes = run([(0, 1800), (5, 1900), (10, 1800)])
    assert changes == [Change.PENDING, Change.PENDING, Change.OPENED]
    assert active is not None and active.state == "open"
    assert active.started_at == T0 and active.opened_at == T0 + timedelta(minutes=10)


def test_a_pending_alert_is_dropped_when_the_condition_breaks_before_its_duration() -> None:
    active, changes = run([(0, 1800), (5, 1600), (10, 1800)])
    assert changes == [Change.PENDING, Change.DROPPED, Change.PENDING]
    assert active is not None and active.started_at == T0 + timedelta(minutes=10)


def test_hysteresis_keeps_the_alert_open_between_the_two_values() -> None:
    active, changes = run([(0, 1800), (10, 1800), (20, 1600), (30, 1750), (40, 1400)])
    assert changes == [Change.PENDING, Change.OPENED, Change.NONE, Change.REPEATED,
                       Change.CLEARED]  # fmt: skip
    assert active is None


def test_repeats_are_counted_on_one_alert() -> None:
    leak = Event(quantity="leak", equals=1)
    active, changes = run([(0, 1), (1, 1), (2, 1)], leak)
    assert changes == [Change.OPENED, Change.REPEATED, Change.REPEATED]
    assert (
        active is not None
        and active.repeats == 2
        and active.last_seen_at == T0 + timedelta(minutes=2)
    )


def test_a_late_observation_changes_nothing() -> None:
    leak = Event(quantity="leak", equals=1)
    active, _ = run([(0, 1), (10, 1)], leak)
    after, change = step(active, seen(5, 0, leak))
    assert change is Change.NONE and after == active


def test_an_event_clears_on_any_other_value() -> None:
    _, changes = run([(0, 1), (1, 0)], Event(quantity="leak", equals=1))
    assert changes == [Change.OPENED, Change.CLEARED]


def test_below_thresholds_and_rates() -> None:
    battery = Threshold(quantity="battery", direction="below", value=20, clear_value=30)
    assert battery.holds(19) and not battery.holds(20)
    assert not battery.clears(29) and battery.clears(30)
    rise = Rate(quantity="temperature", delta=5, window_minutes=10, direction="rise")
    assert rise.holds_change(5) and not rise.holds_change(-6)
    assert Rate(quantity="temperature", delta=5, window_minutes=10).holds_change(-6)


@pytest.mark.parametrize("bad", [
    {"name": "x", "category": "air", "condition": {"kind": "threshold", "quantity": "co2",
                                                    "value": 1000, "clear_value": 1200}},
    {"name": "x", "category": "air", "open_incident": True,
     "condition": {"kind": "event", "quantity": "leak"}},
    {"name": "x", "category": "gateway", "condition": {"kind": "gateway"},
     "scope": {"site": "École"}},
    {"name": "x", "category": "air", "condition": {"kind": "nope", "quantity": "co2"}},
    {"name": "x", "category": "air", "condition": {"kind": "event", "quantity": "leak"},
     "scope": {"tag_value": "a"}},
])  # fmt: skip
def test_inconsistent_rules_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RuleSpec.model_validate(bad)


def test_scope_matches_model_site_tag_and_device() -> None:
    scope = Scope(model="elsys-ers-co2", site="École Jules Ferry", tag_key="floor", tag_value="1")
    assert scope.matches("elsys-ers-co2", "École Jules Ferry", {"floor": "1"}, 7)
    assert not scope.matches("elsys-ers-co2", "École Jules Ferry", {"floor": "2"}, 7)
    assert not scope.matches("milesight-am307", "École Jules Ferry", {"floor": "1"}, 7)
    assert not Scope(device_id=8).matches("elsys-ers-co2", None, {}, 7)
    assert Scope().matches("any", None, {}, 1)
