"""Orders through the API: an accepted quote ordered once with the town's purchase-order
number and SIRET of the day, its steps moved by the operator only and in order, the
buyer's view confined to its town, and what the deployment step reads of an order."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from catalog import orders
from core.settings import Settings
from tests.kit.catalog import SIRETS, logged_in, quote_in_state, two_towns

CATALOG = "/api/v1/catalog"


def _today() -> date:
    """Today in the towns' time zone (the default date of order steps)."""
    return datetime.now(ZoneInfo("Europe/Paris")).date()


@pytest.fixture
def towns(conn: psycopg.Connection) -> dict[str, int]:
    return two_towns(conn)


@pytest.fixture
def people(
    conn: psycopg.Connection, settings: Settings, client: TestClient, towns: dict[str, int]
) -> dict[str, dict[str, str]]:
    return logged_in(conn, settings, client, towns)


def _order(client: TestClient, headers: dict[str, str], quote_id: int, **extra: str) -> dict:
    body = {"po_number": "BC-2026-0042", **extra}
    response = client.post(f"{CATALOG}/quotes/{quote_id}/order", headers=headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_an_accepted_quote_is_ordered_once_with_the_sirets_of_the_day(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    buyer = people["annecy_buyer"]
    quote_id = quote_in_state(conn, towns["annecy"], "accepted")
    quote = client.get(f"{CATALOG}/quotes/{quote_id}", headers=buyer).json()
    order = _order(client, buyer, quote_id)
    assert re.fullmatch(rf"CMD-{datetime.now(UTC).year}-\d{{6}}", order["number"])
    assert (order["status"], order["po_number"], order["quote_number"]) == (
        "ordered",
        "BC-2026-0042",
        quote["number"],
    )
    assert order["beneficiary_siret"] == SIRETS["annecy"]
    assert [order[k] for k in ("total_excl", "total_vat", "total_incl")] == [
        quote[k] for k in ("total_excl", "total_vat", "total_incl")
    ]
    assert order["lines"] == quote["lines"] and order["vat"] == quote["vat"]
    assert (
        client.get(f"{CATALOG}/quotes/{quote_id}", headers=buyer).json()["order_id"] == order["id"]
    )

    again = client.post(
        f"{CATALOG}/quotes/{quote_id}/order", headers=buyer, json={"po_number": "BC-bis"}
    )
    assert again.status_code == 409

    conn.execute("UPDATE tenants SET siret = '21740010700025' WHERE id = %s", (towns["annecy"],))
    kept = client.get(f"{CATALOG}/orders/{order['id']}", headers=buyer).json()
    assert kept["beneficiary_siret"] == SIRETS["annecy"]


def test_only_an_accepted_quote_of_a_town_with_a_siret_is_ordered(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    buyer = people["annecy_buyer"]
    for state in ("draft", "submitted", "amended"):
        quote_id = quote_in_state(conn, towns["annecy"], state)
        response = client.post(
            f"{CATALOG}/quotes/{quote_id}/order", headers=buyer, json={"po_number": "BC-1"}
        )
        assert response.status_code == 409, state
    accepted = quote_in_state(conn, towns["annecy"], "accepted")
    tomorrow = (_today() + timedelta(days=1)).isoformat()
    future = client.post(
        f"{CATALOG}/quotes/{accepted}/order",
        headers=buyer,
        json={"po_number": "BC-1", "ordered_on": tomorrow},
    )
    assert future.status_code == 409
    conn.execute("UPDATE tenants SET siret = NULL WHERE id = %s", (towns["annecy"],))
    response = client.post(
        f"{CATALOG}/quotes/{accepted}/order", headers=buyer, json={"po_number": "BC-1"}
    )
    assert response.status_code == 409 and "SIRET" in response.json()["detail"]
    empty = client.post(f"{CATALOG}/quotes/{accepted}/order", headers=buyer, json={"po_number": ""})
    assert empty.status_code == 422


def test_the_operator_moves_an_order_one_dated_step_at_a_time(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    buyer, operator = people["annecy_buyer"], people["operator"]
    week_ago = _today() - timedelta(days=7)
    order = _order(
        client,
        buyer,
        quote_in_state(conn, towns["annecy"], "accepted"),
        ordered_on=week_ago.isoformat(),
    )
    url = f"{CATALOG}/orders/{order['id']}/status"

    def move(headers: dict[str, str], status: str, on: date | None = None) -> int:
        body = {"status": status, **({"on": on.isoformat()} if on else {})}
        return client.post(url, headers=headers, json=body).status_code

    assert move(buyer, "delivered") == 403
    assert move(operator, "invoiced") == 409  # skips delivery
    assert move(operator, "delivered", week_ago - timedelta(days=1)) == 409  # before the order
    assert move(operator, "delivered", _today() + timedelta(days=1)) == 409  # future
    assert move(operator, "delivered", week_ago + timedelta(days=2)) == 200
    assert move(operator, "delivered") == 409  # twice
    assert move(operator, "invoiced", week_ago + timedelta(days=3)) == 200
    assert move(operator, "paid") == 200
    assert move(operator, "paid") == 409
    final = client.get(f"{CATALOG}/orders/{order['id']}", headers=buyer).json()
    assert final["status"] == "paid"
    assert (final["ordered_on"], final["delivered_on"], final["invoiced_on"], final["paid_on"]) == (
        week_ago.isoformat(),
        (week_ago + timedelta(days=2)).isoformat(),
        (week_ago + timedelta(days=3)).isoformat(),
        _today().isoformat(),
    )
    actions = conn.execute(
        "SELECT action FROM audit_log WHERE target = %s ORDER BY id", (f"order:{order['id']}",)
    ).fetchall()
    assert [a for (a,) in actions] == [
        "catalog.order.create",
        "catalog.order.delivered",
        "catalog.order.invoiced",
        "catalog.order.paid",
    ]


def test_a_buyer_sees_only_their_towns_orders(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    annecy = _order(
        client, people["annecy_buyer"], quote_in_state(conn, towns["annecy"], "accepted")
    )
    lyon = _order(client, people["lyon_buyer"], quote_in_state(conn, towns["lyon"], "accepted"))
    assert lyon["beneficiary_siret"] == SIRETS["lyon"]
    intruder = people["lyon_buyer"]
    for path in (
        f"orders/{annecy['id']}",
        f"orders/{annecy['id']}/pdf",
        f"quotes/{annecy['quote_id']}",
    ):
        assert client.get(f"{CATALOG}/{path}", headers=intruder).status_code == 404, path
    assert [o["id"] for o in client.get(f"{CATALOG}/orders", headers=intruder).json()] == [
        lyon["id"]
    ]
    assert client.get(f"{CATALOG}/orders", headers=people["annecy_viewer"]).status_code == 403
    every = client.get(f"{CATALOG}/orders", headers=people["operator"]).json()
    assert {o["tenant"] for o in every} == {"annecy", "lyon"}


def test_the_deployment_step_reads_what_each_solution_version_was_ordered_with(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    order = _order(
        client, people["annecy_buyer"], quote_in_state(conn, towns["annecy"], "accepted")
    )
    ordered = orders.created_solution_lines(conn, order["id"])
    assert [(s.slug, s.version) for s in ordered] == [("parking-test", 1), ("air-test", 1)]
    parking, air = ordered
    assert parking.devices() == {"nwave-nps405": Decimal("10")}
    assert air.devices() == {"milesight-am103": Decimal("3")}
    solution_ids = conn.execute(
        "SELECT slug, id FROM catalog_solutions WHERE slug IN ('parking-test', 'air-test')"
    ).fetchall()
    assert {slug: i for slug, i in solution_ids} == {s.slug: s.solution_id for s in ordered}
