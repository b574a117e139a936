"""parking's part of the demo: a tariff zone per street of the simulated town, a bay per
simulated parking sensor, and drivers who pay by phone (some late, some not at all,
some staying beyond what they paid)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from datetime import UTC, datetime, timedelta

import psycopg

from core import hours, tenants
from core.audit import Actor
from core.settings import Settings
from ingest.simulator import demo_fleet

from . import sessions, tariffs
from .models import BayCreate, ZoneCreate
from .places import Conflict, create_bay, create_zone
from .session_models import SessionFacts

log = logging.getLogger("civicsense.parking")

PAYING_SHARE = 0.7  # drivers who pay at all
BY_BAY_SHARE = 0.6  # of those, who name their bay (the others pay for the zone)
PROVIDER = "demo-pay"
TICK_S = 10.0
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


def _draw(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) for this stay."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64


def _plate(bay: str, arrived: datetime) -> str:
    """A stable made-up French plate (AB-123-CD) for this stay."""
    letters = "ABCDEFGHJKLMNPRSTVWXYZ"
    pick = [letters[int(_draw(bay, arrived, i) * len(letters))] for i in range(4)]
    number = 100 + int(_draw(bay, arrived, "number") * 900)
    return f"{pick[0]}{pick[1]}-{number}-{pick[2]}{pick[3]}"


_STAYS = """
SELECT o.bay_id, b.code, z.code, o.arrived_at, o.left_at, z.hours, z.tariff, z.grace_minutes
FROM bay_occupancy o JOIN parking_bays b ON b.id = o.bay_id
JOIN parking_zones z ON z.id = b.zone_id
WHERE o.tenant_id = %s AND (o.left_at IS NULL OR o.left_at > %s)
"""


def pay_for_stays(conn: psycopg.Connection, tenant_id: int, now: datetime) -> int:
    """Start, then stop, the sessions the simulated drivers pay; sessions touched."""
    touched = 0
    for _, bay, zone, arrived, left, zone_hours, zone_tariff, grace in conn.execute(
        _STAYS, (tenant_id, now - timedelta(minutes=TICK_S))
    ).fetchall():
        if _draw(bay, arrived, "pays") >= PAYING_SHARE:
            continue
        delay = timedelta(minutes=1 + _draw(bay, arrived, "delay") * (grace + 5))  # some late
        started = arrived + delay
        if started > now or (left is not None and started >= left):
            continue
        regulated = hours.RegulatedHours.model_validate(zone_hours)
        tariff = tariffs.Tariff.model_validate(zone_tariff)
        minutes = 15 * (1 + int(_draw(bay, arrived, "paid") * tariff.max_minutes / 15))
        facts = SessionFacts(
            id=f"{bay}-{int(arrived.timestamp())}",
            plate=_plate(bay, arrived),
            zone=zone, bay=bay if _draw(bay, arrived, "bay") < BY_BAY_SHARE else None,
            started_at=started,
            ends_at=hours.add_regulated(regulated, started, min(minutes, tariff.max_minutes) * 60),
        )  # fmt: skip
        if left is not None:
            paid = hours.regulated_seconds(regulated, started, left) / 60
            facts = facts.model_copy(
                update={"stopped_at": left, "amount": tariffs.amount_due(tariff, paid)}
            )
        outcome, _ = sessions.merge(conn, tenant_id=tenant_id, source="provider",
                                    provider=PROVIDER, facts=facts, occurred_at=now)  # fmt: skip
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
