"""The operator's business-volume report (every six months, and on demand): orders'
totals excl. and incl. tax in total, per period and per beneficiary (SIRET), the full list
of orders, and the distribution over price lines. JSON, CSV and PDF.

Rules worth knowing:

- An order counts on its **order date** (`ordered_on`), whatever its later steps; the
  range is inclusive at both ends (1 January to 30 June is the first half-year).
- Amounts are the orders' stored totals (the quotes' totals at order time); every
  subtotal is a sum of them, so the report adds up to the cent. The price-line
  distribution adds up the lines' amounts excl. tax, which sum to the same total excl.
- A beneficiary is a SIRET as it was at order time: a town that changed SIRET shows twice.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from .money import ZERO, french_euros
from .pdf import ORDER_STATUSES, Document, french_date, french_number, french_siret

Period = Literal["month", "quarter", "year"]

_ORDERS = """
SELECT o.id, o.number, o.ordered_on, o.status, o.po_number, o.beneficiary_siret AS siret,
       o.beneficiary_name AS name, q.number AS quote_number, o.total_excl, o.total_vat,
       o.total_incl
FROM catalog_orders o JOIN catalog_quotes q ON q.id = o.quote_id
WHERE o.ordered_on BETWEEN %(start)s AND %(end)s
  AND (%(tenant)s::bigint IS NULL OR o.tenant_id = %(tenant)s)
ORDER BY o.ordered_on, o.number
"""
_PRICE_LINES = """
SELECT l.solution_slug, l.code, l.label, l.unit, sum(l.quantity) AS quantity,
       sum(l.amount_excl) AS amount_excl
FROM catalog_orders o JOIN catalog_quote_lines l ON l.quote_id = o.quote_id
WHERE o.ordered_on BETWEEN %(start)s AND %(end)s
  AND (%(tenant)s::bigint IS NULL OR o.tenant_id = %(tenant)s)
GROUP BY l.solution_slug, l.code, l.label, l.unit
ORDER BY sum(l.amount_excl) DESC, l.solution_slug, l.code
"""


def period_of(day: date, period: Period) -> str:
    """The label of the period holding `day`: 2026-03, 2026-T1 (trimestre), 2026."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-T{(day.month - 1) // 3 + 1}"
    return str(day.year)


def last_half_year(today: date) -> tuple[date, date]:
    """The last complete half-year before `today`: the default reporting range."""
    if today.month > 6:
        return date(today.year, 1, 1), date(today.year, 6, 30)
    return date(today.year - 1, 7, 1), date(today.year - 1, 12, 31)


@dataclass
class Volume:
    """A count of orders and their totals."""

    orders: int = 0
    excl: Decimal = ZERO
    vat: Decimal = ZERO
    incl: Decimal = ZERO

    def add(self, order: dict[str, Any]) -> None:
        """Count one order."""
        self.orders += 1
        self.excl += order["total_excl"]
        self.vat += order["total_vat"]
        self.incl += order["total_incl"]

    def as_json(self) -> dict[str, Any]:
        """Amounts as strings, never floats."""
        return {
            "orders": self.orders,
            "total_excl": str(self.excl),
            "total_vat": str(self.vat),
            "total_incl": str(self.incl),
        }


@dataclass
class BusinessReport:
    """Orders of a date range, totalled in every way the operator reports them."""

    start: date
    end: date
    period: Period
    orders: list[dict[str, Any]]
    price_lines: list[dict[str, Any]]
    total: Volume = field(default_factory=Volume)
    periods: dict[str, Volume] = field(default_factory=dict)
    beneficiaries: dict[tuple[str, str], Volume] = field(default_factory=dict)
    by_beneficiary_and_period: dict[tuple[str, str, str], Volume] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for order in self.orders:
            label = period_of(order["ordered_on"], self.period)
            beneficiary = (order["siret"], order["name"])
            self.total.add(order)
            self.periods.setdefault(label, Volume()).add(order)
            self.beneficiaries.setdefault(beneficiary, Volume()).add(order)
            self.by_beneficiary_and_period.setdefault((*beneficiary, label), Volume()).add(order)

    def as_json(self) -> dict[str, Any]:
        """The whole report, JSON-safe."""
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "period": self.period,
            "rule": "orders whose order date falls in the range, both ends included",
            "total": self.total.as_json(),
            "periods": [
                {"period": label, **volume.as_json()}
                for label, volume in sorted(self.periods.items())
            ],
            "beneficiaries": [
                {
                    "siret": siret,
                    "name": name,
                    **volume.as_json(),
                    "periods": [
                        {"period": label, **v.as_json()}
                        for (s, n, label), v in sorted(self.by_beneficiary_and_period.items())
                        if (s, n) == (siret, name)
                    ],
                }
                for (siret, name), volume in sorted(self.beneficiaries.items())
            ],
            "orders": [
                {
                    **order,
                    "ordered_on": order["ordered_on"].isoformat(),
                    "period": period_of(order["ordered_on"], self.period),
                    **{k: str(order[k]) for k in ("total_excl", "total_vat", "total_incl")},
                }
                for order in self.orders
            ],
            "price_lines": [
                {**line, "quantity": str(line["quantity"]), "amount_excl": str(line["amount_excl"])}
                for line in self.price_lines
            ],
        }


