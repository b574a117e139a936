"""Device models as data: one description per codec model, quantities from the codecs,
and `GET /api/v1/device-models` for technicians and the catalogue."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from devices import codecs, device_models
from tests.devices.conftest import Login

URL = "/api/v1/device-models"


def test_every_codec_model_has_a_description_and_every_description_a_codec() -> None:
    assert sorted(device_models.catalogue()) == codecs.models()


def test_quantities_and_vendor_are_the_codec_registrys() -> None:
    for model_id, codec in codecs.registry().items():
        model = device_models.get(model_id)
        assert model.quantities is codec.quantities, model_id
        assert model.vendor == codec.vendor


def test_facts_are_well_formed_and_the_generic_format_claims_nothing() -> None:
    for model in device_models.catalogue().values():
        assert model.product_url.startswith("https://"), model.model_id
        assert model.datasheet_url is None or model.datasheet_url.startswith("https://")
        assert model.uplink_interval_s >= 60
        if model.generic:
            assert (model.lorawan, model.battery, model.ingress_protection) == (None,) * 3
            continue
        assert model.lorawan is not None and model.lorawan.band == "EU868"
        mac = model.lorawan.mac_version
        assert mac is None or re.fullmatch(r"1\.0\.[0-4]|1\.1", mac)
        assert model.ingress_protection is None or re.fullmatch(
            r"IP\d\dK?", model.ingress_protection
        )
    assert device_models.get("cayenne-lpp").generic


def test_every_model_has_the_interval_the_silence_job_reads() -> None:
    intervals = device_models.uplink_intervals()
    assert set(intervals) == set(codecs.models())
    assert intervals["bosch-tps110"] == 86400 and intervals["milesight-am103"] == 600


def test_list_filters_by_quantity_and_vendor(client: TestClient, login: Login) -> None:
    viewer = login("viewer@annecy.fr")
    everything = client.get(URL, headers=viewer)
    assert everything.status_code == 200
    assert [m["model_id"] for m in everything.json()] == list(device_models.catalogue())
    parking = client.get(URL, headers=viewer, params={"quantity": "occupied"}).json()
    assert {m["model_id"] for m in parking} == {"bosch-tps110", "nwave-nps405", "milesight-am307"}
    co2 = client.get(URL, headers=viewer, params={"quantity": "co2", "vendor": "Milesight"})
    assert [m["model_id"] for m in co2.json()] == ["milesight-am103", "milesight-am307"]
    assert client.get(URL, headers=viewer, params={"quantity": "radon"}).json() == []


def test_one_model_shows_its_codec_units_and_vendor_facts(client: TestClient, login: Login) -> None:
    viewer = login("viewer@annecy.fr")
    am103 = client.get(f"{URL}/milesight-am103", headers=viewer).json()
    assert am103["quantities"] == [
        {"name": q.name, "unit": q.unit, "note": q.note}
        for q in codecs.registry()["milesight-am103"].quantities
    ]
    assert am103["lorawan"] == {
        "device_class": "A", "mac_version": "1.0.3",
        "regional_parameters": "RP001-1.0.3-RevA", "band": "EU868",
    }  # fmt: skip
    assert am103["uplink_interval_s"] == 600 and am103["vendor"] == "milesight"
    generic = client.get(f"{URL}/cayenne-lpp", headers=viewer).json()
    assert generic["generic"] is True and generic["battery"] is None


@pytest.mark.parametrize("model_id", ["acme-x", "milesight-am104"])
def test_unknown_model_is_404_naming_the_known_ones(
    client: TestClient, login: Login, model_id: str
) -> None:
    response = client.get(f"{URL}/{model_id}", headers=login("viewer@annecy.fr"))
    assert response.status_code == 404
    assert model_id in response.json()["detail"] and "milesight-am103" in response.json()["detail"]


def test_device_models_need_a_login(client: TestClient) -> None:
    assert client.get(URL).status_code == 401
