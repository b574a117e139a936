"""Quotes through the API: pricing to the cent, prices kept through catalogue changes, the
draft → submitted → accepted | amended | refused workflow, and who may see and do what."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.kit.catalog import logged_in, reprice, two_towns

QUOTES = "/api/v1/catalog/quotes"

# (solution, code, quantity) and, apart, its unit price and VAT rate in tenths of a percent
MANY_LINES = [
    ("parking-test", "capteur", "12", 18999, 200),
    ("parking-test", "plateforme", "1", 120000, 200),
    ("parking-test", "pose", "2.5", 65000, 100),
    ("parking-test", "guide", "0.335", 300, 55),  # 1.005 € → 1.01
    ("air-test", "capteur", "3.5", 33, 200),  # 1.155 € → 1.16
    ("air-test", "formation", "1.125", 48000, 21),  # 540.00
]


@pytest.fixture
def towns(conn: psycopg.Connection) -> dict[str, int]:
    return two_towns(conn)


@pytest.fixture
def people(
    conn: psycopg.Connection, settings: Settings, client: TestClient, towns: dict[str, int]
) -> dict[str, dict[str, str]]:
    return logged_in(conn, settings, client, towns)


def _body(lines: list[tuple[Any, ...]]) -> dict[str, Any]:
    return {"lines": [{"solution": s, "code": c, "quantity": q} for s, c, q, *_ in lines]}


def _quote(client: TestClient, headers: dict[str, str], lines: list[tuple[Any, ...]]) -> dict:
    response = client.post(QUOTES, headers=headers, json=_body(lines))
    assert response.status_code == 201, response.text
    return response.json()


def _in_cents(lines: list[tuple[Any, ...]]) -> tuple[int, int, int]:
    """Excl. tax, VAT, incl. tax in integer cents: lines rounded half-up, VAT per rate on
    the sum of its lines, rounded half-up."""
    bases: dict[int, int] = {}
    for _, _, quantity, cents, rate in lines:
        whole, _, frac = quantity.partition(".")
        thousandths = int(whole) * 1000 + int(frac.ljust(3, "0"))
        bases[rate] = bases.get(rate, 0) + (2 * thousandths * cents + 1000) // 2000
    vat = sum((2 * base * rate + 1000) // 2000 for rate, base in bases.items())
    excl = sum(bases.values())
    return excl, vat, excl + vat


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def test_a_quote_of_many_lines_at_mixed_rates_is_exact_to_the_cent(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    quote = _quote(client, people["annecy_buyer"], MANY_LINES)
    excl, vat, incl = _in_cents(MANY_LINES)
    assert (_cents(quote["total_excl"]), _cents(quote["total_vat"])) == (excl, vat)
    assert _cents(quote["total_incl"]) == incl
    amounts = {
        (line["solution_slug"], line["code"]): line["amount_excl"] for line in quote["lines"]
    }
    assert amounts[("parking-test", "guide")] == "1.01"
    assert amounts[("air-test", "capteur")] == "1.16"
    assert [share["rate"] for share in quote["vat"]] == ["2.10", "5.50", "10.00", "20.00"]
    assert sum(_cents(share["vat"]) for share in quote["vat"]) == vat
    assert sum(_cents(share["base"]) for share in quote["vat"]) == excl
    assert quote["status"] == "draft" and quote["town"] == "Annecy"
    year = datetime.now(UTC).year
    assert re.fullmatch(rf"DEV-{year}-\d{{6}}", quote["number"])
    following = _quote(client, people["annecy_buyer"], MANY_LINES[:1])
    assert int(following["number"][-6:]) == int(quote["number"][-6:]) + 1


def test_a_price_change_leaves_the_quote_unchanged_and_a_new_quote_is_priced_anew(
    conn: psycopg.Connection, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    buyer = people["annecy_buyer"]
    lines = [line for line in MANY_LINES if line[1] != "plateforme"]
    before = _quote(client, buyer, lines)
    assert reprice(conn, "parking-test", "capteur", "199.00") == 2

    after = client.get(f"{QUOTES}/{before['id']}", headers=buyer).json()
    assert after["lines"] == before["lines"] and after["total_incl"] == before["total_incl"]
    capteur = next(line for line in after["lines"] if line["code"] == "capteur")
    assert (capteur["unit_price"], capteur["solution_version"]) == ("189.99", 1)

    anew = _quote(client, buyer, lines)
    capteur = next(line for line in anew["lines"] if line["code"] == "capteur")
    assert (capteur["unit_price"], capteur["solution_version"]) == ("199.00", 2)
    assert Decimal(anew["total_excl"]) - Decimal(before["total_excl"]) == 12 * Decimal("9.01")

    # editing the old draft keeps its lines' prices; a line it did not have is priced today
    edited = client.patch(
        f"{QUOTES}/{before['id']}",
        headers=buyer,
        json={
            "lines": [
                {"solution": "parking-test", "code": "capteur", "quantity": "20"},
                {"solution": "parking-test", "code": "plateforme", "quantity": "1"},
            ]
        },
    ).json()
    prices = {
        line["code"]: (line["unit_price"], line["solution_version"]) for line in edited["lines"]
    }
    assert prices == {"capteur": ("189.99", 1), "plateforme": ("1200.00", 2)}
    assert edited["total_excl"] == "4999.80"  # 20 × 189.99 + 1200.00


def test_the_operator_amends_and_the_buyer_accepts(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    buyer, operator = people["annecy_buyer"], people["operator"]
    quote = _quote(client, buyer, MANY_LINES[:2])
    url = f"{QUOTES}/{quote['id']}"
    assert (
        client.post(f"{url}/answer", headers=operator, json={"decision": "accept"}).status_code
        == 409
    )
    assert client.post(f"{url}/submit", headers=buyer).json()["status"] == "submitted"
    assert client.patch(url, headers=buyer, json={"reference": "x"}).status_code == 409
    assert (
        client.post(f"{url}/answer", headers=buyer, json={"decision": "accept"}).status_code == 403
    )

    amend = {
        "decision": "amend",
        "lines": [
            {
                "solution": "parking-test",
                "code": "capteur",
                "quantity": "12",
                "discount_percent": "10",
            },
        ],
    }
    assert client.post(f"{url}/answer", headers=operator, json=amend).status_code == 422  # reason
    amend["reason"] = "remise de 10 % sur les capteurs, plateforme déjà souscrite"
    amended = client.post(f"{url}/answer", headers=operator, json=amend)
    assert amended.status_code == 200, amended.text
    body = amended.json()
    assert body["status"] == "amended"
    assert [(line["code"], line["amount_excl"]) for line in body["lines"]] == [
        ("capteur", "2051.89")
    ]
    assert (body["total_excl"], body["total_vat"], body["total_incl"]) == (
        "2051.89",
        "410.38",
        "2462.27",
    )

    accepted = client.post(f"{url}/accept", headers=buyer)
    assert accepted.status_code == 200, accepted.text
    history = [(e["status"], e["reason"]) for e in accepted.json()["events"]]
    assert history == [
        ("draft", None),
        ("submitted", None),
        ("amended", amend["reason"]),
        ("accepted", None),
    ]
    assert client.post(f"{url}/refuse", headers=buyer).status_code == 409


def test_refusals_carry_their_reason(client: TestClient, people: dict[str, dict[str, str]]) -> None:
    buyer, operator = people["annecy_buyer"], people["operator"]
    first = _quote(client, buyer, MANY_LINES[:1])
    client.post(f"{QUOTES}/{first['id']}/submit", headers=buyer)
    refusal = {"decision": "refuse"}
    assert (
        client.post(f"{QUOTES}/{first['id']}/answer", headers=operator, json=refusal).status_code
        == 422
    )
    refusal["reason"] = "hors du périmètre du marché"
    refused = client.post(f"{QUOTES}/{first['id']}/answer", headers=operator, json=refusal).json()
    assert refused["status"] == "refused" and refused["events"][-1]["reason"] == refusal["reason"]

    second = _quote(client, buyer, MANY_LINES[:1])
    client.post(f"{QUOTES}/{second['id']}/submit", headers=buyer)
    amend = {
        "decision": "amend",
        "reason": "quantité minimale 20",
        "lines": [{"solution": "parking-test", "code": "capteur", "quantity": "20"}],
    }
    client.post(f"{QUOTES}/{second['id']}/answer", headers=operator, json=amend)
    declined = client.post(
        f"{QUOTES}/{second['id']}/refuse", headers=buyer, json={"reason": "budget insuffisant"}
    )
    assert declined.json()["status"] == "refused"
    assert declined.json()["events"][-1]["reason"] == "budget insuffisant"


def test_only_available_solutions_and_sane_quantities_are_quoted(
    conn: psycopg.Connection, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    buyer = people["annecy_buyer"]
    conn.execute("UPDATE catalog_solutions SET status = 'deprecated' WHERE slug = 'air-test'")
    cases = {
        ("air-test", "capteur", "1"): 409,
        ("parking-test", "inconnu", "1"): 422,
        ("inconnue", "capteur", "1"): 422,
        ("parking-test", "capteur", "0"): 422,
        ("parking-test", "capteur", "1.0005"): 422,
        ("parking-test", "capteur", "-2"): 422,
    }
    for line, expected in cases.items():
        response = client.post(QUOTES, headers=buyer, json=_body([line]))
        assert response.status_code == expected, (line, response.text)
    twice = _body([("parking-test", "capteur", "1"), ("parking-test", "capteur", "2")])
    assert client.post(QUOTES, headers=buyer, json=twice).status_code == 422


def test_a_buyer_sees_only_their_towns_quotes(
    client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    annecy = _quote(client, people["annecy_buyer"], MANY_LINES[:1])
    lyon = _quote(client, people["lyon_buyer"], MANY_LINES[:2])
    url = f"{QUOTES}/{annecy['id']}"
    intruder = people["lyon_buyer"]
    assert client.get(url, headers=intruder).status_code == 404
    assert client.get(f"{url}/pdf", headers=intruder).status_code == 404
    assert client.patch(url, headers=intruder, json={"reference": "à nous"}).status_code == 404
    assert client.post(f"{url}/submit", headers=intruder).status_code == 404
    assert [q["id"] for q in client.get(QUOTES, headers=intruder).json()] == [lyon["id"]]

    viewer = people["annecy_viewer"]
    assert client.post(QUOTES, headers=viewer, json=_body(MANY_LINES[:1])).status_code == 403
    assert client.get(QUOTES, headers=viewer).status_code == 403

    operator = people["operator"]
    assert {q["id"] for q in client.get(QUOTES, headers=operator).json()} == {
        annecy["id"],
        lyon["id"],
    }
    narrowed = client.get(QUOTES, headers={**operator, "X-Tenant": "lyon"}).json()
    assert [q["tenant"] for q in narrowed] == ["lyon"]
    assert client.get(url, headers=operator).json()["town"] == "Annecy"


def test_every_write_is_audited(
    conn: psycopg.Connection, client: TestClient, people: dict[str, dict[str, str]]
) -> None:
    buyer = people["annecy_buyer"]
    quote = _quote(client, buyer, MANY_LINES[:1])
    client.patch(f"{QUOTES}/{quote['id']}", headers=buyer, json={"reference": "Marché 2026-04"})
    client.post(f"{QUOTES}/{quote['id']}/submit", headers=buyer)
    client.post(
        f"{QUOTES}/{quote['id']}/answer", headers=people["operator"], json={"decision": "accept"}
    )
    rows = conn.execute(
        "SELECT action, actor, tenant_id IS NOT NULL FROM audit_log WHERE target = %s ORDER BY id",
        (f"quote:{quote['id']}",),
    ).fetchall()
    assert rows == [
        ("catalog.quote.create", "annecy_buyer@example.fr", True),
        ("catalog.quote.update", "annecy_buyer@example.fr", True),
        ("catalog.quote.submitted", "annecy_buyer@example.fr", True),
        ("catalog.quote.accepted", "operator@example.fr", True),
    ]
