"""PDFs of quotes and orders (and the page layout the business-volume report reuses):
A4, French labels, amounts as `1 234,56 €`.

The page layout (`core.pdf.Document`) is shared with the other packages' printable reports.
"""

from __future__ import annotations

from typing import Any

from core.pdf import Document, french_date

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


def french_siret(siret: str | None) -> str:
    """123 456 789 00012 (SIREN, then the establishment's number)."""
    if not siret:
        return "non renseigné"
    return f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"


def french_number(value: Any) -> str:
    """A quantity without trailing zeros, decimal comma: 2,5 ; 12."""
    text = f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)
    return text.replace(".", ",")


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
