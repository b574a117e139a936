"""Quote and order PDFs: rendered, then read back as text, where the town, its SIRET, the
VAT per rate and the totals appear as French documents print them."""

from __future__ import annotations

import io
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from catalog.money import french_euros
from core.settings import Settings
from tests.kit.catalog import logged_in, two_towns

CATALOG = "/api/v1/catalog"
LINES = [
    {"solution": "parking-test", "code": "capteur", "quantity": "40"},
    {"solution": "parking-test", "code": "pose", "quantity": "2.5"},
    {"solution": "parking-test", "code": "guide", "quantity": "0.335"},
    {"solution": "air-test", "code": "formation", "quantity": "1"},
]


@pytest.fixture
def people(conn: psycopg.Connection, settings: Settings, client: TestClient) -> dict:
    return logged_in(conn, settings, client, two_towns(conn))


def _text(response: object) -> str:
    """The PDF's text, its no-break spaces as plain spaces."""
    assert getattr(response, "status_code", None) == 200
    assert response.headers["content-type"] == "application/pdf"  # type: ignore[attr-defined]
    reader = PdfReader(io.BytesIO(response.content))  # type: ignore[attr-defined]
    return "\n".join(page.extract_text() for page in reader.pages).replace("\xa0", " ")


def _printed(amount: str) -> str:
    return french_euros(Decimal(amount)).replace("\xa0", " ")


def test_the_quote_pdf_shows_the_town_the_vat_per_rate_and_the_totals(
    client: TestClient, people: dict
) -> None:
    buyer = people["annecy_buyer"]
    quote = client.post(f"{CATALOG}/quotes", headers=buyer, json={"lines": LINES}).json()
    text = _text(client.get(f"{CATALOG}/quotes/{quote['id']}/pdf", headers=buyer))
    assert f"Devis {quote['number']}" in text
    assert "Annecy" in text and "217 400 107 00017" in text
    # HT 7599.60 + 1625.00 + 1.01 + 480.00; TVA 1519.92 + 162.50 + 0.06 + 10.08
    assert (quote["total_excl"], quote["total_incl"]) == ("9705.61", "11398.17")
    for total in ("total_excl", "total_vat", "total_incl"):
        assert _printed(quote[total]) in text, total
    assert "11 398,17 €" in text
    for share in quote["vat"]:
        assert _printed(share["vat"]) in text and _printed(share["base"]) in text
    assert "5,5 %" in text and "2,1 %" in text
    assert "version 1 du catalogue" in text
    operator = client.get(f"{CATALOG}/quotes/{quote['id']}/pdf", headers=people["operator"])
    assert _printed(quote["total_incl"]) in _text(operator)


def test_the_order_pdf_shows_the_purchase_order_and_the_totals(
    client: TestClient, people: dict
) -> None:
    buyer, operator = people["annecy_buyer"], people["operator"]
    quote = client.post(f"{CATALOG}/quotes", headers=buyer, json={"lines": LINES}).json()
    client.post(f"{CATALOG}/quotes/{quote['id']}/submit", headers=buyer)
    client.post(
        f"{CATALOG}/quotes/{quote['id']}/answer", headers=operator, json={"decision": "accept"}
    )
    order = client.post(
        f"{CATALOG}/quotes/{quote['id']}/order", headers=buyer, json={"po_number": "BC-2026/117"}
    ).json()
    text = _text(client.get(f"{CATALOG}/orders/{order['id']}/pdf", headers=buyer))
    assert f"Bon de commande {order['number']}" in text
    assert "BC-2026/117" in text and quote["number"] in text and "217 400 107 00017" in text
    assert "11 398,17 €" in text and _printed(order["total_excl"]) in text
