"""ingest's part of the demo: the simulated town's devices, an ingest worker, the simulator."""

from __future__ import annotations

import contextlib
import threading

import psycopg

from core import tenants
from core.settings import Settings
from devices import service
from devices.models import DeviceCreate

from .simulator import FleetSimulator, demo_fleet, publish
from .worker import start_worker

DEMO_TENANT = tenants.TenantCreate(slug="demo", name="Ville de Démo")


def seed(conn: psycopg.Connection, settings: Settings, *, devices: int) -> None:
    """Register the simulated fleet in the demo tenant (idempotent)."""
    tenant_id = tenants.get_or_create(conn, DEMO_TENANT)
    for device in demo_fleet(devices):
        service.register(
            conn,
            settings,
            tenant_id=tenant_id,
            device=DeviceCreate(
                dev_eui=device.dev_eui,
                model=device.model,
                name=device.name,
                site=device.site,
                bay=device.place if device.kind == "parking" else None,
                lat=device.lat,
                lon=device.lon,
            ),
        )


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
