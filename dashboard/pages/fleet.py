"""Fleet health: devices per model and status, battery levels and the devices running low,
the silent devices and when every device was last heard; the radio link (RSSI, SNR) of
each device and each gateway over the last `RADIO_WITHIN`.

Battery is the latest hourly rollup of the `battery` quantity (percent) of the last
`BATTERY_WITHIN`: models that report only a voltage, and devices quiet for longer, have none.
Radio figures read the raw `uplinks` of the last 7 days only (a bound on its time index), as
received by each uplink's best gateway (`uplinks.gateway_id`).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dash
import plotly.graph_objects as go
import psycopg
from dash.dash_table.DataTable import DataTable

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

LOW_BATTERY_PCT = 20.0
BATTERY_WITHIN = timedelta(days=7)
BATTERY_BIN_PCT = 10
RADIO_WITHIN = timedelta(days=7)
STATUSES = ("active", "silent", "registered", "provisioned")
STATUS_COLOURS = {
    "active": "#009e73",
    "silent": "#c8102e",
    "registered": "#999999",
    "provisioned": "#56b4e9",
}


def _fleet(conn: psycopg.Connection) -> list[repository.DeviceHealth]:
    return repository.fleet(conn, battery_since=datetime.now(UTC) - BATTERY_WITHIN)


def by_model_and_status(conn: psycopg.Connection) -> Dataset:
    """How many devices of each model are in each status."""
    counted = Counter((device.model, device.status) for device in _fleet(conn))
    rows = [(model, status, count) for (model, status), count in sorted(counted.items())]
    return Dataset(("model", "status", "devices"), rows)


def draw_by_model_and_status(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per model, stacked by status."""
    figure = go.Figure()
    for status in STATUSES:
        rows = [row for row in data.rows if row[1] == status]
        if rows:
            figure.add_bar(
                name=strings[f"status.{status}"],
                x=[row[0] for row in rows],
                y=[row[2] for row in rows],
                marker_color=STATUS_COLOURS[status],
            )
    figure.update_layout(
        barmode="stack", xaxis_title=strings["model"], yaxis_title=strings["devices"]
    )
    return styled(figure)


