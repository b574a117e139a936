"""The operator's business-volume report: its totals equal the sum of the orders, in total,
per period, per beneficiary (SIRET) and over price lines; JSON, CSV and PDF agree."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from catalog import business_report, orders
from catalog.commerce_models import OrderCreate
from core.settings import Settings
from tests.kit.catalog import SIRETS, line, logged_in, quote_in_state, two_towns
from tests.kit.identity import SYSTEM

REPORT = "/api/v1/catalog/reports/business-volume"
FIRST_HALF = {"from": "2026-01-01", "to": "2026-06-30"}
ORDERS = [  # town, order date
    ("annecy", date(2025, 12, 31)),  # before the range
    ("annecy", date(2026, 1, 1)),
    ("annecy", date(2026, 3, 31)),
    ("lyon", date(2026, 2, 14)),
    ("lyon", date(2026, 4, 1)),
    ("annecy", date(2026, 6, 30)),
    ("lyon", date(2026, 7, 1)),  # after it
]


@pytest.fixture
def world(conn: psycopg.Connection, settings: Settings, client: TestClient) -> dict:
    """Orders of both towns around the first half of 2026, and the people."""
    towns = two_towns(conn)
    for n, (town, day) in enumerate(ORDERS):
        lines = [line("parking-test", "capteur", str(n + 1)), line("air-test", "formation", "0.5")]
        quote_id = quote_in_state(conn, towns[town], "accepted", lines[: 1 + n % 2])
        orders.create(
            conn,
            SYSTEM,
            tenant_id=towns[town],
            quote_id=quote_id,
            data=OrderCreate(po_number=f"BC-{n}", ordered_on=day),
        )
    return {"towns": towns, "people": logged_in(conn, settings, client, towns)}


def _sums(conn: psycopg.Connection, where: str = "", params: tuple = ()) -> tuple:
    row = conn.execute(
        "SELECT count(*), sum(total_excl), sum(total_vat), sum(total_incl) FROM catalog_orders"
        " WHERE ordered_on BETWEEN '2026-01-01' AND '2026-06-30'" + where,
        params,
    ).fetchone()
    assert row is not None
    return (row[0], str(row[1]), str(row[2]), str(row[3]))


def _volume(entry: dict) -> tuple:
    return (entry["orders"], entry["total_excl"], entry["total_vat"], entry["total_incl"])


def test_report_totals_equal_the_sum_of_the_orders(
    conn: psycopg.Connection, client: TestClient, world: dict
) -> None:
    operator = world["people"]["operator"]
    response = client.get(REPORT, headers=operator, params={**FIRST_HALF, "period": "quarter"})
    assert response.status_code == 200, response.text
    report = response.json()
    assert _volume(report["total"]) == _sums(conn) and report["total"]["orders"] == 5
    quarters = {p["period"]: _volume(p) for p in report["periods"]}
    assert quarters == {
        "2026-T1": _sums(conn, " AND ordered_on < '2026-04-01'"),
        "2026-T2": _sums(conn, " AND ordered_on >= '2026-04-01'"),
    }
    by_siret = {b["siret"]: _volume(b) for b in report["beneficiaries"]}
    assert by_siret == {
        siret: _sums(conn, " AND beneficiary_siret = %s", (siret,)) for siret in SIRETS.values()
    }
    for beneficiary in report["beneficiaries"]:
        periods = beneficiary["periods"]
        assert sum(Decimal(p["total_incl"]) for p in periods) == Decimal(beneficiary["total_incl"])
    days = [o["ordered_on"] for o in report["orders"]]
    assert days == sorted(days) and days[0] == "2026-01-01" and days[-1] == "2026-06-30"
    assert len(report["orders"]) == 5
    lines = report["price_lines"]
    assert sum(Decimal(line["amount_excl"]) for line in lines) == Decimal(
        report["total"]["total_excl"]
    )
    assert {(line["solution_slug"], line["code"]) for line in lines} == {
        ("parking-test", "capteur"),
        ("air-test", "formation"),
    }


def test_csv_and_pdf_carry_the_same_totals(
    conn: psycopg.Connection, client: TestClient, world: dict
) -> None:
    operator = world["people"]["operator"]
    _, excl, vat, incl = _sums(conn)
    response = client.get(REPORT, headers=operator, params={**FIRST_HALF, "format": "csv"})
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    header, body = rows[0], rows[1:]
    total = next(dict(zip(header, row, strict=True)) for row in body if row[0] == "total")
    assert total["montant HT (EUR)"] == excl.replace(".", ",")
    assert total["TVA (EUR)"] == vat.replace(".", ",")
    assert total["montant TTC (EUR)"] == incl.replace(".", ",")
    assert total["commandes"] == "5"
    orders_rows = [dict(zip(header, row, strict=True)) for row in body if row[0] == "commande"]
    assert sum(Decimal(r["montant TTC (EUR)"].replace(",", ".")) for r in orders_rows) == Decimal(
        incl
    )
    assert {r["période"] for r in orders_rows} == {
        "2026-01",
        "2026-02",
        "2026-03",
        "2026-04",
        "2026-06",
    }

    pdf = client.get(REPORT, headers=operator, params={**FIRST_HALF, "format": "pdf"})
    assert pdf.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    printed = business_report.french_euros(Decimal(incl)).replace("\xa0", " ")
    assert printed in text.replace("\xa0", " ")
    assert "Volume d'affaires du 01/01/2026 au 30/06/2026" in text


def test_only_the_operator_reports_and_the_default_is_the_last_half_year(
    client: TestClient, world: dict
) -> None:
    people = world["people"]
    assert client.get(REPORT, headers=people["annecy_buyer"]).status_code == 403
    assert (
        client.get(
            REPORT, headers=people["operator"], params={"from": "2026-07-01", "to": "2026-06-30"}
        ).status_code
        == 422
    )
    assert business_report.last_half_year(date(2026, 11, 23)) == (
        date(2026, 1, 1),
        date(2026, 6, 30),
    )
    assert business_report.last_half_year(date(2026, 3, 2)) == (
        date(2025, 7, 1),
        date(2025, 12, 31),
    )
    default = client.get(REPORT, headers=people["operator"]).json()
    expected = business_report.last_half_year(date.today())
    assert (default["from"], default["to"]) == tuple(day.isoformat() for day in expected)
