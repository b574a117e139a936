"""Deployment from an order: the town's alert rules from the ordered solutions' templates,
an onboarding checklist ticked off as technicians register devices, orders of the same
model filled one after the other; and a town's configuration promoted into the catalogue."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts import rule_service
from alerts.rules import TEMPLATES
from catalog import deployment
from core.settings import Settings
from devices import device_models
from devices import service as devices
from devices.models import DeviceCreate
from tests.kit.catalog import line, log_in, logged_in, order_of, seeded_solution, two_towns
from tests.kit.identity import SYSTEM

CATALOG = "/api/v1/catalog"
PARKING = "stationnement-voirie-connecte"  # the shipped parking solution
COLD_CHAIN = "chaine-du-froid-restauration"  # templates and one full rule
SENSOR = "nwave-nps405"
_dev_euis = iter(range(1, 1000))


@pytest.fixture
def towns(conn: psycopg.Connection) -> dict[str, int]:
    return two_towns(conn)


@pytest.fixture
def people(
    conn: psycopg.Connection, settings: Settings, client: TestClient, towns: dict[str, int]
) -> dict[str, dict[str, str]]:
    """annecy's buyer, viewer, technician and admin, lyon's buyer, the operator."""
    headers = logged_in(conn, settings, client, towns)
    for name, role in (("annecy_technician", "technician"), ("annecy_admin", "tenant_admin")):
        headers[name] = log_in(
            conn, settings, client, name=name, tenant_id=towns["annecy"], role=role
        )
    return headers


def _ok(response: Any, expected: int = 200) -> dict[str, Any]:
    assert response.status_code == expected, response.text
    result: dict[str, Any] = response.json()
    return result


def _register(client: TestClient, headers: dict[str, str], model: str) -> None:
    """A technician registers a new device of `model` through the devices API."""
    device = {"dev_eui": f"70b3d5{next(_dev_euis):010x}", "model": model, "name": "Place"}
    _ok(client.post("/api/v1/devices", headers=headers, json=device), 201)


def _add_device(conn: psycopg.Connection, settings: Settings, tenant_id: int, model: str) -> None:
    device = DeviceCreate(dev_eui=f"a84041{next(_dev_euis):010x}", model=model, name="Capteur")
    devices.register(conn, settings, tenant_id=tenant_id, device=device)


def _progress(checklist: dict[str, Any]) -> list[tuple[str, int, int, bool]]:
    return [
        (item["model"], item["registered"], item["quantity"], item["complete"])
        for item in checklist["items"]
    ]


def test_an_order_for_the_parking_solution_creates_the_rules_and_a_checklist_that_completes(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    seeded_solution(conn, PARKING)
    buyer, technician = people["annecy_buyer"], people["annecy_technician"]
    lines = [
        {"solution": PARKING, "code": "capteur-nps405", "quantity": "3"},
        {"solution": PARKING, "code": "connectivite", "quantity": "3"},  # per device, not one
        {"solution": PARKING, "code": "pose", "quantity": "1"},
    ]
    quote = _ok(client.post(f"{CATALOG}/quotes", headers=buyer, json={"lines": lines}), 201)
    _ok(client.post(f"{CATALOG}/quotes/{quote['id']}/submit", headers=buyer))
    answer = {"decision": "accept"}
    _ok(
        client.post(
            f"{CATALOG}/quotes/{quote['id']}/answer", headers=people["operator"], json=answer
        )
    )
    order = _ok(
        client.post(
            f"{CATALOG}/quotes/{quote['id']}/order", headers=buyer, json={"po_number": "BC-7"}
        ),
        201,
    )

    rules = _ok(client.get("/api/v1/alerts/rules", headers=buyer))
    assert sorted(rule["template"] for rule in rules) == ["device-silent", "gateway-silent"]
    assert all(rule["enabled"] for rule in rules)

    url = f"{CATALOG}/orders/{order['id']}/checklist"
    checklist = _ok(client.get(url, headers=technician))
    assert checklist["order_number"] == order["number"] and checklist["complete"] is False
    assert checklist["items"] == [
        {"solution": PARKING, "solution_version": 1, "model": SENSOR,
         "model_name": device_models.get(SENSOR).name, "quantity": 3, "registered": 0,
         "remaining": 3, "complete": False},
    ]  # fmt: skip

    _register(client, technician, SENSOR)
    _register(client, technician, SENSOR)
    _register(client, technician, "bosch-tps110")  # another model does not count
    checklist = _ok(client.get(url, headers=technician))
    assert _progress(checklist) == [(SENSOR, 2, 3, False)]
    assert checklist["items"][0]["remaining"] == 1 and checklist["complete"] is False

    _register(client, technician, SENSOR)
    checklist = _ok(client.get(url, headers=technician))
    assert _progress(checklist) == [(SENSOR, 3, 3, True)] and checklist["complete"] is True
    audited = conn.execute(
        "SELECT details FROM audit_log WHERE action = 'catalog.order.deploy'"
    ).fetchone()
    assert audited is not None and audited[0]["checklist"] == {SENSOR: 3}


def test_a_second_order_of_the_same_model_is_not_ticked_by_the_first_orders_devices(
    conn: psycopg.Connection, settings: Settings, towns: dict[str, int]
) -> None:
    annecy = towns["annecy"]
    _add_device(conn, settings, annecy, SENSOR)  # installed before any order: not counted
    first = order_of(conn, annecy, lines=[line("parking-test", "capteur", "2")])
    second = order_of(conn, annecy, lines=[line("parking-test", "capteur", "2")])

    def progress(order_id: int) -> list[tuple[str, int, int, bool]]:
        checklist = deployment.checklist(conn, tenant_id=annecy, order_id=order_id)
        return [(i.model, i.registered, i.quantity, i.complete) for i in checklist.items]

    assert progress(first) == progress(second) == [(SENSOR, 0, 2, False)]
    for _ in range(3):
        _add_device(conn, settings, annecy, SENSOR)
    assert progress(first) == [(SENSOR, 2, 2, True)]
    assert progress(second) == [(SENSOR, 1, 2, False)]
    _add_device(conn, settings, towns["lyon"], SENSOR)  # another town's device
    assert progress(second) == [(SENSOR, 1, 2, False)]
    conn.execute(
        "UPDATE devices SET status = 'decommissioned' WHERE id = (SELECT max(id) FROM devices"
        " WHERE tenant_id = %s)",
        (annecy,),
    )
    assert progress(first) == [(SENSOR, 2, 2, True)]
    assert progress(second) == [(SENSOR, 0, 2, False)], "a decommissioned device stops counting"


def test_ordering_twice_does_not_duplicate_the_rules(
    conn: psycopg.Connection, towns: dict[str, int]
) -> None:
    seeded_solution(conn, COLD_CHAIN)
    annecy = towns["annecy"]
    probes = [line(COLD_CHAIN, "sonde-froid", "4")]
    order_of(conn, annecy, lines=probes)
    first = conn.execute(
        "SELECT template, name FROM alert_rules WHERE tenant_id = %s ORDER BY id", (annecy,)
    ).fetchall()
    assert sorted(template for template, _ in first if template) == [
        "device-silent",
        "gateway-silent",
    ]
    assert [name for template, name in first if template is None] == [
        "Chambre froide au-dessus de 4 °C"
    ]
    order_of(conn, annecy, lines=probes)
    again = conn.execute(
        "SELECT template, name FROM alert_rules WHERE tenant_id = %s ORDER BY id", (annecy,)
    ).fetchall()
    assert again == first
    assert conn.execute(
        "SELECT count(*) FROM alert_rules WHERE tenant_id = %s", (towns["lyon"],)
    ).fetchone() == (0,)


def test_a_solution_ordered_without_devices_falls_back_to_its_typical_deployment(
    conn: psycopg.Connection, towns: dict[str, int]
) -> None:
    seeded_solution(conn, COLD_CHAIN)
    annecy = towns["annecy"]
    order_id = order_of(conn, annecy, lines=[line(COLD_CHAIN, "pose", "1")])
    checklist = deployment.checklist(conn, tenant_id=annecy, order_id=order_id)
    assert [(i.model, i.quantity) for i in checklist.items] == [("cayenne-lpp", 12)]


def test_another_towns_checklist_is_not_found(
    conn: psycopg.Connection, client: TestClient, people: dict, towns: dict[str, int]
) -> None:
    order_id = order_of(conn, towns["annecy"])
    url = f"{CATALOG}/orders/{order_id}/checklist"
    assert client.get(url, headers=people["lyon_buyer"]).status_code == 404
    assert (
        client.get(
            f"{CATALOG}/orders/999999/checklist", headers=people["annecy_viewer"]
        ).status_code
        == 404
    )
    mine = _ok(client.get(url, headers=people["annecy_viewer"]))
    assert _progress(mine) == [(SENSOR, 0, 10, False), ("milesight-am103", 0, 3, False)]
    acting = {**people["operator"], "X-Tenant": "annecy"}
    assert _ok(client.get(url, headers=acting)) == mine


def test_the_operator_promotes_a_towns_configuration_into_a_proposed_solution(
    conn: psycopg.Connection,
    settings: Settings,
    client: TestClient,
    people: dict,
    towns: dict[str, int],
) -> None:
    annecy = towns["annecy"]
    for model in (SENSOR, SENSOR, "milesight-am103", "milesight-em300-sld"):
        _add_device(conn, settings, annecy, model)
    conn.execute("UPDATE devices SET status = 'decommissioned' WHERE model = 'milesight-em300-sld'")
    _add_device(conn, settings, towns["lyon"], "bosch-tps110")  # another town's
    rule_service.create_rule(conn, SYSTEM, annecy, TEMPLATES["leak"], template="leak")
    edited = TEMPLATES["battery-low"].model_copy(update={"name": "Pile faible (15 %)"})
    rule_service.create_rule(conn, SYSTEM, annecy, edited, template="battery-low")
    door = TEMPLATES["leak"].model_copy(
        update={"name": "Porte", "scope": TEMPLATES["leak"].scope.model_copy(
            update={"model": "dragino-lwl02"})}
    )  # fmt: skip
    for _ in range(2):  # the same rule twice is offered once
        rule_service.create_rule(conn, SYSTEM, annecy, door)
    off = TEMPLATES["device-silent"].model_copy(update={"enabled": False})
    rule_service.create_rule(conn, SYSTEM, annecy, off, template="device-silent")

    body = {"slug": "stationnement-annecy", "domain": "parking", "name_fr": "Stationnement",
            "name_en": "Parking", "description_fr": "Le projet d'Annecy"}  # fmt: skip
    url = f"{CATALOG}/solutions/from-town"
    operator = {**people["operator"], "X-Tenant": "annecy"}
    solution = _ok(client.post(url, headers=operator, json=body), 201)

    assert (solution["status"], solution["current_version"]) == ("proposed", 1)
    assert solution["device_models"] == [
        {"model": "milesight-am103", "quantity": 1},
        {"model": SENSOR, "quantity": 2},
        {"model": "dragino-lwl02", "quantity": None},  # watched by a rule, none installed
    ]
    assert solution["rule_templates"][0] == "leak"
    assert [rule["name"] for rule in solution["rule_templates"][1:]] == [
        "Pile faible (15 %)",
        "Porte",
    ]
    assert [
        (p["device_model"], p["typical_quantity"], p["unit_price"]) for p in solution["price_lines"]
    ] == [
        ("milesight-am103", "1.00", "0.00"),
        (SENSOR, "2.00", "0.00"),
    ]
    assert solution["description_fr"] == "Le projet d'Annecy"
    seen = _ok(client.get(f"{CATALOG}/solutions/stationnement-annecy", headers=people["operator"]))
    assert seen["device_models"] == solution["device_models"]

    again = client.post(url, headers=operator, json=body)
    assert again.status_code == 409
    for name in ("annecy_admin", "annecy_buyer"):
        response = client.post(url, headers=people[name], json={**body, "slug": "autre"})
        assert response.status_code == 403, name
    no_town = client.post(url, headers=people["operator"], json={**body, "slug": "autre"})
    assert no_town.status_code == 400


def test_a_promotion_with_price_lines_keeps_them(
    conn: psycopg.Connection,
    settings: Settings,
    client: TestClient,
    people: dict,
    towns: dict[str, int],
) -> None:
    _add_device(conn, settings, towns["lyon"], "bosch-tps110")
    price = {"code": "pose", "label_fr": "Pose", "label_en": "Installation", "kind": "service",
             "unit": "day", "unit_price": "650.00", "vat_rate": "20"}  # fmt: skip
    body = {"slug": "pmr-lyon", "domain": "parking", "name_fr": "Places PMR",
            "name_en": "Disabled bays", "price_lines": [price]}  # fmt: skip
    operator = {**people["operator"], "X-Tenant": "lyon"}
    solution = _ok(client.post(f"{CATALOG}/solutions/from-town", headers=operator, json=body), 201)
    assert solution["device_models"] == [{"model": "bosch-tps110", "quantity": 1}]
    assert [p["code"] for p in solution["price_lines"]] == ["pose"]
    assert solution["rule_templates"] == []
