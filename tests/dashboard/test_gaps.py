"""The overview's parking now, the fleet's radio link and the air page's TVOC and PM panels:
each figure and its CSV hold the numbers the test works out from what it seeded."""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from statistics import fmean, median
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from core import rollups
from core.app import create_app
from core.settings import Settings
from tests.kit.dashboard import (
    AIR_MODEL,
    PARIS,
    SeededTown,
    _device,
    callback,
    login,
    numbers,
    output_of,
)
from tests.kit.identity import add_user
from tests.kit.parking import ALWAYS, PROVIDER, parking_town

LANG = ("lang", "data", "fr")


def _chart(
    client: httpx.Client, csrf: str, chart_id: str, inputs: list[tuple[str, str, Any]]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """A chart's figure and its CSV rows, as the browser gets them."""
    figure = output_of(
        callback(client, f"{chart_id}-graph.figure", [*inputs, LANG], csrf=csrf),
        f"{chart_id}-graph.figure",
    )
    download = output_of(
        callback(
            client,
            f"{chart_id}-download.data",
            [(f"{chart_id}-csv", "n_clicks", 1)],
            state=inputs,
            csrf=csrf,
        ),
        f"{chart_id}-download.data",
    )
    assert download["filename"] == f"{chart_id}.csv"
    return figure, list(csv.DictReader(io.StringIO(download["content"])))


def _opened(settings: Settings, email: str) -> Callable[[str, list[Any]], tuple[dict, list]]:
    """A function reading one chart as `email` (one app and session per call)."""

    def read(chart_id: str, inputs: list[Any]) -> tuple[dict, list]:
        with TestClient(create_app(settings)) as client:
            return _chart(client, login(client, email), chart_id, inputs)

    return read


def _cell(value: str) -> float | None:
    return float(value) if value else None


# --- parking occupancy and compliance now ----------------------------------------------


def test_overview_parking_now_counts_the_bays_statuses(
    conn: psycopg.Connection, settings: Settings
) -> None:
    town = parking_town(conn, settings, slug="annecy", bays=5, zone={"hours": ALWAYS})
    manager = "manager@annecy.fr"
    add_user(conn, tenant_id=town.tenant_id, email=manager, roles=["facility_manager"])
    conn.execute("UPDATE devices SET status = 'active', last_seen_at = now()"
                 " WHERE tenant_id = %s", (town.tenant_id,))  # fmt: skip
    zone_id, bays = conn.execute(
        "SELECT z.id, jsonb_object_agg(b.code, b.id) FROM parking_zones z"
        " JOIN parking_bays b ON b.zone_id = z.id WHERE z.tenant_id = %s GROUP BY z.id",
        (town.tenant_id,),
    ).fetchone() or (None, {})
    now = datetime.now(UTC)
    # B1 paid (its session runs), B2 unpaid (an hour, no session), B3 in grace (3 minutes),
    # B4 overstay (its session ended 30 minutes ago), B5 free
    stays = {"B1": 30, "B2": 60, "B3": 3, "B4": 90}
    for bay, minutes in stays.items():
        conn.execute(
            "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at) VALUES (%s, %s, %s)",
            (bays[bay], town.tenant_id, now - timedelta(minutes=minutes)),
        )
    for number, (bay, started, ends) in enumerate((("B1", 29, 60), ("B4", 89, -30))):
        conn.execute(
            "INSERT INTO parking_sessions (tenant_id, source, provider, external_id, plate,"
            " plate_key, zone_id, bay_id, started_at, ends_at, amount, service_amount,"
            " last_event_at) VALUES (%s, 'provider', %s, %s, %s, %s, %s, %s, %s, %s,"
            " 1.00, 0, %s)",
            (town.tenant_id, PROVIDER, f"s-{number}", f"AB-12{number}-CD", f"AB12{number}CD",
             zone_id, bays[bay], now - timedelta(minutes=started),
             now + timedelta(minutes=ends), now),
        )  # fmt: skip
    conn.commit()

    figure, rows = _opened(settings, manager)("overview-parking", [])

    occupied = 4  # paid, unpaid, grace, overstay
    compliance = round(100 * 1 / (1 + 1 + 1), 1)  # paid / (paid + unpaid + overstay)
    assert rows == [
        {
            "zone": "Z1", "bays": "5", "occupied": str(occupied), "paid": "1", "unpaid": "1",
            "overstay": "1", "occupancy_pct": str(round(100 * occupied / 5, 1)),
            "compliance_pct": str(compliance),
        }
    ]  # fmt: skip
    drawn = {trace["name"]: numbers(trace["y"]) for trace in figure["data"]}
    assert drawn == {"Taux d'occupation (%)": [80.0], "Taux de paiement (%)": [compliance]}
    assert [trace["x"] for trace in figure["data"]] == [["Z1"], ["Z1"]]


# --- radio link per device and per gateway ---------------------------------------------


def test_fleet_radio_per_device_and_gateway(
    conn: psycopg.Connection, settings: Settings, annecy: SeededTown
) -> None:
    now = datetime.now(UTC)
    first, second = annecy.devices["Salle 1"], annecy.devices["Salle 2"]
    heard = [  # (device, gateway, rssi, snr, age)
        (first, "gw-nord", -80, 9.5, timedelta(hours=1)),
        (first, "gw-nord", -90, 7.0, timedelta(days=2)),
        (first, "gw-sud", -110, -3.5, timedelta(days=3)),
        (second, "gw-sud", -100, 1.0, timedelta(hours=5)),
        (second, "gw-sud", -104, 2.5, timedelta(days=6)),
        (second, "gw-nord", -60, 12.0, timedelta(days=9)),  # too old: left out
    ]
    eui = dict(conn.execute("SELECT id, dev_eui FROM devices WHERE tenant_id = %s",
                            (annecy.tenant_id,)).fetchall())  # fmt: skip
    for device, gateway, rssi, snr, age in heard:
        conn.execute(
            "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id, gateway_id,"
            " rssi, snr) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (now - age, annecy.tenant_id, device, eui[device], uuid.uuid4(), gateway, rssi, snr),
        )
    conn.commit()
    recent = [row for row in heard if row[4] < timedelta(days=7)]
    names = {first: "Salle 1", second: "Salle 2"}

    def grouped(key: int) -> dict[Any, list[tuple[Any, ...]]]:
        groups: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for row in recent:
            groups[row[key]].append(row)
        return dict(sorted(groups.items(), key=lambda item: str(names.get(item[0], item[0]))))

    read = _opened(settings, annecy.manager)

    figure, rows = read("fleet-radio-devices", [])
    expected = [
        (names[d], len(r), median(x[2] for x in r), median(x[3] for x in r))
        for d, r in grouped(0).items()
    ]
    assert [
        (row["device"], int(row["uplinks"]), float(row["rssi_median_dbm"]),
         float(row["snr_median_db"])) for row in rows
    ] == [(n, c, pytest.approx(r), pytest.approx(s)) for n, c, r, s in expected]  # fmt: skip
    bars, markers = figure["data"]
    assert bars["x"] == markers["x"] == [name for name, *_ in expected]
    assert numbers(bars["y"]) == [pytest.approx(r) for _, _, r, _ in expected]
    assert numbers(markers["y"]) == [pytest.approx(s) for *_, s in expected]

    figure, rows = read("fleet-radio-gateways", [])
    expected_gw = [
        (g, len(r), len({x[0] for x in r}), fmean(x[2] for x in r), fmean(x[3] for x in r))
        for g, r in grouped(1).items()
    ]
    assert expected_gw[0][:3] == ("gw-nord", 2, 1) and expected_gw[1][:3] == ("gw-sud", 3, 2)
    read_back = [
        (row["gateway"], int(row["uplinks"]), int(row["devices"]),
         float(row["rssi_mean_dbm"]), float(row["snr_mean_db"])) for row in rows
    ]  # fmt: skip
    assert read_back == [
        (g, u, d, pytest.approx(r), pytest.approx(s)) for g, u, d, r, s in expected_gw
    ]
    bars, markers = figure["data"]
    assert bars["x"] == ["gw-nord", "gw-sud"]
    assert numbers(bars["y"]) == [pytest.approx(row[3]) for row in expected_gw]
    assert numbers(markers["y"]) == [pytest.approx(row[4]) for row in expected_gw]


# --- TVOC and particles on the air page ------------------------------------------------


def test_air_series_adds_tvoc_and_pm_panels_when_the_room_reports_them(
    conn: psycopg.Connection, settings: Settings, annecy: SeededTown
) -> None:
    room = _device(conn, annecy.tenant_id, 40, AIR_MODEL, "Salle 3", annecy.sites[0])
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    seeded: list[tuple[datetime, str, float]] = []
    for step in range(12):  # two hours of 10-minute values
        at = hour + timedelta(minutes=10 * step)
        seeded += [
            (at, "co2", 600.0 + step), (at, "temperature", 20.0), (at, "humidity", 45.0),
            (at, "tvoc", 100.0 + 7 * step), (at, "pm2_5", 5.0 + step),
            (at, "pm10", 12.0 + 2 * step),
        ]  # fmt: skip
    for at, quantity, value in seeded:
        conn.execute(
            "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            (at, annecy.tenant_id, room, quantity, value),
        )
    rollups.refresh(conn, start=hour, end=hour + timedelta(hours=2))
    conn.commit()
    means: dict[str, list[float]] = {}
    for quantity in ("tvoc", "pm2_5", "pm10"):
        per_hour: dict[datetime, list[float]] = defaultdict(list)
        for at, q, value in seeded:
            if q == quantity:
                per_hour[at.replace(minute=0)].append(value)
        means[quantity] = [fmean(values) for _, values in sorted(per_hour.items())]
    today = datetime.now(PARIS).date()
    inputs = [
        ("air-room", "value", room),
        ("air-dates", "start_date", (today - timedelta(days=1)).isoformat()),
        ("air-dates", "end_date", today.isoformat()),
    ]

    figure, rows = _opened(settings, annecy.manager)("air-series", inputs)

    columns = ("co2_ppm", "temperature_c", "humidity_pct", "tvoc", "pm2_5_ugm3", "pm10_ugm3")
    assert tuple(rows[0]) == ("hour", *columns)
    assert [trace["name"] for trace in figure["data"]][3:] == [
        "COV totaux (unité du fabricant)", "PM2,5 (µg/m³)", "PM10 (µg/m³)",
    ]  # fmt: skip
    for trace, column in zip(figure["data"], columns, strict=True):
        assert numbers(trace["y"]) == [_cell(row[column]) for row in rows], column
    for quantity, column in (("tvoc", "tvoc"), ("pm2_5", "pm2_5_ugm3"), ("pm10", "pm10_ugm3")):
        assert [float(row[column]) for row in rows] == pytest.approx(means[quantity]), quantity
    guideline = {shape["y0"] for shape in figure["layout"]["shapes"]}
    assert {15.0, 45.0} <= guideline
