"""Incidents: the open backlog per priority and class, GTI/GTR compliance per month over the
last 12 months, the distribution of resolution times, and a filterable list of incidents
linking to their API resource.

The monthly figures are `alerts.incident_report.monthly`'s (replayed from the incidents'
histories, with the town's SLA policy); the backlog and the list read `alerts.incidents`.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, Output, dcc, html

from alerts import incident_report, incidents
from alerts.sla import IncidentClass, Milestone, Priority
from alerts.workflow import State
from core.app import API_PREFIX

from .. import repository
from ..access import tenant_data
from ..charts import (
    LANG,
    Dataset,
    chart,
    empty_figure,
    local_time,
    page_store,
    register_chart,
    styled,
    table,
)
from ..strings import STRINGS, Language, Strings, language

MONTHS = 12
#: Enough for any town's open incidents: `incidents.get_all` pages, the backlog wants all.
BACKLOG_LIMIT = 100_000
LIST_LIMIT = 1_000
CLASS_COLOURS = {"bloquant": "#c8102e", "majeur": "#e69f00", "mineur": "#56b4e9"}
FILTERS = ("state", "priority", "class", "category")


def backlog(conn: psycopg.Connection) -> Dataset:
    """Incidents neither resolved nor closed, per priority and class (zeros included)."""
    open_now = incidents.get_all(
        conn, repository.tenant_id(conn), open_only=True, limit=BACKLOG_LIMIT
    )
    counted = Counter((row["priority"], row["incident_class"]) for row in open_now)
    rows = [
        (p.value, c.value, counted[(p.value, c.value)]) for p in Priority for c in IncidentClass
    ]
    return Dataset(("priority", "incident_class", "incidents"), rows)


def draw_backlog(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per priority, stacked by class."""
    figure = go.Figure()
    for kind in IncidentClass:
        rows = [row for row in data.rows if row[1] == kind.value]
        figure.add_bar(
            name=strings[f"class.{kind.value}"],
            x=[row[0] for row in rows],
            y=[row[2] for row in rows],
            marker_color=CLASS_COLOURS[kind.value],
        )
    figure.update_layout(
        barmode="stack", xaxis_title=strings["priority"], yaxis_title=strings["incidents"]
    )
    figure.update_yaxes(rangemode="tozero", dtick=1)
    return styled(figure)


def monthly_reports(conn: psycopg.Connection, now: datetime | None = None) -> list[dict[str, Any]]:
    """The monthly incident reports of the last `MONTHS` local months, oldest first."""
    tenant_id = repository.tenant_id(conn)
    at = now or datetime.now(UTC)
    month = incident_report.Month.containing(at, ZoneInfo(repository.town(conn).timezone))
    months = [month]
    while len(months) < MONTHS:
        months.append(months[-1].previous())
    return [incident_report.monthly(conn, tenant_id, m, at=at) for m in reversed(months)]


def compliance(conn: psycopg.Connection) -> Dataset:
    """Per month and clock (GTI, GTR) of the incidents opened that month: met, missed,
    pending and the rate met / (met + missed), empty while nothing is decided."""
    rows = [
        (
            report["month"],
            milestone.value,
            figures["met"],
            figures["missed"],
            figures["pending"],
            figures["rate"],
        )
        for report in monthly_reports(conn)
        for milestone in Milestone
        for figures in (report["compliance"][milestone.value],)
    ]
    return Dataset(("month", "clock", "met", "missed", "pending", "rate"), rows)


def draw_compliance(data: Dataset, strings: Strings) -> go.Figure:
    """A line per clock, in percent of decided deadlines."""
    figure = go.Figure()
    for milestone in Milestone:
        rows = [row for row in data.rows if row[1] == milestone.value]
        figure.add_scatter(
            name=strings[milestone.value],
            x=[row[0] for row in rows],
            y=[None if row[5] is None else round(row[5] * 100, 2) for row in rows],
            mode="lines+markers",
        )
    figure.update_layout(xaxis_title=strings["month"], yaxis_title=strings["compliance_pct"])
    figure.update_xaxes(type="category")
    figure.update_yaxes(range=[0, 105])
    return styled(figure)


def resolution(conn: psycopg.Connection) -> Dataset:
    """How many incidents of the last `MONTHS` months were resolved within each bucket of
    hours, counted (GTR clock) and elapsed (wall clock)."""
    totals: dict[str, Counter[str]] = {"counted_hours": Counter(), "wall_hours": Counter()}
    labels: list[str] = []
    for report in monthly_reports(conn):
        for unit, total in totals.items():
            buckets = report["resolution"][unit]["buckets"]
            labels = labels or list(buckets)
            total.update(buckets)
    rows = [
        (label, totals["counted_hours"][label], totals["wall_hours"][label]) for label in labels
    ]
    return Dataset(("bucket", "counted_hours", "wall_hours"), rows)


