"""What ingest publishes after each committed batch; other packages subscribe to these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


class StoredReading(NamedTuple):
    """A decoded reading now in the database (a named tuple: there are many)."""

    time: datetime
    tenant_id: int
    device_id: int
    dev_eui: str
    model: str
    quantity: str
    value: float


class StoredUplink(NamedTuple):
    """Radio facts of an uplink now in the database (for device health)."""

    time: datetime
    tenant_id: int
    device_id: int
    dev_eui: str
    f_cnt: int
    gateway_id: str | None
    rssi: int | None
    snr: float | None
    gateway_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReadingsStored:
    """New readings of one committed batch, in arrival order."""

    readings: tuple[StoredReading, ...]


@dataclass(frozen=True, slots=True)
class UplinksStored:
    """New (not duplicate) uplinks of one committed batch."""

    uplinks: tuple[StoredUplink, ...]
