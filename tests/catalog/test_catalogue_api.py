"""The catalogue through the API: the operator writes, every role reads what is on sale,
search filters narrow, invalid content is a 422, and every write is in the audit trail."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.catalog.conftest import CATALOG, solution_body

SOLUTIONS = f"{CATALOG}/solutions"


def _on_sale(client: TestClient, operator: dict[str, str], slug: str) -> None:
    for status in ("certified", "available"):
        step = {"to": status, "reason": f"{status} par le comité"}
        response = client.post(f"{SOLUTIONS}/{slug}/transitions", headers=operator, json=step)
        assert response.status_code == 200, response.text


def test_a_price_change_is_version_2_and_version_1_stays_readable(
    client: TestClient, people: dict
) -> None:
    operator = people["operator"]
    created = client.post(SOLUTIONS, headers=operator, json=solution_body())
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["current_version"]) == ("proposed", 1)
    lines = solution_body()["price_lines"]
    lines[1]["unit_price"] = "650.00"
    change = {"change_reason": "révision annuelle", "price_lines": lines}
    patched = client.patch(f"{SOLUTIONS}/fuites-ecoles", headers=operator, json=change)
    assert patched.status_code == 200, patched.text
    assert patched.json()["current_version"] == 2
    assert patched.json()["price_lines"][1]["unit_price"] == "650.00"
    first = client.get(f"{SOLUTIONS}/fuites-ecoles/versions/1", headers=operator).json()
    assert first["price_lines"][1]["unit_price"] == "620.00"
    assert first["typical_total_excl_tax"] == "1410.00"
    assert first["typical_total_incl_tax"] == "1692.00"
    history = client.get(f"{SOLUTIONS}/fuites-ecoles/versions", headers=operator).json()
    assert [v["change_reason"] for v in history] == ["Version initiale", "révision annuelle"]
    missing = client.get(f"{SOLUTIONS}/fuites-ecoles/versions/3", headers=operator)
    assert missing.status_code == 404


def test_transitions_need_a_reason_and_follow_the_lifecycle(
    client: TestClient, people: dict, conn: psycopg.Connection
) -> None:
    operator = people["operator"]
    client.post(SOLUTIONS, headers=operator, json=solution_body())
    url = f"{SOLUTIONS}/fuites-ecoles/transitions"
    skip = client.post(url, headers=operator, json={"to": "available", "reason": "pressé"})
    assert skip.status_code == 409 and "certified" in skip.json()["detail"]
    no_reason = client.post(url, headers=operator, json={"to": "certified", "reason": ""})
    assert no_reason.status_code == 422
    _on_sale(client, operator, "fuites-ecoles")
    solution = client.get(f"{SOLUTIONS}/fuites-ecoles", headers=operator).json()
    assert [c["to_status"] for c in solution["status_changes"]] == ["certified", "available"]
    actions = [row[0] for row in conn.execute(
        "SELECT action FROM audit_log WHERE action LIKE 'catalog.%%' ORDER BY id")]  # fmt: skip
    assert actions == ["catalog.solution.create", "catalog.solution.transition",
                       "catalog.solution.transition"]  # fmt: skip


@pytest.mark.parametrize("who", ["buyer", "tenant_admin"])
def test_only_the_operator_changes_the_catalogue(
    client: TestClient, people: dict, who: str
) -> None:
    client.post(SOLUTIONS, headers=people["operator"], json=solution_body())
    headers = people[who]
    writes = [
        client.post(SOLUTIONS, headers=headers, json=solution_body("autre")),
        client.patch(f"{SOLUTIONS}/fuites-ecoles", headers=headers,
                     json={"change_reason": "x", "name_fr": "Autre"}),
        client.post(f"{SOLUTIONS}/fuites-ecoles/transitions", headers=headers,
                    json={"to": "certified", "reason": "x"}),
        client.post(f"{CATALOG}/domains", headers=headers,
                    json={"code": "lighting", "name_fr": "Éclairage", "name_en": "Lighting"}),
    ]  # fmt: skip
    assert [r.status_code for r in writes] == [403] * 4
    assert client.get(f"{SOLUTIONS}/fuites-ecoles", headers=people["operator"]).json()[
        "current_version"] == 1  # fmt: skip


def test_buyers_see_only_what_is_on_sale(client: TestClient, people: dict) -> None:
    operator, buyer = people["operator"], people["buyer"]
    client.post(SOLUTIONS, headers=operator, json=solution_body("en-vente"))
    client.post(SOLUTIONS, headers=operator, json=solution_body("en-projet"))
    _on_sale(client, operator, "en-vente")
    assert [s["slug"] for s in client.get(SOLUTIONS, headers=buyer).json()] == ["en-vente"]
    assert client.get(f"{SOLUTIONS}/en-projet", headers=buyer).status_code == 404
    assert client.get(f"{SOLUTIONS}/en-projet/versions/1", headers=buyer).status_code == 404
    every = client.get(SOLUTIONS, headers=operator).json()
    assert sorted(s["slug"] for s in every) == ["en-projet", "en-vente"]
    assert client.get(SOLUTIONS, headers=buyer, params={"status": "proposed"}).json() == []


def _air_quality() -> dict:
    return solution_body(
        "air-ecoles", domain="air_indoor", name_fr="Qualité de l'air des classes",
        name_en="Classroom air quality", description_fr="Capteurs de CO2 dans les classes.",
        description_en="CO2 sensors in classrooms.",
        device_models=[{"model": "elsys-ers-co2", "quantity": 30}],
        rule_templates=["co2-airing"],
        price_lines=[{"code": "capteur", "label_fr": "ERS CO2", "label_en": "ERS CO2",
                      "kind": "hardware", "unit": "device", "unit_price": "215.00",
                      "vat_rate": "20", "device_model": "elsys-ers-co2",
                      "typical_quantity": "30"}],
    )  # fmt: skip


SEARCHES = [
    ({}, ["air-ecoles", "fuites-ecoles"]),
    ({"domain": "leak"}, ["fuites-ecoles"]),
    ({"device_model": "elsys-ers-co2"}, ["air-ecoles"]),
    ({"quantity": "co2"}, ["air-ecoles"]),
    ({"quantity": "leak"}, ["fuites-ecoles"]),
    ({"vendor": "milesight"}, ["fuites-ecoles"]),
    ({"quantity": "co2", "device_model": "milesight-em300-sld"}, []),
    ({"max_price": "2000"}, ["fuites-ecoles"]),  # typical totals 1,410.00 and 6,450.00
    ({"min_price": "1410.01"}, ["air-ecoles"]),
    ({"min_price": "1000", "max_price": "7000"}, ["air-ecoles", "fuites-ecoles"]),
    ({"q": "fuites"}, ["fuites-ecoles"]),
    ({"q": "fuite"}, ["fuites-ecoles"]),  # French stemming
    ({"q": "classrooms"}, ["air-ecoles"]),  # English stemming
    ({"q": "CO2"}, ["air-ecoles"]),
    ({"q": "écoles"}, ["fuites-ecoles"]),
    ({"q": "50%_"}, []),  # LIKE wildcards are plain characters
]  # fmt: skip


def test_each_search_filter_narrows(client: TestClient, people: dict) -> None:
    operator = people["operator"]
    for body in (solution_body(), _air_quality()):
        assert client.post(SOLUTIONS, headers=operator, json=body).status_code == 201
        _on_sale(client, operator, body["slug"])
    wrong = []
    for params, expected in SEARCHES:
        response = client.get(SOLUTIONS, headers=people["buyer"], params=params)
        found = sorted(s["slug"] for s in response.json())
        if response.status_code != 200 or found != expected:
            wrong.append(f"{params}: {response.status_code} {found} (expected {expected})")
    assert not wrong, "\n".join(wrong)


def _line(**changes: object) -> dict:
    line = dict(solution_body()["price_lines"][1])
    line.update(changes)
    return line


INVALID = [
    solution_body(device_models=[{"model": "acme-sensor", "quantity": 3}],
                  price_lines=[_line()]),
    solution_body(rule_templates=["flood-warning"]),
    solution_body(price_lines=[_line(unit_price=19.999)]),
    solution_body(price_lines=[_line(unit_price="19.999")]),
    solution_body(price_lines=[_line(vat_rate="19.6")]),
    solution_body(price_lines=[_line(unit_price="-1.00")]),
    solution_body(price_lines=[_line(kind="hardware")]),  # complexity grades services only
    solution_body(price_lines=[_line(), _line()]),  # two lines with one code
    solution_body(domain="lighting"),  # not a domain yet
]  # fmt: skip


def test_invalid_content_is_refused(client: TestClient, people: dict) -> None:
    statuses = [
        client.post(SOLUTIONS, headers=people["operator"], json=body).status_code
        for body in INVALID
    ]
    assert statuses == [422] * len(INVALID)
    assert client.get(SOLUTIONS, headers=people["operator"]).json() == []


def test_an_invalid_change_is_refused_and_makes_no_version(
    client: TestClient, people: dict
) -> None:
    operator = people["operator"]
    client.post(SOLUTIONS, headers=operator, json=solution_body())
    # the hardware line names the EM300-SLD, which the change drops
    change = {"change_reason": "autre capteur", "device_models": [{"model": "dragino-lwl02"}]}
    response = client.patch(f"{SOLUTIONS}/fuites-ecoles", headers=operator, json=change)
    assert response.status_code == 422, response.text
    assert client.get(f"{SOLUTIONS}/fuites-ecoles", headers=operator).json()[
        "current_version"] == 1  # fmt: skip


def test_domains_are_listed_and_extended_by_the_operator(client: TestClient, people: dict) -> None:
    lighting = {"code": "lighting", "name_fr": "Éclairage public", "name_en": "Street lighting"}
    created = client.post(f"{CATALOG}/domains", headers=people["operator"], json=lighting)
    assert created.status_code == 201, created.text
    again = client.post(f"{CATALOG}/domains", headers=people["operator"], json=lighting)
    assert again.status_code == 409
    codes = [d["code"] for d in client.get(f"{CATALOG}/domains", headers=people["buyer"]).json()]
    assert {"parking", "air_indoor", "leak", "lighting"} <= set(codes)
    body = solution_body(domain="lighting")
    assert client.post(SOLUTIONS, headers=people["operator"], json=body).status_code == 201