def battery_levels(conn: psycopg.Connection) -> Dataset:
    """How many devices have their battery in each 10 % band (100 % in the top one)."""
    bins = Counter(
        min(int(device.battery // BATTERY_BIN_PCT), 100 // BATTERY_BIN_PCT - 1)
        for device in _fleet(conn)
        if device.battery is not None
    )
    rows = [
        (b * BATTERY_BIN_PCT, (b + 1) * BATTERY_BIN_PCT, bins[b])
        for b in range(100 // BATTERY_BIN_PCT)
    ]
    return Dataset(("battery_from_pct", "battery_to_pct", "devices"), rows)


def draw_battery_levels(data: Dataset, strings: Strings) -> go.Figure:
    """A bar per band, the bands below the low threshold in red."""
    figure = go.Figure(
        go.Bar(
            x=[
                f"{low}–{high} %"
                for low, high in zip(
                    data.column("battery_from_pct"), data.column("battery_to_pct"), strict=True
                )
            ],
            y=data.column("devices"),
            marker_color=[
                "#c8102e" if low < LOW_BATTERY_PCT else "#0072b2"
                for low in data.column("battery_from_pct")
            ],
        )
    )
    figure.update_layout(xaxis_title=strings["battery"], yaxis_title=strings["devices"])
    return styled(figure)


def radio_devices(conn: psycopg.Connection) -> Dataset:
    """Per device heard in the last `RADIO_WITHIN`: uplinks, median RSSI (dBm) and SNR (dB)."""
    since = datetime.now(UTC) - RADIO_WITHIN
    return _radio(repository.radio_by_device(conn, since=since),
                  ("device", "uplinks", "rssi_median_dbm", "snr_median_db"))  # fmt: skip


def radio_gateways(conn: psycopg.Connection) -> Dataset:
    """Per gateway in the last `RADIO_WITHIN`: uplinks and devices heard, mean RSSI and SNR."""
    since = datetime.now(UTC) - RADIO_WITHIN
    return _radio(repository.radio_by_gateway(conn, since=since),
                  ("gateway", "uplinks", "devices", "rssi_mean_dbm", "snr_mean_db"))  # fmt: skip


def _radio(found: list[dict[str, Any]], columns: tuple[str, ...]) -> Dataset:
    """The rows as a Dataset, RSSI and SNR as floats (None when unknown)."""
    rows = [
        tuple(_number(row[c]) if c.startswith(("rssi", "snr")) else row[c] for c in columns)
        for row in found
    ]
    return Dataset(columns, rows)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def draw_radio(data: Dataset, strings: Strings) -> go.Figure:
    """RSSI bars (left axis, dBm) and SNR markers (right axis, dB) per device or gateway, the
    first column naming them."""
    if not data.rows:
        return empty_figure(strings)
    names = data.column(data.columns[0])
    rssi, snr = (next(c for c in data.columns if c.startswith(p)) for p in ("rssi", "snr"))
    figure = go.Figure()
    figure.add_bar(x=names, y=data.column(rssi), name=strings["rssi"], marker_color="#0072b2")
    figure.add_scatter(
        x=names, y=data.column(snr), name=strings["snr"], mode="markers", yaxis="y2",
        marker={"color": "#e69f00", "size": 10},
    )  # fmt: skip
    figure.update_layout(
        yaxis={"title": {"text": strings["rssi"]}},
        yaxis2={"title": {"text": strings["snr"]}, "overlaying": "y", "side": "right"},
    )
    figure.update_xaxes(type="category")
    return styled(figure)


def _radio_table(table_id: str, data: Dataset, strings: Strings) -> DataTable:
    """The dataset as a table, RSSI and SNR to one decimal; headers in the page's language."""
    rows = [
        {
            c: round(v, 1) if isinstance(v, float) else v
            for c, v in zip(data.columns, row, strict=True)
        }
        for row in data.rows
    ]
    return table(table_id, [(c, strings[f"radio.{c}"]) for c in data.columns], rows, strings)


def layout(conn: psycopg.Connection, strings: Strings, lang: Language) -> list[Any]:
    """The charts, and the tables filled now."""
    zone = ZoneInfo(repository.town(conn).timezone)
    devices = _fleet(conn)
    rows = [
        {
            "name": d.name,
            "model": d.model,
            "site": d.site or "",
            "status": strings[f"status.{d.status}"],
            "last_seen": local_time(d.last_seen_at, zone),
            "battery": None if d.battery is None else round(d.battery),
        }
        for d in devices
    ]
    columns = [
        ("name", strings["name"]),
        ("model", strings["model"]),
        ("site", strings["site"]),
        ("status", strings["status"]),
        ("last_seen", strings["last_seen"]),
        ("battery", strings["battery"]),
    ]
    shown = list(zip(devices, rows, strict=True))
    low = [row for d, row in shown if d.battery is not None and d.battery < LOW_BATTERY_PCT]
    silent = [row for d, row in shown if d.status == "silent"]
    return [
        page_store(lang),
        chart("fleet-status", strings["fleet_status"], strings),
        chart("fleet-battery", strings["battery_distribution"], strings),
        card(strings["low_battery"], table("fleet-low-table", columns, low, strings)),
        card(strings["silent_list"], table("fleet-silent-table", columns, silent, strings)),
        card(strings["all_devices"], table("fleet-table", columns, rows, strings), wide=True),
        chart("fleet-radio-devices", strings["radio_devices"], strings),
        chart("fleet-radio-gateways", strings["radio_gateways"], strings),
        card(
            strings["radio_devices"],
            _radio_table("fleet-radio-device-table", radio_devices(conn), strings),
        ),
        card(
            strings["radio_gateways"],
            _radio_table("fleet-radio-gateway-table", radio_gateways(conn), strings),
        ),
    ]


def register(app: dash.Dash) -> None:
    """The page's chart callbacks."""
    register_chart(app, "fleet-status", [], by_model_and_status, draw_by_model_and_status)
    register_chart(app, "fleet-battery", [], battery_levels, draw_battery_levels)
    register_chart(app, "fleet-radio-devices", [], radio_devices, draw_radio)
    register_chart(app, "fleet-radio-gateways", [], radio_gateways, draw_radio)
