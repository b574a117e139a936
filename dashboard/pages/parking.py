"""Parking: per zone and over a period of at most 92 full days (up to yesterday), the
occupancy heatmap (weekday × hour), the daily occupancy rate, turnover, dwell time,
compliance rate and estimated unpaid revenue; the town's daily revenue per provider; the
zones without a payment for more than 1 / 10 days.

Every figure comes from parking's own reports (`parking.reports`): `occupancy_by_hour` per
zone and day, `reconciliation` per day, `stale_zones` now. Their rules (which day a session
belongs to, the compliance approximation, the unpaid estimate) are documented there.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, Output, dcc, html
from plotly.subplots import make_subplots

from parking import reports

from .. import repository
from ..access import tenant_data
from ..charts import (
    LANG,
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
from ..strings import STRINGS, Language, Strings, language
from .air import period

MAX_DAYS = 92
DEFAULT_DAYS = 14
#: Panels of the trend chart: CSV column, label key, scale from the report's value.
TREND = (
    ("occupancy_rate", "occupancy_rate", 100),
    ("turnover", "turnover", 1),
    ("mean_dwell_minutes", "dwell", 1),
    ("compliance_rate", "compliance_rate", 100),
    ("unpaid_estimate_eur", "unpaid_estimate", 1),
)

_PERIOD = [Input("parking-dates", "start_date"), Input("parking-dates", "end_date")]
_ZONE = Input("parking-zone", "value")


def last_full_day(zone: ZoneInfo, now: datetime | None = None) -> date:
    """Yesterday in the town: the last day the reports see whole."""
    return reports.yesterday(zone, now)


def _days(conn: psycopg.Connection, start: Any, end: Any) -> tuple[ZoneInfo, list[date]]:
    """The town's timezone and the chosen days (at most `MAX_DAYS`, up to yesterday)."""
    zone = ZoneInfo(repository.town(conn).timezone)
    first, last, _cut = period(
        start, end, last_full_day(zone), max_days=MAX_DAYS, default_days=DEFAULT_DAYS
    )
    last = min(last, last_full_day(zone))
    first = min(first, last)
    return zone, [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _zone_days(
    conn: psycopg.Connection, zone_code: Any, start: Any, end: Any
) -> Iterator[tuple[date, dict[str, Any]]]:
    """Each chosen day with `occupancy_by_hour`'s figures of the zone; none for a zone the
    town does not have (row-level security hides the others' zones)."""
    if not zone_code or not isinstance(zone_code, str):
        return
    zone, days = _days(conn, start, end)
    for day in days:
        for figures in reports.occupancy_by_hour(conn, zone_code, day, zone):
            yield day, figures


def heatmap(conn: psycopg.Connection, zone_code: Any, start: Any, end: Any) -> Dataset:
    """The zone's mean occupancy rate per weekday (0 = Monday) and local hour."""
    rates: dict[tuple[int, int], list[float]] = defaultdict(list)
    for day, figures in _zone_days(conn, zone_code, start, end):
        for hour in figures["hours"]:
            if hour["occupancy_rate"] is not None:
                rates[(day.weekday(), int(hour["hour"][:2]))].append(hour["occupancy_rate"])
    rows = [
        (weekday, hour, round(sum(values) / len(values), 4), len(values))
        for (weekday, hour), values in sorted(rates.items())
    ]
    return Dataset(("weekday", "hour", "occupancy_rate", "hours_counted"), rows)


def draw_heatmap(data: Dataset, strings: Strings) -> go.Figure:
    """Weekdays down, hours across; rates in percent."""
    if not data.rows:
        return empty_figure(strings)
    cells = {(weekday, hour): rate for weekday, hour, rate, _ in data.rows}
    figure = go.Figure(
        go.Heatmap(
            x=list(range(24)),
            y=[strings[f"wd.{weekday}"] for weekday in range(7)],
            z=[
                [_percent(cells.get((weekday, hour))) for hour in range(24)] for weekday in range(7)
            ],
            colorscale="Blues",
            zmin=0,
            zmax=100,
            colorbar={"title": {"text": "%"}},
        )
    )
    figure.update_xaxes(title_text=strings["hour"], dtick=2)
    figure.update_yaxes(autorange="reversed")
    return styled(figure)


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 2)


def _number(value: Any) -> float | None:
    return None if value is None else float(Decimal(str(value)))


def trend(conn: psycopg.Connection, zone_code: Any, start: Any, end: Any) -> Dataset:
    """The zone's figures per day: occupancy rate, turnover (arrivals per bay), mean dwell
    minutes, compliance rate (fractions 0..1) and the estimated unpaid revenue (euros)."""
    rows = []
    for day, figures in _zone_days(conn, zone_code, start, end):
        total = figures["day"]
        bays = figures["bays"]
        rows.append(
            (
                day,
                total["occupancy_rate"],
                round(total["arrivals"] / bays, 4) if bays else None,
                total["mean_dwell_minutes"],
                total["compliance_rate"],
                _number(total["unpaid_estimate"]),
            )
        )
    return Dataset(("day", *(column for column, _, _ in TREND)), rows)


