"""Device tags: set at registration, replaced by an edit, read back, used to filter the
list, and imported from the CSV `tags` column."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

URL = "/api/v1/devices"
PARKING = "70b3d50000000001"
ROOM = "24e124136c225107"


def _register(client: TestClient, auth: dict[str, str], dev_eui: str, **fields: object):
    device = {"dev_eui": dev_eui, "model": "bosch-tps110", "name": f"Capteur {dev_eui}", **fields}
    return client.post(URL, headers=auth, json=device)


def _listed(client: TestClient, auth: dict[str, str], *tags: str) -> list[str]:
    response = client.get(URL, headers=auth, params=[("tag", t) for t in tags])
    assert response.status_code == 200, response.text
    return sorted(d["dev_eui"] for d in response.json())


def test_tags_are_stored_replaced_as_a_whole_and_kept_when_not_given(
    client: TestClient, tech: dict[str, str], conn: psycopg.Connection
) -> None:
    created = _register(client, tech, PARKING, tags={"floor": "2", "pilot": ""})
    assert created.status_code == 201, created.text
    assert created.json()["tags"] == {"floor": "2", "pilot": ""}
    renamed = client.patch(f"{URL}/{PARKING}", headers=tech, json={"name": "Place A17"})
    assert renamed.json()["tags"] == {"floor": "2", "pilot": ""}, "kept when not given"
    replaced = client.patch(f"{URL}/{PARKING}", headers=tech, json={"tags": {"lot": "2026-A"}})
    assert replaced.status_code == 200 and replaced.json()["tags"] == {"lot": "2026-A"}
    assert client.get(f"{URL}/{PARKING}", headers=tech).json()["tags"] == {"lot": "2026-A"}
    cleared = client.patch(f"{URL}/{PARKING}", headers=tech, json={"tags": {}})
    assert cleared.json()["tags"] == {}
    audit = conn.execute(
        "SELECT details->'fields' FROM audit_log WHERE action = 'device.update' ORDER BY id"
    ).fetchall()
    assert [row[0] for row in audit] == [["name"], ["tags"], ["tags"]]


def test_list_filters_on_keys_and_values_all_of_them(
    client: TestClient, tech: dict[str, str]
) -> None:
    _register(client, tech, PARKING, tags={"floor": "2", "pilot": ""})
    _register(client, tech, ROOM, tags={"floor": "3", "lot": "2026-A"})
    assert _listed(client, tech, "floor") == [ROOM, PARKING]
    assert _listed(client, tech, "floor=2") == [PARKING]
    assert _listed(client, tech, "pilot=") == [PARKING], "a bare label has the value ''"
    assert _listed(client, tech, "floor", "lot=2026-A") == [ROOM]
    assert _listed(client, tech, "floor=2", "floor=3") == []
    assert _listed(client, tech, "Floor") == [], "keys are case-sensitive, as in ChirpStack"
    bad = client.get(URL, headers=tech, params={"tag": "étage=2"})
    assert bad.status_code == 422 and "tag filter" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({"site": "Mairie"}, "reserved"),
        ({"Civicsense_Tenant": "lyon"}, "reserved"),
        ({"bay": ""}, "reserved"),
        ({"étage": "2"}, "tag key"),
        ({"": "x"}, "tag key"),
        ({"k" * 65: "x"}, "tag key"),
        ({"floor": "x" * 201}, "200"),
        ({"floor": "2\n3"}, "printable"),
        ({f"t{n}": "" for n in range(33)}, "at most 32"),
    ],
)
def test_invalid_tags_are_refused_with_a_clear_message(
    client: TestClient, tech: dict[str, str], tags: dict[str, str], message: str
) -> None:
    response = _register(client, tech, PARKING, tags=tags)
    assert response.status_code == 422
    assert message in str(response.json()["detail"])
    assert client.get(URL, headers=tech).json() == []


def test_csv_tags_column_with_labels_and_quoted_semicolons(
    client: TestClient, tech: dict[str, str]
) -> None:
    csv = (
        "dev_eui;model;name;tags\n"
        f'{PARKING};bosch-tps110;Place A17;"floor=2; lot=2026-A ;pilot;"\n'
        f"{ROOM};milesight-am103;CM1;\n"
        '70b3d50000000003;bosch-tps110;Réservé;"site=Mairie"\n'
        '70b3d50000000004;bosch-tps110;Doublon;"a=1;a=2"\n'
    ).encode()
    headers = {**tech, "Content-Type": "text/csv"}
    report = client.post(f"{URL}/import", headers=headers, content=csv).json()
    assert report["counts"] == {"created": 2, "error": 2}
    assert [(e["line"], e["detail"][:5]) for e in report["errors"]] == [(4, "tags:"), (5, "tags:")]
    assert "reserved" in report["errors"][0]["detail"] and "twice" in report["errors"][1]["detail"]
    device = client.get(f"{URL}/{PARKING}", headers=tech).json()
    assert device["tags"] == {"floor": "2", "lot": "2026-A", "pilot": ""}
    assert client.get(f"{URL}/{ROOM}", headers=tech).json()["tags"] == {}
    again = client.post(f"{URL}/import", headers=headers, content=csv).json()
    assert again["counts"] == {"unchanged": 2, "error": 2}
