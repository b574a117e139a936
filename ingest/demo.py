"""ingest's part of the demo: the simulated town's devices, an ingest worker, the simulator."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable

import psycopg

from core import tenants
from core.settings import Settings
from devices import service
from devices.models import DeviceCreate

from .simulator import FleetSimulator, SimDevice, demo_fleet, publish
from .worker import start_worker


def register_fleet(
    conn: psycopg.Connection, settings: Settings, tenant_id: int, fleet: Iterable[SimDevice]
) -> None:
    """Register simulated devices in a tenant (idempotent)."""
    for device in fleet:
        bay = device.place if device.kind == "parking" else None
        registration = DeviceCreate(
            dev_eui=device.dev_eui,
            model=device.model,
            name=device.name,
            site=device.site,
            bay=bay,
            lat=device.lat,
            lon=device.lon,
        )
        service.register(conn, settings, tenant_id=tenant_id, device=registration)


def seed(conn: psycopg.Connection, settings: Settings, *, devices: int) -> None:
    """Register the simulated fleet in the demo tenant (idempotent)."""
    tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
    register_fleet(conn, settings, tenant_id, demo_fleet(devices))


def services(
    settings: Settings, stack: contextlib.ExitStack, *, devices: int, rate: float
) -> list[str]:
    """Start an ingest worker and the simulator; returns API paths worth trying."""
    worker = start_worker(settings, client_id="civicsense-demo-ingest")
    stack.callback(worker.stop)
    fleet = demo_fleet(devices)
    stop = threading.Event()
    simulator = threading.Thread(
        target=publish,
        args=(settings.mqtt_url, FleetSimulator(fleet, malformed_ratio=0.002)),
        kwargs={"rate": rate, "stop": stop},
        name="simulator",
        daemon=True,
    )
    simulator.start()
    stack.callback(simulator.join, 5)
    stack.callback(stop.set)
    first_of_kind = {d.kind: d for d in reversed(fleet)}
    return [f"/devices/{first_of_kind[k].dev_eui}/readings" for k in sorted(first_of_kind)]
