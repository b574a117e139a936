"""A town for the dashboard tests: CO2 sensors in two buildings with a week of 10-minute
readings (rolled up), a leak sensor with an open leak alert, incidents, a facility manager;
and a way to call a Dash callback over HTTP as the browser does."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import httpx
import psycopg
from psycopg.types.json import Jsonb

from alerts.workflow import Transition
from core import rollups, tenants
from core.audit import cli_actor
from parking import places
from parking.models import BayCreate, ZoneCreate
from tests.kit.identity import PASSWORD, add_user
from tests.kit.incidents import opened
from tests.kit.parking import ALWAYS, PROVIDER

PARIS = ZoneInfo("Europe/Paris")
DAYS = 8
STEP = timedelta(minutes=10)
#: Class hours of the seeded pattern: 1,200 ppm in the morning, 1,800 ppm after noon.
MORNING, NOON, EVENING = time(8, 30), time(12, 0), time(16, 30)
AIR_MODEL = "milesight-am307"
LEAK_MODEL = "milesight-em300-sld"


@dataclass
class SeededTown:
    """What `seed_town` made, by name."""

    slug: str
    tenant_id: int
    manager: str
    sites: list[str]
    devices: dict[str, int] = field(default_factory=dict)  # name -> id
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    end: datetime = field(default_factory=lambda: datetime.now(UTC))


def stuffy_co2(moment: datetime) -> float:
    """The stuffy room's CO2 at a local instant: 500 outside class hours."""
    local = moment.astimezone(PARIS).time()
    if MORNING <= local < NOON:
        return 1200.0
    if NOON <= local < EVENING:
        return 1800.0
    return 500.0


