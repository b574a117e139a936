"""The fleet simulator: a French town's sensors as ChirpStack v4 events, published over MQTT,
and the drivers who park in its bays and pay (payments.py sends their payments as webhooks)."""

from .drivers import (
    DEFAULT_SHARES,
    DriverShares,
    PaymentEvent,
    Stay,
    ZoneFacts,
    driver_for,
    payment_events,
)
from .events import FleetSimulator, SimEvent, replay_clock, wall_clock
from .fleet import SimDevice, demo_fleet
from .publish import PublishStats, publish

__all__ = [
    "DEFAULT_SHARES",
    "DriverShares",
    "FleetSimulator",
    "PaymentEvent",
    "PublishStats",
    "SimDevice",
    "SimEvent",
    "Stay",
    "ZoneFacts",
    "demo_fleet",
    "driver_for",
    "payment_events",
    "publish",
    "replay_clock",
    "wall_clock",
]
