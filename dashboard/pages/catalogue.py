"""Catalogue, for the town's buyers and managers: its orders (number, dates, status, totals),
its business volume per month, quarter or year, and the price lines of one order.

Numbers come from the catalogue's own functions (`catalog.orders`, `catalog.business_report`)
read through the town's connection, so row-level security keeps them to its own orders; an
order counts on its order date, as in the operator's report. The operator's cross-town view
(business volume per beneficiary) is not here: operator accounts have no town in the
dashboards (`dashboard.access.admit`) and read it from the API's business-volume report.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, get_args
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash import Input, dcc, html

from catalog import business_report, orders
from catalog.business_report import Period

from .. import repository
from ..charts import Dataset, chart, empty_figure, page_store, register_chart, styled, table
from ..strings import Language, Strings

ORDER_LIMIT = 500
DEFAULT_PERIOD: Period = "month"
#: The default range of the business-volume chart: this month and the eleven before it.
DEFAULT_MONTHS = 12
_PERIOD = [
    Input("catalogue-period", "value"),
    Input("catalogue-dates", "start_date"),
    Input("catalogue-dates", "end_date"),
]


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None


def date_range(start: Any, end: Any, today: date) -> tuple[date, date]:
    """The chosen days, both included; unreadable ones fall back to the last
    `DEFAULT_MONTHS` months up to `today`."""
    last = _day(end) or today
    months = last.year * 12 + last.month - DEFAULT_MONTHS
    first = _day(start) or date(months // 12, months % 12 + 1, 1)
    return min(first, last), max(first, last)


def _today(conn: psycopg.Connection) -> date:
    return datetime.now(ZoneInfo(repository.town(conn).timezone)).date()


def _orders(conn: psycopg.Connection) -> list[dict[str, Any]]:
    return orders.get_all(conn, tenant_id=repository.tenant_id(conn), limit=ORDER_LIMIT)


def volume(conn: psycopg.Connection, period: Any, start: Any, end: Any) -> Dataset:
    """The town's orders and their totals per period of their order date."""
    chosen: Period = period if period in get_args(Period) else DEFAULT_PERIOD
    first, last = date_range(start, end, _today(conn))
    report = business_report.business_volume(
        conn, start=first, end=last, period=chosen, tenant_id=repository.tenant_id(conn)
    )
    rows = [(label, v.orders, v.excl, v.vat, v.incl) for label, v in sorted(report.periods.items())]
    return Dataset(("period", "orders", "total_excl", "total_vat", "total_incl"), rows)


def draw_volume(data: Dataset, strings: Strings) -> go.Figure:
    """Stacked bars per period: total excl. tax, then VAT (the stack is the total incl.)."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure()
    for column, colour in (("total_excl", "#0072b2"), ("total_vat", "#56b4e9")):
        figure.add_bar(
            name=strings[f"cat_{column}"],
            x=data.column("period"),
            y=[float(value) for value in data.column(column)],
            customdata=data.column("orders"),
            hovertemplate="%{x}: %{y:.2f} € (%{customdata})",
            marker_color=colour,
        )
    figure.update_layout(
        barmode="stack", xaxis_title=strings["cat_period"], yaxis_title=strings["cat_amount"]
    )
    figure.update_xaxes(type="category")
    return styled(figure)


def order_lines(conn: psycopg.Connection, order_value: Any) -> Dataset:
    """The price lines of one of the town's orders (a crafted id shows nothing)."""
    columns = ("solution", "code", "label", "quantity", "amount_excl")
    order = next((o for o in _orders(conn) if str(o["id"]) == str(order_value)), None)
    if order is None:
        return Dataset(columns, [])
    found = orders.get(conn, order["id"], tenant_id=repository.tenant_id(conn))
    rows = [
        (line["solution_slug"], line["code"], line["label"], line["quantity"], line["amount_excl"])
        for line in found["lines"]
    ]
    return Dataset(columns, rows)


def draw_order_lines(data: Dataset, strings: Strings) -> go.Figure:
    """A horizontal bar per price line, its amount excl. tax."""
    if not data.rows:
        return empty_figure(strings)
    figure = go.Figure(
        go.Bar(
            x=[float(value) for value in data.column("amount_excl")],
            y=[f"{row[0]} · {row[2]}" for row in data.rows],  # solution · line label
            orientation="h",
            marker_color="#0072b2",
        )
    )
    figure.update_layout(xaxis_title=strings["cat_total_excl"])
    figure.update_yaxes(autorange="reversed")
    return styled(figure)


def _orders_table(found: list[dict[str, Any]], strings: Strings) -> Any:
    rows = [
        {
            "number": order["number"],
            "po_number": order["po_number"],
            "ordered_on": order["ordered_on"].isoformat(),
            "status": strings[f"cat_status.{order['status']}"],
            "total_excl": float(order["total_excl"]),
            "total_vat": float(order["total_vat"]),
            "total_incl": float(order["total_incl"]),
        }
        for order in found
    ]
    columns = [
        ("number", strings["cat_number"]),
        ("po_number", strings["cat_po_number"]),
        ("ordered_on", strings["cat_ordered_on"]),
        ("status", strings["status"]),
        ("total_excl", strings["cat_total_excl"]),
        ("total_vat", strings["cat_total_vat"]),
        ("total_incl", strings["cat_total_incl"]),
    ]
    return table("catalogue-orders-table", columns, rows, strings)


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The period pickers, the charts and the orders table."""
    first, last = date_range(None, None, _today(conn))
    found = _orders(conn)
    controls = html.Section(
        [
            html.Label(strings["cat_period"], htmlFor="catalogue-period"),
            dcc.RadioItems(
                id="catalogue-period",
                options=[
                    {"label": strings[f"cat_period.{p}"], "value": p} for p in get_args(Period)
                ],
                value=DEFAULT_PERIOD,
                inline=True,
            ),
            html.Label(strings["cat_dates"], htmlFor="catalogue-dates"),
            dcc.DatePickerRange(
                id="catalogue-dates",
                start_date=first.isoformat(),
                end_date=last.isoformat(),
                display_format="YYYY-MM-DD",
            ),
        ],
        className="card wide",
    )
    picker = html.Section(
        [
            html.Label(strings["cat_order_pick"], htmlFor="catalogue-order"),
            dcc.Dropdown(
                id="catalogue-order",
                options=[{"label": o["number"], "value": o["id"]} for o in found],
                value=found[0]["id"] if found else None,
                clearable=False,
            ),
        ],
        className="card",
    )
    return [
        page_store(lang),
        controls,
        chart("catalogue-volume", strings["cat_volume"], strings),
        picker,
        chart("catalogue-lines", strings["cat_lines"], strings),
        html.Section(
            [html.H2(strings["cat_orders"]), _orders_table(found, strings)],
            className="card wide",
        ),
    ]


def register(app: dash.Dash) -> None:
    """The page's chart callbacks."""
    register_chart(app, "catalogue-volume", _PERIOD, volume, draw_volume)
    register_chart(
        app, "catalogue-lines", [Input("catalogue-order", "value")], order_lines, draw_order_lines
    )
