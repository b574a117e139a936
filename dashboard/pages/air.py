"""Air quality: per building (device site) and room (CO2 device), over a chosen period of at
most 31 days: hourly CO2, temperature and humidity (and TVOC, PM2.5, PM10 when the room
reports them), the ICONE index per day, and a room × hour-of-day heatmap of mean CO2.

Series and heatmap read the hourly rollups. ICONE needs the 10-minute values the protocol is
defined on, so it reads raw readings, of one room and at most 31 days at a time (about 4,500
values for a sensor reporting every 10 minutes): that bound is why the period is capped.
Occupied time is the common primary-school week (`dashboard.icone.school_hours`) in the town's
timezone, public holidays off; towns cannot set their own timetable yet.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, Output, dcc, html
from plotly.subplots import make_subplots

from core import rollups

from .. import repository
from ..access import tenant_data
from ..charts import LANG, Dataset, chart, empty_figure, page_store, register_chart, styled
from ..icone import CO2_HIGH_PPM, CO2_MEDIUM_PPM, MAX_HOLD, IconeLevel, daily_icone, school_hours
from ..strings import STRINGS, Language, Strings, language

MAX_DAYS = 31
DEFAULT_DAYS = 7
#: Series of the time-series chart: quantity, CSV column, label key.
SERIES = (
    ("co2", "co2_ppm", "co2"),
    ("temperature", "temperature_c", "temperature"),
    ("humidity", "humidity_pct", "humidity"),
)
#: Series shown only when the room reported them over the period (same fields).
OPTIONAL_SERIES = (
    ("tvoc", "tvoc", "tvoc"),
    ("pm2_5", "pm2_5_ugm3", "pm2_5"),
    ("pm10", "pm10_ugm3", "pm10"),
)
#: Threshold lines of the particle panels: WHO 2021 24-hour guideline levels (µg/m³).
PM_GUIDELINES = {"pm2_5_ugm3": (15.0, "band_pm2_5"), "pm10_ugm3": (45.0, "band_pm10")}
ICONE_COLOURS = ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027")

_PERIOD = [Input("air-dates", "start_date"), Input("air-dates", "end_date")]


def period(
    start: str | None,
    end: str | None,
    today: date,
    *,
    max_days: int = MAX_DAYS,
    default_days: int = DEFAULT_DAYS,
) -> tuple[date, date, bool]:
    """The chosen days, first and last included, at most `max_days` of them (a longer choice
    keeps its last ones); whether it was cut. Unreadable dates fall back to the last
    `default_days` up to `today`."""
    last = _day(end) or today
    first = _day(start) or last - timedelta(days=default_days - 1)
    first, last = min(first, last), max(first, last)
    cut = (last - first).days >= max_days
    return (last - timedelta(days=max_days - 1) if cut else first), last, cut


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def _instants(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC bounds [start, end) of the local days first..last."""
    start = datetime.combine(first, time(0), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _room(conn: psycopg.Connection, value: Any) -> repository.Room | None:
    """The room the browser chose, if it is one of this town's (a crafted id is not)."""
    return next((room for room in repository.rooms(conn) if str(room.id) == str(value)), None)


def _window(conn: psycopg.Connection, start: Any, end: Any) -> tuple[ZoneInfo, datetime, datetime]:
    zone = ZoneInfo(repository.town(conn).timezone)
    first, last, _cut = period(start, end, datetime.now(zone).date())
    return (zone, *_instants(first, last, zone))


def series(conn: psycopg.Connection, room_value: Any, start: Any, end: Any) -> Dataset:
    """Hourly means of CO2, temperature and humidity of one room, by local hour; and of TVOC,
    PM2.5 and PM10, each only if the room reported it over the period."""
    room = _room(conn, room_value)
    if room is None:
        return Dataset(("hour", *(column for _, column, _ in SERIES)), [])
    zone, since, until = _window(conn, start, end)
    by_hour: dict[datetime, dict[str, float]] = defaultdict(dict)
    for figures in rollups.hourly(conn, device_ids=[room.id], start=since, end=until):
        by_hour[figures.hour][figures.quantity] = figures.avg_value
    reported = {quantity for values in by_hour.values() for quantity in values}
    shown = [*SERIES, *(s for s in OPTIONAL_SERIES if s[0] in reported)]
    rows = [
        (hour.astimezone(zone), *(values.get(quantity) for quantity, _, _ in shown))
        for hour, values in sorted(by_hour.items())
    ]
    return Dataset(("hour", *(column for _, column, _ in shown)), rows)


def draw_series(data: Dataset, strings: Strings) -> go.Figure:
    """Stacked panels sharing the time axis, one per series of the data (CO2, temperature,
    humidity, then TVOC and PM when present); CO2 with its 1,000 and 1,700 ppm bands, PM with
    the WHO 24-hour guideline levels."""
    if not data.rows:
        return empty_figure(strings)
    shown = [s for s in (*SERIES, *OPTIONAL_SERIES) if s[1] in data.columns]
    figure = make_subplots(rows=len(shown), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    hours = [hour.strftime("%Y-%m-%d %H:%M") for hour in data.column("hour")]
    for row, (_, column, label) in enumerate(shown, start=1):
        figure.add_scatter(
            x=hours,
            y=data.column(column),
            name=strings[label],
            mode="lines",
            connectgaps=False,
            row=row,
            col=1,
        )
        figure.update_yaxes(title_text=strings[label], row=row, col=1)
        if column in PM_GUIDELINES:
            level, key = PM_GUIDELINES[column]
            figure.add_hline(
                y=level, line_dash="dot", annotation_text=strings[key],
                annotation_position="top left", row=row, col=1,
            )  # fmt: skip
    top = max([CO2_HIGH_PPM * 1.2, *(v for v in data.column("co2_ppm") if v is not None)])
    for low, high, colour in (
        (CO2_MEDIUM_PPM, CO2_HIGH_PPM, "#fee08b"),
        (CO2_HIGH_PPM, top, "#fc8d59"),
    ):
        figure.add_hrect(
            y0=low, y1=high, fillcolor=colour, opacity=0.25, line_width=0, row=1, col=1
        )
    for level, key in ((CO2_MEDIUM_PPM, "band_medium"), (CO2_HIGH_PPM, "band_high")):
        figure.add_hline(
            y=level,
            line_dash="dot",
            annotation_text=strings[key],
            annotation_position="top left",
            row=1,
            col=1,
        )
    styled(figure).update_layout(height=214 * len(shown))
    return figure


def icone_days(conn: psycopg.Connection, room_value: Any, start: Any, end: Any) -> Dataset:
    """The ICONE index of each day of the period, from the room's raw CO2 values."""
    columns = ("day", "icone", "f1", "f2", "coverage")
    room = _room(conn, room_value)
    if room is None:
        return Dataset(columns, [])
    town = repository.town(conn)
    zone, since, until = _window(conn, start, end)
    hours = school_hours().model_copy(update={"timezone": town.timezone})
    values = repository.samples(
        conn, device_id=room.id, quantity="co2", start=since - MAX_HOLD, end=until
    )
    first_day, last_day = since.astimezone(zone).date(), until.astimezone(zone).date()
    rows = [
        (
            result.day,
            None if result.index is None else int(result.index),
            result.f1,
            result.f2,
            round(result.coverage, 4),
        )
        for result in daily_icone(values, hours)
        if first_day <= result.day < last_day
    ]
    return Dataset(columns, rows)


def draw_icone(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per day, coloured by level; days without an index show as gaps."""
    if not any(index is not None for index in data.column("icone")):
        return empty_figure(strings)
    indices = data.column("icone")
    lang = language(strings["lang"])
    figure = go.Figure(
        go.Bar(
            x=[day.isoformat() for day in data.column("day")],
            y=indices,
            marker_color=[ICONE_COLOURS[i] if i is not None else "#cccccc" for i in indices],
            hovertext=[IconeLevel(i).label(lang) if i is not None else "" for i in indices],
            name="ICONE",
        )
    )
    figure.update_yaxes(range=[0, 5], dtick=1, title_text=strings["icone_axis"])
    figure.update_xaxes(type="category")
    return styled(figure)


def heatmap(conn: psycopg.Connection, site: Any, start: Any, end: Any) -> Dataset:
    """Mean CO2 of each room of a building per local hour of the day over the period."""
    columns = ("room", "hour", "co2_ppm_mean")
    rooms = repository.rooms(conn, site=str(site)) if site else []
    if not rooms:
        return Dataset(columns, [])
    zone, since, until = _window(conn, start, end)
    names = {room.id: room.name for room in rooms}
    totals: dict[tuple[int, int], list[float]] = defaultdict(lambda: [0.0, 0.0])
    hourly = rollups.hourly(conn, device_ids=list(names), quantity="co2", start=since, end=until)
    for figures in hourly:
        total = totals[(figures.device_id, figures.hour.astimezone(zone).hour)]
        total[0] += figures.sum_value
        total[1] += figures.count
    rows = [
        (names[device], hour, total / count)
        for (device, hour), (total, count) in sorted(totals.items())
    ]
    return Dataset(columns, rows)


def draw_heatmap(data: Dataset, strings: Strings) -> go.Figure:
    """Rooms down, hours of the day across."""
    if not data.rows:
        return empty_figure(strings)
    rooms = list(dict.fromkeys(data.column("room")))
    cells = {(room, hour): mean for room, hour, mean in data.rows}
    figure = go.Figure(
        go.Heatmap(
            x=list(range(24)),
            y=rooms,
            z=[[cells.get((room, hour)) for hour in range(24)] for room in rooms],
            colorscale="YlOrRd",
            colorbar={"title": {"text": "ppm"}},
            zmin=400,
        )
    )
    figure.update_xaxes(title_text=strings["hour"], dtick=2)
    figure.update_yaxes(autorange="reversed")  # rooms top-down, in the pickers' order
    return styled(figure)


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The pickers (first building and room chosen) and the charts."""
    rooms = repository.rooms(conn)
    sites = list(dict.fromkeys(room.site for room in rooms))
    today = datetime.now(ZoneInfo(repository.town(conn).timezone)).date()
    return [
        page_store(lang),
        html.Section(
            [
                html.Label(
                    [
                        strings["site"],
                        dcc.Dropdown(
                            id="air-site",
                            options=sites,
                            value=sites[0] if sites else None,
                            clearable=False,
                        ),
                    ]
                ),
                html.Label([strings["room"], dcc.Dropdown(id="air-room", clearable=False)]),
                html.Label(
                    [
                        strings["dates"],
                        dcc.DatePickerRange(
                            id="air-dates",
                            start_date=(today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                            end_date=today.isoformat(),
                            max_date_allowed=today.isoformat(),
                            display_format="YYYY-MM-DD",
                            first_day_of_week=1,
                        ),
                    ]
                ),
                html.P(id="air-period", className="note"),
            ],
            className="pickers",
        ),
        chart("air-series", strings["timeseries"], strings),
        chart("air-icone", strings["icone"], strings),
        chart("air-heatmap", strings["heatmap"], strings),
    ]


def register(app: dash.Dash) -> None:
    """The pickers' and the charts' callbacks."""

    @app.callback(
        Output("air-room", "options"), Output("air-room", "value"), Input("air-site", "value")
    )
    def rooms_of_site(site: Any) -> tuple[list[dict[str, Any]], int | None]:
        with tenant_data() as conn:
            rooms = repository.rooms(conn, site=str(site)) if site else []
        options = [{"label": room.name, "value": room.id} for room in rooms]
        return options, rooms[0].id if rooms else None

    @app.callback(Output("air-period", "children"), *_PERIOD, Input(LANG, "data"))
    def period_note(start: Any, end: Any, lang: Any) -> str:
        strings = STRINGS[language(lang)]
        with tenant_data() as conn:
            today = datetime.now(ZoneInfo(repository.town(conn).timezone)).date()
        first, last, cut = period(start, end, today)
        shown = f"{first.isoformat()} → {last.isoformat()}"
        return f"{shown} · {strings['range_clamped']}" if cut else shown

    room = Input("air-room", "value")
    register_chart(app, "air-series", [room, *_PERIOD], series, draw_series)
    register_chart(app, "air-icone", [room, *_PERIOD], icone_days, draw_icone)
    register_chart(
        app, "air-heatmap", [Input("air-site", "value"), *_PERIOD], heatmap, draw_heatmap
    )
