"""Water: the leak sensors on a map and in a table with their current state, the history of
leak events (alerts of the `leak` category: opened, cleared, repeated) and their incidents.

A sensor's current state is the last `leak` value of its latest hourly rollup within
`STATE_WITHIN` (1 water at the probe, 0 dry), its battery likewise; a sensor quiet for longer
shows "unknown". Alerts come from the alerts package's own listing (`alerts.rule_service`),
incidents from `alerts.incidents`, both read through the town's connection.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, dcc, html
from dash.dash_table.DataTable import DataTable

from alerts import incidents, rule_service

from .. import repository
from ..charts import (
    Dataset,
    card,
    chart,
    empty_figure,
    local_time,
    page_store,
    register_chart,
    styled,
    table,
)
from ..strings import Language, Strings

STATE_WITHIN = timedelta(days=7)
#: How far back the leak events chart and table go, and how many alerts per rule they read.
HISTORY_WITHIN = timedelta(days=365)
HISTORY_LIMIT = 1000
INCIDENT_LIMIT = 200
LEAK_CATEGORY = "leak"
STATE_COLOURS = {"leak": "#c8102e", "dry": "#009e73", "unknown": "#999999"}
#: The map's zoom on the town's sensors (a few streets wide).
MAP_ZOOM = 14


def leak_state(value: float | None) -> str:
    """What a sensor's last `leak` value says: "leak", "dry" or "unknown" (none)."""
    if value is None:
        return "unknown"
    return "leak" if value >= 1 else "dry"


def _sensors(conn: psycopg.Connection) -> list[repository.LeakSensor]:
    return repository.leak_sensors(conn, since=datetime.now(UTC) - STATE_WITHIN)


def _leak_alerts(conn: psycopg.Connection, device_id: int | None) -> list[dict[str, Any]]:
    """The town's opened alerts of the leak category (of one device, if given), newest first."""
    rules = [rule["id"] for rule in rule_service.rules(conn) if rule["category"] == LEAK_CATEGORY]
    found = [
        alert
        for rule_id in rules
        for alert in rule_service.alerts(
            conn, rule_id=rule_id, device_id=device_id, limit=HISTORY_LIMIT
        )
        if alert["opened_at"] is not None
        and alert["opened_at"] >= datetime.now(UTC) - HISTORY_WITHIN
    ]
    return sorted(found, key=lambda alert: (alert["opened_at"], alert["id"]), reverse=True)


def sensor_map(conn: psycopg.Connection) -> Dataset:
    """The placed leak sensors: where they are and their current state."""
    rows = [
        (s.name, s.site, s.lat, s.lon, leak_state(s.leak), s.leak, s.last_seen_at)
        for s in _sensors(conn)
        if s.lat is not None and s.lon is not None
    ]
    return Dataset(("device", "site", "lat", "lon", "state", "leak", "last_seen"), rows)


def draw_sensor_map(data: Dataset, strings: Strings) -> go.Figure:
    """A marker per sensor on OpenStreetMap, one trace per state."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure()
    for state, colour in STATE_COLOURS.items():
        rows = [row for row in data.rows if row[4] == state]
        if rows:
            figure.add_trace(
                go.Scattermap(
                    name=strings[f"water_state.{state}"],
                    lat=[row[2] for row in rows],
                    lon=[row[3] for row in rows],
                    text=[f"{row[0]} ({row[1] or ''})" for row in rows],
                    hoverinfo="text",
                    mode="markers",
                    marker={"size": 14, "color": colour},
                )
            )
    figure.update_layout(
        map={
            "style": "open-street-map",
            "center": {"lat": fmean(data.column("lat")), "lon": fmean(data.column("lon"))},
            "zoom": MAP_ZOOM,
        }
    )
    return styled(figure)


def _chosen_device(conn: psycopg.Connection, value: Any) -> tuple[bool, int | None]:
    """Whether the browser's choice names nothing or one of this town's leak sensors (a
    crafted id does not), and that sensor's id (None: every sensor)."""
    if value is None or value == "":
        return True, None
    sensor = next((s for s in _sensors(conn) if str(s.id) == str(value)), None)
    return sensor is not None, sensor.id if sensor else None


def leak_events(conn: psycopg.Connection, device_value: Any) -> Dataset:
    """Per local day, the leak alerts opened, those later cleared, and their repeats."""
    columns = ("day", "opened", "cleared", "repeats")
    known, device_id = _chosen_device(conn, device_value)
    if not known:
        return Dataset(columns, [])
    zone = ZoneInfo(repository.town(conn).timezone)
    opened: Counter[str] = Counter()
    cleared: Counter[str] = Counter()
    repeats: Counter[str] = Counter()
    for alert in _leak_alerts(conn, device_id):
        day = alert["opened_at"].astimezone(zone).date().isoformat()
        opened[day] += 1
        repeats[day] += alert["repeats"] or 0
        if alert["cleared_at"] is not None:
            cleared[alert["cleared_at"].astimezone(zone).date().isoformat()] += 1
    days = sorted(set(opened) | set(cleared))
    return Dataset(columns, [(day, opened[day], cleared[day], repeats[day]) for day in days])


