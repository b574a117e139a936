"""A chart's CSV download holds the numbers its figure draws, and those are the database's."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.app import create_app
from core.settings import Settings
from tests.kit.dashboard import PARIS, SeededTown, callback, login, numbers, output_of

LANG = ("lang", "data", "fr")


def _rows(download: dict) -> list[dict[str, str]]:
    assert download["filename"].endswith(".csv") and download["type"] == "text/csv"
    return list(csv.DictReader(io.StringIO(download["content"])))


def test_air_series_csv_is_the_figure_and_the_hourly_means_of_the_readings(
    conn: psycopg.Connection, settings: Settings, annecy: SeededTown
) -> None:
    today = datetime.now(PARIS).date()
    first = today - timedelta(days=2)
    room = annecy.devices["Salle 1"]
    inputs = [
        ("air-room", "value", room),
        ("air-dates", "start_date", first.isoformat()),
        ("air-dates", "end_date", today.isoformat()),
    ]
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)
        figure = output_of(
            callback(client, "air-series-graph.figure", [*inputs, LANG], csrf=csrf),
            "air-series-graph.figure",
        )
        download = output_of(
            callback(
                client,
                "air-series-download.data",
                [("air-series-csv", "n_clicks", 1)],
                state=inputs,
                csrf=csrf,
            ),
            "air-series-download.data",
        )
    rows = _rows(download)
    assert len(rows) >= 48
    for trace, column in zip(
        figure["data"], ("co2_ppm", "temperature_c", "humidity_pct"), strict=True
    ):
        # an hour without that quantity (a CO2 reading alone early in the current hour) is
        # a gap in the figure and an empty cell in the CSV
        expected = [float(row[column]) if row[column] else None for row in rows]
        assert numbers(trace["y"]) == expected, column
    hours = [datetime.fromisoformat(row["hour"]) for row in rows]
    assert [hour.strftime("%Y-%m-%d %H:%M") for hour in hours] == figure["data"][0]["x"]

    start = datetime.combine(first, time(0), tzinfo=PARIS)
    end = datetime.combine(today + timedelta(days=1), time(0), tzinfo=PARIS)
    in_db = conn.execute(
        "SELECT date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00'), avg(value)"
        " FROM readings WHERE device_id = %s AND quantity = 'co2' AND time >= %s AND time < %s"
        " GROUP BY 1 ORDER BY 1",
        (room, start, end),
    ).fetchall()
    assert [(hour, float(row["co2_ppm"])) for hour, row in zip(hours, rows, strict=True)] == [
        (hour, pytest.approx(value)) for hour, value in in_db
    ]
    assert max(float(row["co2_ppm"]) for row in rows) > 1700  # the stuffy room shows


def test_fleet_and_incident_csvs_are_their_figures(settings: Settings, annecy: SeededTown) -> None:
    with TestClient(create_app(settings)) as client:
        csrf = login(client, annecy.manager)

        def chart(chart_id: str) -> tuple[dict, list[dict[str, str]]]:
            figure = output_of(
                callback(client, f"{chart_id}-graph.figure", [LANG], csrf=csrf),
                f"{chart_id}-graph.figure",
            )
            download = output_of(
                callback(
                    client,
                    f"{chart_id}-download.data",
                    [(f"{chart_id}-csv", "n_clicks", 1)],
                    csrf=csrf,
                ),
                f"{chart_id}-download.data",
            )
            return figure, _rows(download)

        figure, rows = chart("fleet-battery")
        assert numbers(figure["data"][0]["y"]) == [int(row["devices"]) for row in rows]
        # three rooms at 84-89 %, the silent sensor at 12 %
        assert {
            (row["battery_from_pct"], row["devices"]) for row in rows if row["devices"] != "0"
        } == {("10", "1"), ("80", "3")}

        figure, rows = chart("overview-incidents")
        drawn = {
            (trace["name"], x): y
            for trace in figure["data"]
            for x, y in zip(trace["x"], numbers(trace["y"]), strict=True)
        }
        names = {"on_time": "Dans les délais", "paused": "En pause", "breached": "Délai dépassé"}
        assert {(names[r["sla_state"]], r["priority"]): int(r["incidents"]) for r in rows} == drawn
        assert drawn[("Délai dépassé", "P0")] == 1 and drawn[("Dans les délais", "P1")] == 1
        assert sum(drawn.values()) == 2
