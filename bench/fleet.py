"""The benchmark's fleet: registered devices, pre-generated events, and the rows they make."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from core import tenants
from core.settings import Settings
from devices import service
from devices.lookup import DeviceRef
from devices.models import DeviceCreate
from ingest.batch import assemble, from_topic
from ingest.simulator import FleetSimulator, SimDevice, SimEvent, replay_clock

FORMATS = {"mix": None, "json": False, "protobuf": True}


def register(conn: psycopg.Connection, settings: Settings, fleet: Iterable[SimDevice]) -> int:
    """Register `fleet` in tenant `bench` (one transaction); returns the tenant id."""
    with conn.transaction():
        tenant_id = tenants.get_or_create(conn, tenants.TenantCreate(slug="bench", name="Bench"))
        for device in fleet:
            create = DeviceCreate(
                dev_eui=device.dev_eui, model=device.model, name=device.name,
                site=device.site, lat=device.lat, lon=device.lon,
            )  # fmt: skip
            service.register(conn, settings, tenant_id=tenant_id, device=create)
    return tenant_id


def device_refs(conn: psycopg.Connection, tenant_id: int) -> dict[str, DeviceRef]:
    """DevEUI → DeviceRef of the tenant's live devices (the baselines' resolver)."""
    rows = conn.execute(
        "SELECT dev_eui, id, tenant_id, model, status FROM devices"
        " WHERE tenant_id = %s AND status <> 'decommissioned'",
        (tenant_id,),
    ).fetchall()
    return {row[0]: DeviceRef(row[1], row[2], row[0], row[3], row[4]) for row in rows}


def generate(fleet: Sequence[SimDevice], count: int, *, fmt: str, seed: int) -> list[SimEvent]:
    """`count` clean events (no malformed frames, no second-gateway copies) over the last hour."""
    simulator = FleetSimulator(
        fleet, protobuf=FORMATS[fmt], seed=seed, malformed_ratio=0, duplicate_gateway_ratio=0
    )
    start = datetime.now(UTC) - timedelta(hours=1)
    clock = replay_clock(start, timedelta(hours=1) / max(count, 1))
    return list(simulator.events(count, clock=clock))


def simulator(fleet: Sequence[SimDevice], *, fmt: str, seed: int) -> FleetSimulator:
    """A clean simulator on the wall clock, for the paced latency run."""
    return FleetSimulator(
        fleet, protobuf=FORMATS[fmt], seed=seed, malformed_ratio=0, duplicate_gateway_ratio=0
    )


@dataclass
class Unit:
    """What one message adds: a row of `uplinks` or `device_events`, and its readings."""

    table: str
    row: tuple
    readings: list[tuple]


@dataclass
class Rows:
    """Every message's rows, in publication order, plus what building them cost."""

    units: list[Unit] = field(default_factory=list)
    assemble_seconds: float = 0.0
    messages: int = 0

    @property
    def uplinks(self) -> int:
        """Uplink rows."""
        return sum(unit.table == "uplinks" for unit in self.units)

    @property
    def readings(self) -> int:
        """Reading rows."""
        return sum(len(unit.readings) for unit in self.units)


def build_rows(
    events: Sequence[SimEvent], devices: Mapping[str, DeviceRef], *, batch_size: int
) -> Rows:
    """The rows ingest stores for `events`, built by `ingest.batch.assemble` (timed)."""
    rows = Rows(messages=len(events))
    resolve = lambda euis: {e: devices[e] for e in euis if e in devices}  # noqa: E731
    for first in range(0, len(events), batch_size):
        chunk = events[first : first + batch_size]
        started = time.perf_counter()
        batch = assemble([from_topic(e.topic, e.payload) for e in chunk], resolve)
        rows.assemble_seconds += time.perf_counter() - started
        readings = {
            key: [(r.time, r.tenant_id, r.device_id, r.quantity, r.value) for r in found]
            for key, found in batch.readings.items()
        }
        rows.units += [Unit("uplinks", u, readings.get(str(u[4]), [])) for u in batch.uplinks]
        rows.units += [
            Unit("device_events", e, readings.get(f"{e[4]}:{e[5]}", [])) for e in batch.events
        ]
    return rows