def business_volume(
    conn: psycopg.Connection,
    *,
    start: date,
    end: date,
    period: Period,
    tenant_id: int | None = None,
) -> BusinessReport:
    """Orders dated from `start` to `end` (inclusive) of every town, or of `tenant_id`."""
    params = {"start": start, "end": end, "tenant": tenant_id}
    with conn.cursor(row_factory=dict_row) as cur:
        orders = cur.execute(_ORDERS, params).fetchall()
        price_lines = cur.execute(_PRICE_LINES, params).fetchall()
    for order in orders:
        del order["id"]
    return BusinessReport(start, end, period, orders, price_lines)


# --- CSV and PDF ------------------------------------------------------------------------

CSV_COLUMNS = (
    "ligne",
    "période",
    "SIRET",
    "bénéficiaire",
    "commande",
    "date",
    "bon de commande",
    "état",
    "code",
    "libellé",
    "quantité",
    "commandes",
    "montant HT (EUR)",
    "TVA (EUR)",
    "montant TTC (EUR)",
)


def _decimal_comma(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def _amounts(volume: Volume) -> list[str]:
    return [
        str(volume.orders),
        _decimal_comma(volume.excl),
        _decimal_comma(volume.vat),
        _decimal_comma(volume.incl),
    ]


def to_csv(report: BusinessReport) -> bytes:
    """The report as one table for French spreadsheets (UTF-8 with a BOM, `;`, decimal
    commas, dd/mm/yyyy). The first column says what a row is: `commande` (one per order),
    `bénéficiaire` (per SIRET and period), `période`, `total`, and `poste` (per price line:
    quantity and amount excl. tax). Filter on it; the subtotals are sums of the orders."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in report.orders:
        writer.writerow(
            [
                "commande",
                period_of(o["ordered_on"], report.period),
                o["siret"],
                o["name"],
                o["number"],
                french_date(o["ordered_on"]),
                o["po_number"],
                ORDER_STATUSES.get(o["status"], o["status"]),
                "",
                "",
                "",
                "1",
                _decimal_comma(o["total_excl"]),
                _decimal_comma(o["total_vat"]),
                _decimal_comma(o["total_incl"]),
            ]
        )
    for (siret, name, label), volume in sorted(report.by_beneficiary_and_period.items()):
        writer.writerow(
            ["bénéficiaire", label, siret, name, "", "", "", "", "", "", "", *_amounts(volume)]
        )
    for label, volume in sorted(report.periods.items()):
        writer.writerow(["période", label, *[""] * 9, *_amounts(volume)])
    writer.writerow(["total", "", *[""] * 9, *_amounts(report.total)])
    for line in report.price_lines:
        writer.writerow(
            [
                "poste",
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                f"{line['solution_slug']}/{line['code']}",
                line["label"],
                french_number(line["quantity"]),
                "",
                _decimal_comma(line["amount_excl"]),
                "",
                "",
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def to_pdf(report: BusinessReport) -> bytes:
    """The report as an A4 PDF: totals, per period, per beneficiary, the orders, the
    price lines."""
    span = f"du {french_date(report.start)} au {french_date(report.end)}"
    pdf = Document(f"Volume d'affaires {span}")
    pdf.paragraph(
        "Commandes dont la date de commande est dans la période (bornes incluses)."
        " Montants en euros."
    )
    pdf.heading("Total")
    total = report.total
    pdf.grid(
        ("Commandes", "Montant HT", "TVA", "Montant TTC"),
        [
            (
                str(total.orders),
                french_euros(total.excl),
                french_euros(total.vat),
                french_euros(total.incl),
            )
        ],
        (30, 40, 40, 40),
        align="RRRR",
    )
    names = {"month": "mois", "quarter": "trimestre", "year": "année"}
    pdf.heading(f"Par {names[report.period]}")
    pdf.grid(
        ("Période", "Commandes", "Montant HT", "Montant TTC"),
        [
            (label, str(v.orders), french_euros(v.excl), french_euros(v.incl))
            for label, v in sorted(report.periods.items())
        ],
        (30, 30, 40, 40),
        align="LRRR",
    )
    pdf.heading("Par bénéficiaire")
    pdf.grid(
        ("SIRET", "Bénéficiaire", "Période", "Commandes", "Montant HT", "Montant TTC"),
        [
            (
                french_siret(siret),
                name,
                label,
                str(v.orders),
                french_euros(v.excl),
                french_euros(v.incl),
            )
            for (siret, name, label), v in sorted(report.by_beneficiary_and_period.items())
        ],
        (34, 50, 20, 20, 30, 30),
        align="LLLRRR",
    )
    pdf.heading("Commandes")
    pdf.grid(
        ("Commande", "Date", "Bénéficiaire", "Bon de commande", "État", "HT", "TTC"),
        [
            (
                o["number"],
                french_date(o["ordered_on"]),
                o["name"],
                o["po_number"],
                ORDER_STATUSES.get(o["status"], o["status"]),
                french_euros(o["total_excl"]),
                french_euros(o["total_incl"]),
            )
            for o in report.orders
        ],
        (30, 20, 36, 30, 18, 28, 28),
        align="LLLLLRR",
    )
    pdf.heading("Répartition par poste")
    pdf.grid(
        ("Solution / code", "Libellé", "Quantité", "Montant HT"),
        [
            (
                f"{line['solution_slug']} / {line['code']}",
                line["label"],
                french_number(line["quantity"]),
                french_euros(line["amount_excl"]),
            )
            for line in report.price_lines
        ],
        (50, 80, 25, 35),
        align="LLRR",
    )
    return pdf.output_bytes()