def _device(
    conn: psycopg.Connection,
    tenant_id: int,
    number: int,
    model: str,
    name: str,
    site: str,
    status: str = "active",
) -> int:
    row = conn.execute(
        "INSERT INTO devices (tenant_id, dev_eui, model, name, site, status, last_seen_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, now() - interval '5 minutes') RETURNING id",
        (tenant_id, f"{tenant_id:04x}{number:012x}", model, name, site, status),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _grid(start: datetime, end: datetime) -> Iterator[datetime]:
    moment = start
    while moment < end:
        yield moment
        moment += STEP


def seed_town(conn: psycopg.Connection, slug: str, sites: tuple[str, str]) -> SeededTown:
    """A town with two buildings: the first with a stuffy room ("Salle 1", the `stuffy_co2`
    pattern, 1,450 ppm a minute ago) and a fresh one ("Salle 2", 700 ppm), the second with one
    room ("Bureau 1", 650 ppm); a leak sensor with an open leak alert in the first building; a
    silent and a pending device; a P0 incident overdue and a P1 on time (SLA counted 24/7).
    Through the owner's connection."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug=slug, name=slug.title()))
    manager = f"manager@{slug}.fr"
    add_user(conn, tenant_id=tenant_id, email=manager, roles=["facility_manager"])
    town = SeededTown(slug, tenant_id, manager, list(sites))
    school, office = sites
    for number, (name, site, model, status) in enumerate(
        [
            ("Salle 1", school, AIR_MODEL, "active"),
            ("Salle 2", school, AIR_MODEL, "active"),
            ("Bureau 1", office, AIR_MODEL, "active"),
            ("Fuite chaufferie", school, LEAK_MODEL, "active"),
            ("Capteur muet", office, AIR_MODEL, "silent"),
            ("Capteur en attente", office, AIR_MODEL, "registered"),
        ],
        start=1,
    ):
        town.devices[name] = _device(conn, tenant_id, number, model, name, site, status)
    now = datetime.now(UTC)
    town.end = now - (now - datetime(2000, 1, 1, tzinfo=UTC)) % STEP
    town.start = town.end - timedelta(days=DAYS)
    rows: list[tuple[datetime, int, int, str, float]] = []
    air = {"Salle 1": stuffy_co2, "Salle 2": lambda _m: 700.0, "Bureau 1": lambda _m: 650.0}
    for name, co2 in air.items():
        device = town.devices[name]
        for moment in _grid(town.start, town.end):
            local_hour = moment.astimezone(PARIS).hour
            rows += [
                (moment, tenant_id, device, "co2", co2(moment)),
                (moment, tenant_id, device, "temperature", 19.0 + local_hour / 10),
                (moment, tenant_id, device, "humidity", 40.0 + local_hour),
            ]
            if moment.minute == 0:
                rows.append((moment, tenant_id, device, "battery", 90.0 - device % 7))
    rows.append((now - timedelta(minutes=1), tenant_id, town.devices["Salle 1"], "co2", 1450.0))
    low = town.devices["Capteur muet"]
    rows.append((now - timedelta(days=2), tenant_id, low, "battery", 12.0))
    with (
        conn.cursor() as cur,
        cur.copy("COPY readings (time, tenant_id, device_id, quantity, value) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    rollups.refresh(conn, start=town.start - timedelta(days=3), end=now + timedelta(hours=1))
    _leak_alert(conn, tenant_id, town.devices["Fuite chaufferie"], now)
    conn.execute(  # every hour counts: the overdue incident is overdue on a Monday morning too
        "INSERT INTO alert_settings (tenant_id, sla_policy) VALUES (%s, %s)",
        (tenant_id, Jsonb({"calendar": "24/7"})),
    )
    opened(
        conn,
        tenant_id,
        now - timedelta(days=2),
        incident_class="bloquant",
        title="Chaudière en panne",
        site=school,
    )
    opened(
        conn,
        tenant_id,
        now - timedelta(minutes=10),
        incident_class="majeur",
        title="Capteur arraché",
        site=office,
    )
    return town


def _leak_alert(conn: psycopg.Connection, tenant_id: int, device_id: int, now: datetime) -> None:
    rule = conn.execute(
        "INSERT INTO alert_rules (tenant_id, name, category, condition)"
        " VALUES (%s, 'Fuite d''eau détectée', 'leak', %s) RETURNING id",
        (tenant_id, Jsonb({"kind": "event", "quantity": "leak", "equals": 1})),
    ).fetchone()
    assert rule is not None
    conn.execute(
        "INSERT INTO alerts (tenant_id, rule_id, subject, device_id, state, started_at,"
        " opened_at, last_seen_at, value) VALUES (%s, %s, %s, %s, 'open', %s, %s, %s, 1)",
        (tenant_id, rule[0], f"device:{device_id}", device_id, now, now, now),
    )


def school_day(before: date) -> date:
    """The last Monday, Tuesday, Thursday or Friday before `before` that is no French public
    holiday: a full day of class hours."""
    public = holidays.country_holidays("FR")
    day = before - timedelta(days=1)
    while day.weekday() not in (0, 1, 3, 4) or day in public:
        day -= timedelta(days=1)
    return day


def expected_icone(day: date) -> int:
    """The ICONE of `stuffy_co2` over one full school day, by the CSTB formula, by hand: the
    occupied 10-minute steps 08:30-16:30, their shares in the middle and high bands."""
    steps = [
        datetime.combine(day, MORNING, tzinfo=PARIS) + STEP * n
        for n in range(int((EVENING.hour * 60 + EVENING.minute - 8 * 60 - 30) / 10))
    ]
    values = [stuffy_co2(step) for step in steps]
    f1 = sum(1000 < v <= 1700 for v in values) / len(values)
    f2 = sum(v > 1700 for v in values) / len(values)
    return math.floor(2.5 / math.log10(2) * math.log10(1 + f1 + 3 * f2) + 0.5)


def login(client: httpx.Client, email: str, otp: str | None = None) -> str:
    """Log a browser session in on `client` (cookies kept); its CSRF token."""
    form = {"username": email, "password": PASSWORD, **({"otp": otp} if otp else {})}
    started = client.post("/api/v1/auth/session", data=form)
    assert started.status_code == 200, started.text
    return str(started.json()["csrf_token"])


def callback(
    client: httpx.Client,
    outputs: str | tuple[str, ...],
    inputs: list[tuple[str, str, Any]],
    *,
    state: list[tuple[str, str, Any]] | None = None,
    csrf: str | None,
) -> httpx.Response:
    """POST a Dash callback as the renderer does: `outputs` "id.property" (one, or a tuple
    for a multi-output callback), inputs and state as (id, property, value)."""

    def listed(values: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
        return [{"id": i, "property": p, "value": v} for i, p, v in values]

    named = [
        output.rsplit(".", 1) for output in ((outputs,) if isinstance(outputs, str) else outputs)
    ]
    body = {
        "output": outputs if isinstance(outputs, str) else f"..{'...'.join(outputs)}..",
        "outputs": (
            {"id": named[0][0], "property": named[0][1]}
            if isinstance(outputs, str)
            else [{"id": i, "property": p} for i, p in named]
        ),
        "inputs": listed(inputs),
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs[:1]],
        "state": listed(state or []),
    }
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    return client.post("/dashboard/_dash-update-component", json=body, headers=headers)


def output_of(response: httpx.Response, output: str) -> Any:
    """The value a callback response gives `output` ("id.property")."""
    assert response.status_code == 200, response.text
    component, prop = output.rsplit(".", 1)
    return response.json()["response"][component][prop]


def numbers(values: Any) -> list[Any]:
    """A figure array as a list: plotly may send numbers as base64 typed arrays."""
    if isinstance(values, dict) and "bdata" in values:
        raw = base64.b64decode(values["bdata"])
        code = {
            "f8": "d",
            "f4": "f",
            "i1": "b",
            "u1": "B",
            "i2": "h",
            "u2": "H",
            "i4": "i",
            "u4": "I",
            "i8": "q",
            "u8": "Q",
        }[values["dtype"]]
        return list(struct.unpack(f"<{len(raw) // struct.calcsize(code)}{code}", raw))
    return list(values)


# --- Water and catalogue pages ----------------------------------------------------------

#: Where each town's leak sensors stand (latitude, longitude of the first; the others east).
TOWN_CENTRES = {"annecy": (45.8992, 6.1294), "lyon": (45.7640, 4.8357)}
LEAK_SENSORS = ("Fuite chaufferie", "Fuite vestiaires", "Fuite cantine")


@dataclass
class WaterSeed:
    """What `seed_water` made: sensor positions, and the instants of its leak readings."""

    positions: dict[str, tuple[float, float]]  # sensor name -> (lat, lon)
    leaks: list[tuple[str, datetime, float]]  # (sensor, time, leak value), oldest first
    batteries: dict[str, float]


def seed_water(conn: psycopg.Connection, town: SeededTown) -> WaterSeed:
    """Two more leak sensors in the town's school, all three placed on the map; the town's
    leak rule opening P0 incidents (the shipped template); readings run through the alert
    engine: the changing rooms leaked 3 days ago for two hours (an alert opened and cleared,
    one incident), leak again since yesterday (a second alert, one repeat; the incident still
    open gets a comment), the canteen is dry. Rolled up. Through the owner's connection."""
    from alerts import rule_service
    from alerts.alerting import evaluate_readings
    from alerts.rulebook import RuleBook
    from alerts.rules import TEMPLATES
    from ingest.events import StoredReading
    from tests.kit.identity import SYSTEM

    school = town.sites[0]
    for number, name in enumerate(LEAK_SENSORS[1:], start=7):
        town.devices[name] = _device(conn, town.tenant_id, number, LEAK_MODEL, name, school)
    lat, lon = TOWN_CENTRES[town.slug]
    positions = {name: (lat, lon + 0.002 * n) for n, name in enumerate(LEAK_SENSORS)}
    for name, (y, x) in positions.items():
        conn.execute("UPDATE devices SET lat = %s, lon = %s WHERE id = %s",
                     (y, x, town.devices[name]))  # fmt: skip
    template = TEMPLATES["leak"]
    row = conn.execute(
        "SELECT id FROM alert_rules WHERE tenant_id = %s AND category = 'leak'",
        (town.tenant_id,),
    ).fetchone()
    assert row is not None
    rule_id = row[0]
    rule_service.update_rule(conn, SYSTEM, rule_id, {
        "incident_class": template.incident_class, "priority": template.priority,
        "open_incident": True,
    })  # fmt: skip
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(days=3)
    again = now - timedelta(days=1)
    leaks = [
        ("Fuite vestiaires", first, 1.0),
        ("Fuite vestiaires", first + timedelta(hours=2), 0.0),
        ("Fuite vestiaires", again, 1.0),
        ("Fuite vestiaires", again + timedelta(minutes=10), 1.0),
        ("Fuite cantine", now - timedelta(hours=2), 0.0),
    ]
    batteries = {"Fuite vestiaires": 77.0, "Fuite cantine": 64.0}
    eui = dict(conn.execute("SELECT id, dev_eui FROM devices WHERE tenant_id = %s",
                            (town.tenant_id,)).fetchall())  # fmt: skip
    readings = [
        StoredReading(at, town.tenant_id, town.devices[name], eui[town.devices[name]],
                      LEAK_MODEL, "leak", value)
        for name, at, value in leaks
    ] + [
        StoredReading(now - timedelta(hours=1), town.tenant_id, town.devices[name],
                      eui[town.devices[name]], LEAK_MODEL, "battery", level)
        for name, level in batteries.items()
    ]  # fmt: skip
    with conn.transaction():
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY readings (time, tenant_id, device_id, quantity, value) FROM STDIN"
            ) as copy,
        ):
            for r in readings:
                copy.write_row((r.time, r.tenant_id, r.device_id, r.quantity, r.value))
        for reading in readings:  # one at a time, as ingest's batches arrive
            evaluate_readings(conn, RuleBook(), [reading])
    rollups.refresh(conn, start=first - timedelta(hours=1), end=now + timedelta(hours=1))
    return WaterSeed(positions, leaks, batteries)