def draw_resolution(data: Dataset, strings: Strings) -> go.Figure:
    """Side-by-side bars per bucket: counted and elapsed hours."""
    if not any(data.column("counted_hours")) and not any(data.column("wall_hours")):
        return empty_figure(strings)
    figure = go.Figure()
    for column in ("counted_hours", "wall_hours"):
        figure.add_bar(name=strings[column], x=data.column("bucket"), y=data.column(column))
    figure.update_layout(
        barmode="group", xaxis_title=strings["resolution_hours"], yaxis_title=strings["incidents"]
    )
    return styled(figure)


def incident_rows(
    conn: psycopg.Connection,
    strings: Strings,
    *,
    state: Any = None,
    priority: Any = None,
    incident_class: Any = None,
    category: Any = None,
) -> list[dict[str, Any]]:
    """The town's incidents matching the filters (an empty one does not filter), newest
    first, as the table shows them; none for a value the filter does not offer (another
    town's category, say)."""
    offered = {
        "state": [s.value for s in State],
        "priority": [p.value for p in Priority],
        "incident_class": [c.value for c in IncidentClass],
        "category": repository.incident_categories(conn),
    }
    chosen = {
        "state": state,
        "priority": priority,
        "incident_class": incident_class,
        "category": category,
    }
    filters = {key: value for key, value in chosen.items() if value not in (None, "")}
    if any(not isinstance(v, str) or v not in offered[k] for k, v in filters.items()):
        return []
    zone = ZoneInfo(repository.town(conn).timezone)
    found = incidents.get_all(
        conn,
        repository.tenant_id(conn),
        states=[filters["state"]] if "state" in filters else None,
        priority=filters.get("priority"),
        incident_class=filters.get("incident_class"),
        category=filters.get("category"),
        limit=LIST_LIMIT,
    )
    return [
        {
            "id": row["id"],
            "title": row["title"],
            "state": strings[f"state.{row['state']}"],
            "priority": row["priority"],
            "class": strings[f"class.{row['incident_class']}"],
            "category": row["category"],
            "site": row["site"] or "",
            "opened": local_time(row["opened_at"], zone),
            "link": f"[{API_PREFIX}/incidents/{row['id']}]({API_PREFIX}/incidents/{row['id']})",
        }
        for row in found
    ]


def _filter(key: str, label: str, options: list[dict[str, str]]) -> html.Label:
    return html.Label([label, dcc.Dropdown(id=f"incidents-{key}", options=options)])


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The charts, the filters and the list (filled by its callback)."""
    incident_table = table(
        "incidents-table",
        [
            ("id", strings["incident"]),
            ("title", strings["title_col"]),
            ("state", strings["state"]),
            ("priority", strings["priority"]),
            ("class", strings["incident_class"]),
            ("category", strings["category"]),
            ("site", strings["site"]),
            ("opened", strings["opened"]),
            ("link", strings["link"]),
        ],
        [],
        strings,
    )
    shown: Any = incident_table  # Dash sets component props at run time: untyped here
    shown.columns = [
        {**column, "presentation": "markdown"} if column["id"] == "link" else column
        for column in shown.columns
    ]
    options = {
        "state": [{"label": strings[f"state.{s.value}"], "value": s.value} for s in State],
        "priority": [{"label": p.value, "value": p.value} for p in Priority],
        "class": [{"label": strings[f"class.{c.value}"], "value": c.value} for c in IncidentClass],
        "category": [{"label": c, "value": c} for c in repository.incident_categories(conn)],
    }
    labels = {
        "state": strings["state"],
        "priority": strings["priority"],
        "class": strings["incident_class"],
        "category": strings["category"],
    }
    return [
        page_store(lang),
        chart("incidents-backlog", strings["incidents_backlog"], strings),
        chart("incidents-compliance", strings["sla_compliance"], strings),
        chart("incidents-resolution", strings["resolution_distribution"], strings),
        html.Section(
            [
                html.H2(strings["incidents_list"]),
                html.Div(
                    [_filter(key, labels[key], options[key]) for key in FILTERS],
                    className="pickers",
                ),
                incident_table,
            ],
            className="card wide",
        ),
    ]


def register(app: dash.Dash) -> None:
    """The charts' callbacks and the list's."""
    register_chart(app, "incidents-backlog", [], backlog, draw_backlog)
    register_chart(app, "incidents-compliance", [], compliance, draw_compliance)
    register_chart(app, "incidents-resolution", [], resolution, draw_resolution)

    @app.callback(
        Output("incidents-table", "data"),
        *(Input(f"incidents-{key}", "value") for key in FILTERS),
        Input(LANG, "data"),
    )
    def listed(state: Any, priority: Any, kind: Any, category: Any, lang: Any) -> Any:
        with tenant_data() as conn:
            return incident_rows(
                conn,
                STRINGS[language(lang)],
                state=state,
                priority=priority,
                incident_class=kind,
                category=category,
            )
