"""What every chart and table of the dashboards is made of.

A chart is a loader and a drawer: the loader reads its numbers once into a `Dataset`, the
drawer turns them into a figure, and the chart's "download the data (CSV)" button writes the
same `Dataset`. Figure and CSV come from one function of the same inputs, so they cannot
disagree. Tables are Dash DataTables that sort, filter and export (CSV) in the browser.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from dash.dash_table.DataTable import DataTable

from .access import tenant_data
from .strings import STRINGS, Strings, language

#: The page's language store: every page layout holds one, so its charts load with the page.
LANG = "lang"


@dataclass(frozen=True)
class Dataset:
    """A chart's numbers, as columns (CSV header names) and rows."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def column(self, name: str) -> list[Any]:
        """The values of one column, in row order."""
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def csv(self) -> str:
        """The numbers as CSV, a header line first; times in ISO 8601, missing values empty."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows([_cell(value) for value in row] for row in self.rows)
        return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


Loader = Callable[..., Dataset]  # (conn, *input values) -> Dataset
Drawer = Callable[[Dataset, Strings], go.Figure]


def chart(chart_id: str, title: str, strings: Strings) -> html.Section:
    """A chart's place on a page: its title, figure, CSV button and download."""
    return html.Section(
        [
            html.H2(title),
            dcc.Loading(dcc.Graph(id=f"{chart_id}-graph", config={"displaylogo": False})),
            html.Button(strings["csv"], id=f"{chart_id}-csv", className="csv", n_clicks=0),
            dcc.Download(id=f"{chart_id}-download"),
        ],
        className="card",
    )


def register_chart(
    app: dash.Dash, chart_id: str, inputs: Sequence[Input], load: Loader, draw: Drawer
) -> None:
    """The callbacks of a chart: its figure when an input (or the page) changes, its CSV
    when its button is clicked; both from `load(conn, *input values)`."""
    states = [State(i.component_id, i.component_property) for i in inputs]

    @app.callback(Output(f"{chart_id}-graph", "figure"), *inputs, Input(LANG, "data"))
    def figure(*values: Any) -> go.Figure:
        *arguments, lang = values
        with tenant_data() as conn:
            data = load(conn, *arguments)
        return draw(data, STRINGS[language(lang)])

    @app.callback(
        Output(f"{chart_id}-download", "data"),
        Input(f"{chart_id}-csv", "n_clicks"),
        *states,
        prevent_initial_call=True,
    )
    def download(_clicks: int, *arguments: Any) -> dict[str, Any]:
        with tenant_data() as conn:
            data = load(conn, *arguments)
        return dict(dcc.send_string(data.csv(), f"{chart_id}.csv", type="text/csv"))


def empty_figure(strings: Strings) -> go.Figure:
    """A figure saying there is nothing to draw."""
    figure = go.Figure()
    figure.add_annotation(
        text=strings["no_data"], showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return styled(figure)


def styled(figure: go.Figure) -> go.Figure:
    """The dashboards' common figure look: tight margins, legend on top."""
    figure.update_layout(
        template="plotly_white",
        margin={"l": 50, "r": 20, "t": 30, "b": 40},
        legend={"orientation": "h", "y": 1.1},
        height=360,
    )
    return figure


def card(title: str, *children: Any, wide: bool = False) -> html.Section:
    """A titled block of the page (`wide`: across both columns on a laptop)."""
    return html.Section([html.H2(title), *children], className="card wide" if wide else "card")


def table(
    table_id: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    strings: Strings,
) -> DataTable:
    """A table that sorts, filters and exports to CSV; `columns` are (key, label)."""
    data: Any = list(rows)  # DataTable's hints want dict[str | float | int, ...] keys
    return DataTable(
        id=table_id,
        columns=[{"id": key, "name": label} for key, label in columns],
        data=data,
        sort_action="native",
        filter_action="native",
        filter_options={"placeholder_text": strings["filter"]},
        export_format="csv",
        export_headers="display",
        page_size=15,
        style_table={"overflowX": "auto"},
        style_cell={"textAlign": "left", "fontFamily": "inherit", "padding": "4px 8px"},
    )


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """A timestamp as the town reads it ("2025-03-04 08:30"), empty when unknown."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def page_store(lang: str) -> dcc.Store:
    """The page's language, which also starts its charts' callbacks when the page renders."""
    return dcc.Store(id=LANG, data=lang)