def draw_leak_events(data: Dataset, strings: Strings) -> go.Figure:
    """Bars per day: leaks opened, cleared, and repeats of open leaks."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure()
    for column, colour in (("opened", "#c8102e"), ("cleared", "#009e73"), ("repeats", "#e69f00")):
        figure.add_bar(
            name=strings[f"water_{column}"],
            x=data.column("day"),
            y=data.column(column),
            marker_color=colour,
        )
    figure.update_layout(
        barmode="group", xaxis_title=strings["water_day"], yaxis_title=strings["water_events"]
    )
    return styled(figure)


def incident_path(incident_id: int | None) -> str:
    """The incident's API path as a link the table shows, empty without an incident."""
    if incident_id is None:
        return ""
    path = f"/api/v1/incidents/{incident_id}"
    return f"[{path}]({path})"


def _linked(data_table: DataTable, *keys: str) -> DataTable:
    """The table with the columns `keys` shown as Markdown (their links clickable)."""
    shown: Any = data_table  # Dash generates its props without attribute hints
    shown.columns = [
        {**column, "presentation": "markdown"} if column["id"] in keys else column
        for column in shown.columns
    ]
    return data_table


def _sensor_table(
    sensors: list[repository.LeakSensor], strings: Strings, zone: ZoneInfo
) -> DataTable:
    rows = [
        {
            "name": s.name,
            "site": s.site or "",
            "state": strings[f"water_state.{leak_state(s.leak)}"],
            "leak_at": local_time(s.leak_at, zone),
            "last_seen": local_time(s.last_seen_at, zone),
            "battery": None if s.battery is None else round(s.battery),
        }
        for s in sensors
    ]
    columns = [
        ("name", strings["name"]),
        ("site", strings["site"]),
        ("state", strings["water_state"]),
        ("leak_at", strings["water_state_at"]),
        ("last_seen", strings["last_seen"]),
        ("battery", strings["battery"]),
    ]
    return table("water-sensor-table", columns, rows, strings)


def _history_table(conn: psycopg.Connection, strings: Strings, zone: ZoneInfo) -> DataTable:
    rows = [
        {
            "device": alert["device"] or "",
            "state": alert["state"],
            "opened": local_time(alert["opened_at"], zone),
            "cleared": local_time(alert["cleared_at"], zone),
            "repeats": alert["repeats"],
            "incident": incident_path(alert["incident_id"]),
        }
        for alert in _leak_alerts(conn, None)
    ]
    columns = [
        ("device", strings["name"]),
        ("state", strings["status"]),
        ("opened", strings["opened"]),
        ("cleared", strings["water_cleared_at"]),
        ("repeats", strings["water_repeats"]),
        ("incident", strings["incident"]),
    ]
    return _linked(table("water-history-table", columns, rows, strings), "incident")


def _incident_table(conn: psycopg.Connection, strings: Strings, zone: ZoneInfo) -> DataTable:
    found = incidents.get_all(
        conn, repository.tenant_id(conn), category=LEAK_CATEGORY, limit=INCIDENT_LIMIT
    )
    rows = [
        {
            "id": incident["id"],
            "title": incident["title"],
            "state": incident["state"],
            "priority": incident["priority"],
            "opened": local_time(incident["opened_at"], zone),
            "link": incident_path(incident["id"]),
        }
        for incident in found
    ]
    columns = [
        ("id", "#"),
        ("title", strings["title_col"]),
        ("state", strings["status"]),
        ("priority", strings["priority"]),
        ("opened", strings["opened"]),
        ("link", strings["water_link"]),
    ]
    return _linked(table("water-incident-table", columns, rows, strings), "link")


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The map and events charts, the device picker, and the tables filled now."""
    zone = ZoneInfo(repository.town(conn).timezone)
    sensors = _sensors(conn)
    picker = dcc.Dropdown(
        id="water-device",
        options=[{"label": s.name, "value": s.id} for s in sensors],
        value=None,
        placeholder=strings["water_all_sensors"],
    )
    return [
        page_store(lang),
        chart("water-map", strings["water_map"], strings),
        card(strings["water_sensors"], _sensor_table(sensors, strings, zone)),
        html.Section(
            [html.Label(strings["water_sensor_pick"], htmlFor="water-device"), picker],
            className="card wide",
        ),
        chart("water-events", strings["water_events_chart"], strings),
        card(strings["water_history"], _history_table(conn, strings, zone), wide=True),
        card(strings["water_incidents"], _incident_table(conn, strings, zone), wide=True),
    ]


def register(app: dash.Dash) -> None:
    """The page's chart callbacks."""
    register_chart(app, "water-map", [], sensor_map, draw_sensor_map)
    register_chart(
        app, "water-events", [Input("water-device", "value")], leak_events, draw_leak_events
    )
