"""The fleet simulator: a French town's sensors as ChirpStack v4 events, published over MQTT."""

from .events import FleetSimulator, SimEvent, replay_clock, wall_clock
from .fleet import SimDevice, demo_fleet
from .publish import PublishStats, publish

__all__ = [
    "FleetSimulator",
    "PublishStats",
    "SimDevice",
    "SimEvent",
    "demo_fleet",
    "publish",
    "replay_clock",
    "wall_clock",
]
