"""parking's part of the demo: a tariff zone per street of the simulated town, a bay per
simulated parking sensor, and drivers who pay by phone (some late, some not at all,
some staying beyond what they paid).

The drivers are the simulator's (`ingest.simulator.drivers`, the same as `civicsense
simulate --payments-url` sends as webhooks), applied here straight to the database: the
demo has no operator's signing secret to sign webhooks with.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from core import hours, tenants
from core.audit import Actor
from core.settings import Settings
from ingest.simulator import Stay, ZoneFacts, demo_fleet, payment_events

from . import sessions, tariffs
from .models import BayCreate, ZoneCreate
from .places import Conflict, create_bay, create_zone
from .session_models import SessionFacts

log = logging.getLogger("civicsense.parking")

PROVIDER = "demo-pay"
TICK_S = 10.0
_RECENT = timedelta(minutes=10)  # stays that ended this recently still get their stop
_ACTOR = Actor("system", "demo")


def seed(conn: psycopg.Connection, settings: Settings, *, devices: int) -> None:
    """Zones and bays for the simulated parking sensors (idempotent)."""
    tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
    for device in demo_fleet(devices):
        if device.kind != "parking":
            continue
        zone = device.place.split("-")[0]
        with contextlib.suppress(Conflict):
            create_zone(conn, _ACTOR, tenant_id, ZoneCreate(code=zone, name=device.site))
        bay = BayCreate(code=device.place, zone=zone, lat=device.lat, lon=device.lon,
                        sensor=device.dev_eui)  # fmt: skip
        with contextlib.suppress(Conflict):
            create_bay(conn, _ACTOR, tenant_id, bay)


def _zone_facts(zone_hours: Any, zone_tariff: Any, grace_minutes: int) -> ZoneFacts:
    """The zone as its drivers see it: paid time counted in regulated time, its tariff's fees."""
    regulated = hours.RegulatedHours.model_validate(zone_hours)
    tariff = tariffs.Tariff.model_validate(zone_tariff)

    def paid_end(start: datetime, minutes: int) -> datetime:
        return hours.add_regulated(regulated, start, minutes * 60)

    def fee(start: datetime, end: datetime) -> Decimal:
        return tariffs.amount_due(tariff, hours.regulated_seconds(regulated, start, end) / 60)

    return ZoneFacts(grace_minutes, tariff.max_minutes, paid_end, fee)


_STAYS = """
SELECT b.code, z.code, o.arrived_at, o.left_at, z.hours, z.tariff, z.grace_minutes
FROM bay_occupancy o JOIN parking_bays b ON b.id = o.bay_id
JOIN parking_zones z ON z.id = b.zone_id
WHERE o.tenant_id = %s AND (o.left_at IS NULL OR o.left_at > %s)
"""


def pay_for_stays(conn: psycopg.Connection, tenant_id: int, now: datetime) -> int:
    """Bring the sessions of current and recent stays to what their drivers (the simulator's
    default shares) have done by `now`: started, extended, stopped; sessions touched."""
    touched = 0
    for bay, zone, arrived, left, zone_hours, zone_tariff, grace in conn.execute(
        _STAYS, (tenant_id, now - _RECENT)
    ).fetchall():
        stay = Stay(bay=bay, zone=zone, arrived_at=arrived, left_at=left)
        facts = _zone_facts(zone_hours, zone_tariff, grace)
        done = payment_events(stay, facts, now=now)
        if not done:
            continue
        latest = done[-1]  # every event carries the whole session
        outcome, _ = sessions.merge(
            conn, tenant_id=tenant_id, source="provider", provider=PROVIDER,
            facts=SessionFacts(**asdict(latest.session)), occurred_at=latest.at,
        )  # fmt: skip
        touched += outcome != "unchanged"
    return touched


def _drivers(settings: Settings, stop: threading.Event) -> None:
    while not stop.wait(TICK_S):
        try:
            with psycopg.connect(settings.database_url) as conn:
                tenant_id = tenants.get_or_create(conn, tenants.DEMO_TENANT)
                pay_for_stays(conn, tenant_id, datetime.now(UTC))
        except psycopg.Error as exc:
            log.warning("demo payments: %s", exc)


def services(
    settings: Settings, stack: contextlib.ExitStack, *, devices: int, rate: float
) -> list[str]:
    """Simulated drivers paying by phone; returns API paths worth trying."""
    stop = threading.Event()
    thread = threading.Thread(target=_drivers, args=(settings, stop), name="demo-payments",
                              daemon=True)  # fmt: skip
    thread.start()
    stack.callback(thread.join, 5)
    stack.callback(stop.set)
    return ["/parking/bays/status", "/parking/zones"]
