"""PDFs of quotes and orders (and the page layout the business-volume report reuses):
A4, French labels, amounts as `1 234,56 €`.

The PDF core fonts are used with the Windows-1252 encoding, which has `€`, `œ` and the
typographic apostrophe: nothing to embed, and the text stays extractable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from .money import french_euros, french_rate

UNITS = {"device": "appareil", "year": "an", "month": "mois", "day": "jour", "unit": "unité"}
QUOTE_STATUSES = {
    "draft": "brouillon",
    "submitted": "soumis à l'opérateur",
    "accepted": "accepté",
    "amended": "modifié par l'opérateur",
    "refused": "refusé",
}
ORDER_STATUSES = {
    "ordered": "commandée",
    "delivered": "livrée",
    "invoiced": "facturée",
    "paid": "payée",
}
_HEADING = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))


def _printable(text: str) -> str:
    """What Windows-1252 cannot draw, spelled with what it can."""
    return text.encode("cp1252", "replace").decode("cp1252")


def french_date(day: date | datetime) -> str:
    """23/11/2026."""
    return day.strftime("%d/%m/%Y")


def french_siret(siret: str | None) -> str:
    """123 456 789 00012 (SIREN, then the establishment's number)."""
    if not siret:
        return "non renseigné"
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"


def french_number(value: Any) -> str:
    """A quantity without trailing zeros, decimal comma: 2,5 ; 12."""
    text = f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)
    return text.replace(".", ",")


class Document(FPDF):
    """An A4 page with a title, paragraphs, tables and a numbered footer."""

    def __init__(self, title: str) -> None:
        super().__init__(format="A4")
        self.core_fonts_encoding = "windows-1252"
        self.set_title(_printable(title))
        self.set_auto_page_break(True, margin=15)
        self.add_page()
        self.set_font("helvetica", "B", 16)
        self.cell(0, 10, _printable(title), new_x="LMARGIN", new_y="NEXT")

    def footer(self) -> None:
        """Page x/y at the bottom of each page."""
        self.set_y(-12)
        self.set_font("helvetica", "I", 8)
        self.cell(0, 6, f"Page {self.page_no()}/{{nb}}", align="C")

    def heading(self, text: str) -> None:
        """A section title."""
        self.ln(3)
        self.set_font("helvetica", "B", 12)
        self.cell(0, 8, _printable(text), new_x="LMARGIN", new_y="NEXT")

    def paragraph(self, text: str, *, bold: bool = False, size: int = 10) -> None:
        """Text wrapped to the page width."""
        self.set_font("helvetica", "B" if bold else "", size)
        self.multi_cell(0, 5, _printable(text), new_x="LMARGIN", new_y="NEXT")

    def grid(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[int],
        *,
        align: str,
    ) -> None:
        """A table; `align` has one letter (L, R, C) per column."""
        self.set_font("helvetica", "", 8)
        with self.table(
            col_widths=tuple(widths),
            text_align=tuple(align),
            headings_style=_HEADING,
            line_height=5,
            width=sum(widths),
        ) as table:
            for values in [header, *rows]:
                table.row([_printable(value) for value in values])

    def output_bytes(self) -> bytes:
        """The finished PDF."""
        return bytes(self.output())


def _lines_table(pdf: Document, lines: list[dict[str, Any]]) -> None:
    header = ("Solution", "Désignation", "Qté", "Unité", "PU HT", "Remise", "TVA", "Montant HT")
    rows = [
        (
            f"{line['solution_name']} (v{line['solution_version']})",
            f"{line['label']} [{line['code']}]",
            french_number(line["quantity"]),
            UNITS.get(line["unit"], line["unit"]),
            french_euros(line["unit_price"]),
            french_rate(line["discount_percent"]) if line["discount_percent"] else "",
            french_rate(line["vat_rate"]),
            french_euros(line["amount_excl"]),
        )
        for line in lines
    ]
    pdf.grid(header, rows, (36, 52, 13, 15, 20, 14, 13, 27), align="LLRLRRRR")


def _totals(pdf: Document, document: dict[str, Any]) -> None:
    pdf.heading("TVA par taux")
    shares = [
        (french_rate(v["rate"]), french_euros(v["base"]), french_euros(v["vat"]))
        for v in document["vat"]
    ]
    pdf.grid(("Taux", "Base HT", "TVA"), shares, (30, 40, 40), align="RRR")
    pdf.heading("Totaux")
    totals = [
        ("Total HT", french_euros(document["total_excl"])),
        ("Total TVA", french_euros(document["total_vat"])),
        ("Total TTC", french_euros(document["total_incl"])),
    ]
    pdf.grid(("", "Montant"), totals, (40, 40), align="LR")


def _solutions(pdf: Document, lines: list[dict[str, Any]]) -> None:
    versions = dict.fromkeys(
        (line["solution_name"], line["solution_slug"], line["solution_version"]) for line in lines
    )
    pdf.heading("Solutions du catalogue")
    for name, slug, version in versions:
        pdf.paragraph(f"- {name} ({slug}), version {version} du catalogue")
    pdf.paragraph(
        "Les prix sont ceux de ces versions, à la date où chaque ligne a été"
        " ajoutée au devis ; ils ne changent pas avec le catalogue.",
        size=8,
    )


def quote_pdf(quote: dict[str, Any]) -> bytes:
    """The quote as the town and the operator file it."""
    pdf = Document(f"Devis {quote['number']}")
    pdf.paragraph(
        f"Bénéficiaire : {quote['town']} - SIRET {french_siret(quote['siret'])}", bold=True
    )
    pdf.paragraph(
        f"Établi le {french_date(quote['created_at'])} - état : "
        f"{QUOTE_STATUSES.get(quote['status'], quote['status'])}"
        + (f" - votre référence : {quote['reference']}" if quote["reference"] else "")
    )
    for event in quote["events"]:
        if event["reason"]:
            label = QUOTE_STATUSES.get(event["status"], event["status"])
            pdf.paragraph(
                f"{label.capitalize()} le {french_date(event['at'])} : {event['reason']}", size=9
            )
    pdf.heading("Lignes")
    _lines_table(pdf, quote["lines"])
    _totals(pdf, quote)
    _solutions(pdf, quote["lines"])
    return pdf.output_bytes()


def order_pdf(order: dict[str, Any]) -> bytes:
    """The order confirmation, with the SIRET the town had when it ordered."""
    pdf = Document(f"Bon de commande {order['number']}")
    pdf.paragraph(
        f"Bénéficiaire : {order['beneficiary_name']} - SIRET "
        f"{french_siret(order['beneficiary_siret'])}",
        bold=True,
    )
    pdf.paragraph(
        f"Bon de commande de la collectivité : {order['po_number']} - devis {order['quote_number']}"
    )
    steps = [
        ("Commandée le", order["ordered_on"]),
        ("livrée le", order["delivered_on"]),
        ("facturée le", order["invoiced_on"]),
        ("payée le", order["paid_on"]),
    ]
    pdf.paragraph(
        " - ".join(f"{label} {french_date(day)}" for label, day in steps if day)
        + f" (état : {ORDER_STATUSES.get(order['status'], order['status'])})"
    )
    pdf.heading("Lignes")
    _lines_table(pdf, order["lines"])
    _totals(pdf, order)
    _solutions(pdf, order["lines"])
    return pdf.output_bytes()