def seed_orders(conn: psycopg.Connection, town: SeededTown, siret: str) -> list[int]:
    """Two orders of the town (the catalogue kit's default lines), the first backdated 45
    days so the business volume spans two months at least; their ids, oldest first."""
    from tests.kit.catalog import order_of

    made = [
        order_of(conn, town.tenant_id, siret=siret, po_number=f"BC-{town.slug}-{n}") for n in (1, 2)
    ]
    conn.execute("UPDATE catalog_orders SET ordered_on = ordered_on - 45 WHERE id = %s",
                 (made[0],))  # fmt: skip
    return made


# --- parking and incidents pages -----------------------------------------------------


@dataclass(frozen=True)
class SeededParking:
    """What `seed_parking` made: the day of the stays, zone codes, the resolved incident."""

    day: date
    zones: tuple[str, str, str]
    resolved_incident: int


def seed_parking(
    conn: psycopg.Connection, town: SeededTown, zones: tuple[str, str, str], category: str
) -> SeededParking:
    """Parking and an incident history for `town` (owner's connection).

    Zone `zones[0]` (regulated around the clock, 10 grace minutes) with bays B1, B2: on the
    town's yesterday B1 is taken 10:00-12:00 and paid 10:00-11:00 through the operator
    (2.00 € + 0.20 € of service), B2 is taken 14:00-15:00 unpaid; a pay station took 1.50 €
    the day before, 08:00-08:30. `zones[1]` opened 12 days ago and `zones[2]` 5 days ago never
    had a payment. An incident of `category` opened three days ago and resolved 5 hours later.
    """
    actor = cli_actor()
    ids = []
    for number, code in enumerate(zones):
        body = ZoneCreate(code=code, name=f"Zone {code}", hours=ALWAYS, grace_minutes=10)
        ids.append(int(places.create_zone(conn, actor, town.tenant_id, body)["id"]))
        for bay in ("B1", "B2") if number == 0 else ():
            places.create_bay(
                conn, actor, town.tenant_id, BayCreate(code=bay, zone=code, lat=45.9, lon=6.12)
            )
    for zone_id, age in ((ids[1], 12), (ids[2], 5)):
        conn.execute(
            "UPDATE parking_zones SET created_at = now() - make_interval(days => %s) WHERE id = %s",
            (age, zone_id),
        )
    bays = dict(
        conn.execute("SELECT code, id FROM parking_bays WHERE zone_id = %s", (ids[0],)).fetchall()
    )
    day = datetime.now(PARIS).date() - timedelta(days=1)

    def at(hour: int, minute: int = 0, days_before: int = 0) -> datetime:
        return datetime.combine(day - timedelta(days=days_before), time(hour, minute), PARIS)

    for bay, arrived, left in (("B1", at(10), at(12)), ("B2", at(14), at(15))):
        conn.execute(
            "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at, left_at)"
            " VALUES (%s, %s, %s, %s)",
            (bays[bay], town.tenant_id, arrived, left),
        )
    sessions = [
        ("provider", PROVIDER, bays["B1"], at(10), at(11), "2.00", "0.20"),
        ("pay_station", "PS-12", None, at(8, days_before=1), at(8, 30, 1), "1.50", "0"),
    ]
    for number, (source, provider, bay_id, start, stop, amount, service) in enumerate(sessions):
        conn.execute(
            "INSERT INTO parking_sessions (tenant_id, source, provider, external_id, plate,"
            " plate_key, zone_id, bay_id, started_at, ends_at, stopped_at, amount,"
            " service_amount, last_event_at)"
            " VALUES (%s, %s, %s, %s, 'AB-123-CD', 'AB123CD', %s, %s, %s, %s, %s, %s, %s, %s)",
            (town.tenant_id, source, provider, f"s-{number}", ids[0], bay_id, start, stop,
             stop, amount, service, stop),
        )  # fmt: skip
    opened_at = datetime.now(UTC) - timedelta(days=3)
    resolved = opened(
        conn,
        town.tenant_id,
        opened_at,
        incident_class="mineur",
        category=category,
        title="Lampadaire éteint",
        steps=(
            (Transition.ACKNOWLEDGE, opened_at + timedelta(hours=1)),
            (Transition.START, opened_at + timedelta(hours=2)),
            (Transition.RESOLVE, opened_at + timedelta(hours=5)),
        ),
    )
    return SeededParking(day, zones, resolved)