def draw_trend(data: Dataset, strings: Strings) -> go.Figure:
    """One panel per figure, sharing the days."""
    if not data.rows:
        return empty_figure(strings)
    figure = make_subplots(rows=len(TREND), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    days = [day.isoformat() for day in data.column("day")]
    for row, (column, label, scale) in enumerate(TREND, start=1):
        values = [None if v is None else round(v * scale, 2) for v in data.column(column)]
        figure.add_scatter(
            x=days, y=values, name=strings[label], mode="lines+markers", row=row, col=1
        )
        figure.update_yaxes(title_text=strings[label], title_font_size=10, row=row, col=1)
    styled(figure).update_layout(height=900)
    return figure


def _provider(line: reports.Line) -> str:
    return line.provider or reports.SOURCE_LABELS.get(line.source, line.source)


def revenue(conn: psycopg.Connection, start: Any, end: Any) -> Dataset:
    """The town's revenue (public fee plus services, euros) per day and provider, from the
    daily reconciliation: a session counts on the day it ended."""
    zone, days = _days(conn, start, end)
    rows = []
    for day in days:
        per_provider: dict[str, list[Any]] = {}
        for line in reports.reconciliation(conn, day, zone).lines:
            figures = per_provider.setdefault(_provider(line), [0, Decimal(0)])
            figures[0] += line.sessions
            figures[1] += line.total
        rows += [
            (day, provider, sessions, float(total))
            for provider, (sessions, total) in sorted(per_provider.items())
        ]
    return Dataset(("day", "provider", "sessions", "revenue_eur"), rows)


def draw_revenue(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per day, stacked by provider."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure()
    for provider in dict.fromkeys(data.column("provider")):
        rows = [row for row in data.rows if row[1] == provider]
        figure.add_bar(
            name=provider, x=[row[0].isoformat() for row in rows], y=[row[3] for row in rows]
        )
    figure.update_layout(
        barmode="stack", xaxis_title=strings["day"], yaxis_title=strings["revenue"]
    )
    figure.update_xaxes(type="category")
    return styled(figure)


def _stale_rows(conn: psycopg.Connection, strings: Strings) -> list[dict[str, Any]]:
    zone = ZoneInfo(repository.town(conn).timezone)
    return [
        {
            "zone": row["zone"],
            "name": row["name"],
            "last_payment": local_time(row["last_payment"], zone) or strings["never"],
            "idle_hours": row["idle_hours"],
            "flag": strings[f"flag.{row['flag']}"],
        }
        for row in reports.stale_zones(conn, datetime.now(UTC))
    ]


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The pickers (first zone, the last two weeks), the charts and the stale-zone table."""
    zones = repository.parking_zones(conn)
    yesterday = last_full_day(ZoneInfo(repository.town(conn).timezone))
    stale = _stale_rows(conn, strings)
    return [
        page_store(lang),
        html.Section(
            [
                html.Label(
                    [
                        strings["zone"],
                        dcc.Dropdown(
                            id="parking-zone",
                            options=[
                                {"label": f"{code} · {name}", "value": code} for code, name in zones
                            ],
                            value=zones[0][0] if zones else None,
                            clearable=False,
                        ),
                    ]
                ),
                html.Label(
                    [
                        strings["parking_dates"],
                        dcc.DatePickerRange(
                            id="parking-dates",
                            start_date=(yesterday - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                            end_date=yesterday.isoformat(),
                            max_date_allowed=yesterday.isoformat(),
                            display_format="YYYY-MM-DD",
                            first_day_of_week=1,
                        ),
                    ]
                ),
                html.P(id="parking-period", className="note"),
            ],
            className="pickers",
        ),
        chart("parking-heatmap", strings["parking_heatmap"], strings),
        chart("parking-trend", strings["parking_trend"], strings),
        chart("parking-revenue", strings["parking_revenue"], strings),
        card(
            strings["stale_zones"],
            html.P(strings["none_stale"]) if not stale else None,
            table(
                "parking-stale-table",
                [
                    ("zone", strings["zone"]),
                    ("name", strings["name"]),
                    ("last_payment", strings["last_payment"]),
                    ("idle_hours", strings["idle_hours"]),
                    ("flag", strings["flag"]),
                ],
                stale,
                strings,
            ),
        ),
    ]


def register(app: dash.Dash) -> None:
    """The period note's and the charts' callbacks."""

    @app.callback(Output("parking-period", "children"), *_PERIOD, Input(LANG, "data"))
    def period_note(start: Any, end: Any, lang: Any) -> str:
        strings = STRINGS[language(lang)]
        with tenant_data() as conn:
            zone = ZoneInfo(repository.town(conn).timezone)
        first, last, cut = period(
            start, end, last_full_day(zone), max_days=MAX_DAYS, default_days=DEFAULT_DAYS
        )
        shown = f"{first.isoformat()} → {last.isoformat()}"
        return f"{shown} · {strings['parking_range_clamped']}" if cut else shown

    register_chart(app, "parking-heatmap", [_ZONE, *_PERIOD], heatmap, draw_heatmap)
    register_chart(app, "parking-trend", [_ZONE, *_PERIOD], trend, draw_trend)
    register_chart(app, "parking-revenue", _PERIOD, revenue, draw_revenue)
