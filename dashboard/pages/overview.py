"""Overview: the fleet's state, open incidents and their service levels, parking occupancy
and compliance, stuffy rooms and leaks, as they are now."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import html

from parking import feed

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

PRIORITIES = ("P0", "P1", "P2")
SLA_STATES = ("on_time", "paused", "breached")
SLA_COLOURS = {"on_time": "#009e73", "paused": "#999999", "breached": "#c8102e"}
#: "Bad air now": a room's latest CO2 value of the last hour above this (ppm).
STUFFY_PPM = 1000.0
#: The parking table's columns (of `parking_now`) and their label keys.
PARKING_COLUMNS = (
    ("zone", "zone"), ("bays", "bays"), ("occupied", "occupied"), ("paid", "paid_count"),
    ("unpaid", "unpaid_count"), ("overstay", "overstay_count"),
    ("occupancy_pct", "occupancy_rate"), ("compliance_pct", "compliance_rate"),
)  # fmt: skip
STUFFY_WITHIN = timedelta(hours=1)
#: Bay statuses that show a car (`parking.status`); `unknown` and `unregulated` say nothing.
OCCUPIED_STATUSES = ("paid", "grace", "unpaid", "overstay", "unverified")
#: Cars that must pay and whose payment is known: the compliance rate's denominator.
PAYABLE_STATUSES = ("paid", "unpaid", "overstay")


def clock_state(due: datetime | None, reached: datetime | None, now: datetime) -> str:
    """One SLA clock from the incident's cached due and reached instants.

    Reached: on time unless at or after its deadline. Running: breached once the deadline
    has passed, paused while it has none (the incident waits on someone else).
    """
    if reached is not None:
        return "breached" if due is not None and reached >= due else "on_time"
    if due is None:
        return "paused"
    return "breached" if due <= now else "on_time"


def incident_state(incident: dict[str, Any], now: datetime) -> str:
    """The worse of an incident's two clocks (breached, then paused, then on time)."""
    states = {
        clock_state(incident["gti_due_at"], incident["gti_reached_at"], now),
        clock_state(incident["gtr_due_at"], incident["gtr_reached_at"], now),
    }
    return next(state for state in reversed(SLA_STATES) if state in states)


def incidents_by_priority(conn: psycopg.Connection) -> Dataset:
    """Open incidents per priority and SLA state (zeros included)."""
    now = datetime.now(UTC)
    counted = Counter(
        (incident["priority"], incident_state(incident, now))
        for incident in repository.open_incidents(conn)
    )
    rows = [(p, s, counted[(p, s)]) for p in PRIORITIES for s in SLA_STATES]
    return Dataset(("priority", "sla_state", "incidents"), rows)


