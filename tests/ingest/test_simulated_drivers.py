"""The simulated drivers: their shares hold, late and overstaying drivers do what their
names say, the same stay always makes the same driver, and the simulator's drivers pay
as the bays they watch fill and empty."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from ingest.simulator import (
    DEFAULT_SHARES,
    DriverShares,
    FleetSimulator,
    PaymentEvent,
    Stay,
    ZoneFacts,
    demo_fleet,
    driver_for,
    payment_events,
    replay_clock,
)
from ingest.simulator.drivers import EXTEND_LEAD
from ingest.simulator.payments import Delivery, SimulatedDrivers

MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ZONE = ZoneFacts()  # 10 grace minutes, 3 hours at most


def stays(count: int, *, minutes: int | None = 90) -> list[Stay]:
    """`count` stays in 40 bays, arriving through a day; `minutes` long (None: still there)."""
    result = []
    for n in range(count):
        arrived = MONDAY + timedelta(minutes=7 * n)
        left = None if minutes is None else arrived + timedelta(minutes=minutes)
        result.append(Stay(f"ROY-{n % 40:03d}", "ROY", arrived, left))
    return result


@pytest.mark.parametrize(
    "shares", [DEFAULT_SHARES, DriverShares(paying=0.25, by_bay=0.9, late=0.1, overstay=0.5)]
)
def test_shares_hold_over_many_stays(shares: DriverShares) -> None:
    drivers = [driver_for(stay, ZONE, shares=shares, seed=7) for stay in stays(4000)]
    paying = [d for d in drivers if d.pays]
    tolerance = 0.03
    assert len(paying) / len(drivers) == pytest.approx(shares.paying, abs=tolerance)
    for name, share in (("by_bay", shares.by_bay), ("late", shares.late),
                        ("overstays", shares.overstay)):  # fmt: skip
        observed = sum(getattr(d, name) for d in paying) / len(paying)
        assert observed == pytest.approx(share, abs=tolerance + 0.02), name


def test_the_same_stay_makes_the_same_driver_and_another_seed_another() -> None:
    stay = stays(1)[0]
    assert driver_for(stay, ZONE, seed=3) == driver_for(stay, ZONE, seed=3)
    first = [driver_for(s, ZONE, seed=3) for s in stays(50)]
    other = [driver_for(s, ZONE, seed=4) for s in stays(50)]
    assert first != other
    timeline = driver_for(stay, ZONE, seed=3).timeline(stay, ZONE)
    assert timeline == driver_for(stay, ZONE, seed=3).timeline(stay, ZONE)


def test_late_drivers_start_paying_after_the_grace_minutes_the_others_within() -> None:
    grace = timedelta(minutes=ZONE.grace_minutes)
    everyone = DriverShares(paying=1, late=0.5)
    started = defaultdict(list)
    for stay in stays(400):
        driver = driver_for(stay, ZONE, shares=everyone)
        first = driver.timeline(stay, ZONE)[0]
        assert first.kind == "session.started"
        started[driver.late].append(first.session.started_at - stay.arrived_at)
    assert started[True] and started[False]
    assert all(grace < delay <= grace + timedelta(minutes=15) for delay in started[True])
    assert all(timedelta(0) <= delay < grace for delay in started[False])


def test_overstaying_drivers_never_extend_and_stay_beyond_the_paid_end() -> None:
    everyone = DriverShares(paying=1, overstay=0.5)
    seen = defaultdict(int)
    for stay in stays(400, minutes=150):  # within the zone's 3 hours
        driver = driver_for(stay, ZONE, shares=everyone)
        timeline = driver.timeline(stay, ZONE)
        kinds = [event.kind for event in timeline]
        final = timeline[-1].session
        assert kinds[0] == "session.started" and kinds[-1] == "session.stopped"
        assert final.stopped_at == stay.left_at
        if driver.overstays:
            assert "session.extended" not in kinds
            assert final.ends_at < stay.left_at  # paid at most an hour of 2.5
        else:
            assert final.ends_at >= stay.left_at  # extended as long as they stayed
        seen[driver.overstays] += 1
    assert seen[True] and seen[False]


def test_compliant_drivers_extend_before_the_paid_end_up_to_the_longest_stay() -> None:
    compliant = DriverShares(paying=1, overstay=0)
    for stay in stays(100, minutes=None):  # never leave
        timeline = driver_for(stay, ZONE, shares=compliant).timeline(stay, ZONE)
        for before, after in pairwise(timeline):
            assert after.kind == "session.extended"
            assert after.at == before.session.ends_at - EXTEND_LEAD
            assert after.session.ends_at > before.session.ends_at
        last = timeline[-1].session
        assert last.ends_at - last.started_at == timedelta(minutes=ZONE.max_minutes)


def test_a_stop_carries_the_fee_of_the_paid_time_used() -> None:
    per_minute = ZoneFacts(fee=lambda start, end: Decimal((end - start).seconds // 60))
    left = MONDAY + timedelta(minutes=50)
    stay = Stay("ROY-001", "ROY", MONDAY, left)
    driver = driver_for(stay, per_minute, shares=DriverShares(paying=1, late=0))
    stop = driver.timeline(stay, per_minute)[-1]
    assert stop.kind == "session.stopped" and stop.at == left
    paid_until = min(left, stop.session.ends_at)
    assert stop.session.amount == (paid_until - stop.session.started_at).seconds // 60


def test_a_car_gone_before_its_driver_pays_gets_no_session() -> None:
    late = DriverShares(paying=1, late=1)
    stay = Stay("ROY-001", "ROY", MONDAY, MONDAY + timedelta(minutes=ZONE.grace_minutes))
    assert driver_for(stay, ZONE, shares=late).timeline(stay, ZONE) == []
    assert payment_events(stay, ZONE, now=MONDAY + timedelta(hours=1), shares=late) == []


def test_what_was_done_by_now_does_not_change_when_the_car_leaves_later() -> None:
    for stay in stays(200, minutes=None):
        now = stay.arrived_at + timedelta(minutes=100)
        so_far = payment_events(stay, ZONE, now=now)
        assert all(event.at <= now for event in so_far)
        gone = replace(stay, left_at=now + timedelta(seconds=1))
        final = payment_events(gone, ZONE, now=now + timedelta(hours=1))
        assert final[: len(so_far)] == so_far
        assert not final or final[-1].kind == "session.stopped"


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_shares_are_between_0_and_1(share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        DriverShares(late=share)


def test_the_simulated_bays_drivers_pay_as_cars_come_and_go() -> None:
    """A replayed morning of a 30-device town: each driver's events come in order, none
    before its time, and a session stops when its bay is seen free."""
    fleet = demo_fleet(30, seed=2)
    sent: list[tuple[datetime, PaymentEvent]] = []
    clock_now: list[datetime] = []

    def send(event: PaymentEvent) -> Delivery:
        sent.append((clock_now[-1], event))
        return "sent"

    drivers = SimulatedDrivers(fleet, send, shares=DriverShares(paying=1), seed=2)
    simulator = FleetSimulator(fleet, seed=2, malformed_ratio=0.02)
    freed: dict[str, list[datetime]] = defaultdict(list)
    for event in simulator.events(1500, clock=replay_clock(MONDAY, 20)):
        assert event.time is not None
        clock_now.append(event.time)
        drivers.observe(event)
        if event.readings is not None and event.readings.get("occupied") == 0:
            freed[event.dev_eui].append(event.time)

    by_session: dict[str, list[PaymentEvent]] = defaultdict(list)
    for observed_at, event in sent:
        assert event.at <= observed_at  # nothing paid ahead of the town's clock
        by_session[event.session.id].append(event)
    stats = drivers.stats
    assert (stats.started, stats.refused, stats.failed) == (len(by_session), 0, 0)
    assert stats.extended > 0 and stats.stopped > 0
    assert len(sent) == stats.started + stats.extended + stats.stopped
    bays = {d.place: d.dev_eui for d in fleet if d.kind == "parking"}
    for events in by_session.values():
        kinds = [event.kind for event in events]
        assert kinds[0] == "session.started" and "session.started" not in kinds[1:]
        assert [event.event_id for event in events] == [
            f"{events[0].session.id}.{n}" for n in range(len(events))
        ]
        if kinds[-1] == "session.stopped":
            stop = events[-1]
            bay = stop.session.id.rsplit("-", 1)[0]
            assert stop.at in freed[bays[bay]]