def draw_incidents(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per priority, stacked by SLA state."""
    figure = go.Figure()
    for state in SLA_STATES:
        rows = [row for row in data.rows if row[1] == state]
        figure.add_bar(
            name=strings[f"sla.{state}"],
            x=[row[0] for row in rows],
            y=[row[2] for row in rows],
            marker_color=SLA_COLOURS[state],
        )
    figure.update_layout(
        barmode="stack", xaxis_title=strings["priority"], yaxis_title=strings["incidents"]
    )
    figure.update_yaxes(rangemode="tozero", dtick=1)
    return styled(figure)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def parking_now(conn: psycopg.Connection) -> Dataset:
    """Per active zone, now, from the control map's own status computation (`parking.feed`):
    bays, occupied bays, paid / unpaid / overstay cars, the occupancy and compliance rates.

    Occupied counts the bays whose status shows a car: paid, grace, unpaid, overstay,
    unverified. The occupancy rate is occupied / bays (bays of an unknown sensor count as
    bays, not as occupied). The compliance rate is paid / (paid + unpaid + overstay): cars in
    grace are not due yet and `unverified` ones may be paid, so neither counts. Outside
    regulated hours every bay is `unregulated`: both rates are then empty, as is the
    compliance rate of a zone without a payable car.
    """
    columns = ("zone", "bays", "occupied", "paid", "unpaid", "overstay",
               "occupancy_pct", "compliance_pct")  # fmt: skip
    rows = []
    for part in feed.snapshot(conn, datetime.now(UTC)).parts.values():
        counted = Counter(f["properties"]["status"] for f in part.features.values())
        bays = len(part.features)
        occupied = sum(counted[status] for status in OCCUPIED_STATUSES)
        payable = sum(counted[status] for status in PAYABLE_STATUSES)
        regulated = part.summary.regulated
        rows.append((
            part.summary.code, bays, occupied if regulated else None,
            counted["paid"], counted["unpaid"], counted["overstay"],
            _percent(occupied, bays) if regulated else None,
            _percent(counted["paid"], payable),
        ))  # fmt: skip
    return Dataset(columns, rows)


def draw_parking_now(data: Dataset, strings: Strings) -> go.Figure:
    """Two bars per zone: its occupancy rate and its compliance rate (%)."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure()
    for column, key, colour in (
        ("occupancy_pct", "occupancy_rate", "#0072b2"),
        ("compliance_pct", "compliance_rate", "#009e73"),
    ):
        figure.add_bar(
            name=strings[key], x=data.column("zone"), y=data.column(column), marker_color=colour
        )
    figure.update_layout(barmode="group", xaxis_title=strings["zone"])
    figure.update_yaxes(range=[0, 100], title_text="%")
    figure.update_xaxes(type="category")
    return styled(figure)


def _count(key: str, label: str, value: int) -> html.Div:
    return html.Div(
        [html.Span(str(value), className="figure", id=f"count-{key}"), html.Span(label)],
        className="count",
    )


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The page, its tables filled now; the incidents chart loads through its callback."""
    zone = ZoneInfo(repository.town(conn).timezone)
    now = datetime.now(UTC)
    counts = repository.device_counts(conn)
    incidents = [
        {
            "id": i["id"],
            "title": i["title"],
            "priority": i["priority"],
            "gti": strings[f"sla.{clock_state(i['gti_due_at'], i['gti_reached_at'], now)}"],
            "gtr": strings[f"sla.{clock_state(i['gtr_due_at'], i['gtr_reached_at'], now)}"],
            "opened": local_time(i["opened_at"], zone),
        }
        for i in repository.open_incidents(conn)
    ]
    stuffy = [
        {
            "site": r["site"],
            "room": r["room"],
            "co2": round(r["co2"]),
            "time": local_time(r["time"], zone),
        }
        for r in repository.stuffy_rooms(conn, since=now - STUFFY_WITHIN, above=STUFFY_PPM)
    ]
    leaks = [
        {
            "site": r["site"],
            "device": r["device"],
            "since": local_time(r["opened_at"], zone),
            "incident": r["incident_id"],
        }
        for r in repository.open_leaks(conn)
    ]
    parking = parking_now(conn)
    return [
        page_store(lang),
        html.Section(
            [
                _count(key, strings[f"devices_{key}"], counts[key])
                for key in ("active", "silent", "pending")
            ],
            className="counts",
        ),
        chart("overview-incidents", strings["incidents_by_priority"], strings),
        html.Section(
            [
                html.H2(strings["incidents_open"]),
                table(
                    "overview-incident-table",
                    [
                        ("id", strings["incident"]),
                        ("title", strings["title_col"]),
                        ("priority", strings["priority"]),
                        ("gti", strings["gti"]),
                        ("gtr", strings["gtr"]),
                        ("opened", strings["opened"]),
                    ],
                    incidents,
                    strings,
                ),
            ],
            className="card",
        ),
        chart("overview-parking", strings["parking_now"], strings),
        html.Section(
            [
                html.H2(strings["parking_now"]),
                table(
                    "overview-parking-table",
                    [(c, strings[k]) for c, k in PARKING_COLUMNS],
                    [dict(zip(parking.columns, row, strict=True)) for row in parking.rows],
                    strings,
                ),
            ],
            className="card",
        ),
        html.Section(
            [
                html.H2(strings["bad_air"]),
                html.Ul(
                    [
                        html.Li(site, className="stuffy-site")
                        for site in dict.fromkeys(r["site"] for r in stuffy)
                    ],
                    id="stuffy-sites",
                )
                if stuffy
                else html.P(strings["none_bad_air"]),
                table(
                    "overview-air-table",
                    [
                        ("site", strings["site"]),
                        ("room", strings["room"]),
                        ("co2", strings["co2"]),
                        ("time", strings["last_seen"]),
                    ],
                    stuffy,
                    strings,
                ),
            ],
            className="card",
        ),
        card(
            strings["leaks"],
            html.P(strings["none_leaks"]) if not leaks else None,
            table(
                "overview-leak-table",
                [
                    ("site", strings["site"]),
                    ("device", strings["name"]),
                    ("since", strings["since"]),
                    ("incident", strings["incident"]),
                ],
                leaks,
                strings,
            ),
        ),
    ]


def register(app: dash.Dash) -> None:
    """The page's chart callbacks."""
    register_chart(app, "overview-incidents", [], incidents_by_priority, draw_incidents)
    register_chart(app, "overview-parking", [], parking_now, draw_parking_now)
