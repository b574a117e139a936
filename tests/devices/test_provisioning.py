"""Provisioning in ChirpStack through its real gRPC API (a loopback server implementing
DeviceService): bulk import then provisioning, outages, refusals, configuration."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import grpc
import psycopg
import pytest
from pydantic import SecretStr

from core import tenants
from core.embedded import free_port
from core.settings import Settings
from devices import service
from devices.provisioning import provision_pending
from tests.kit.chirpstack import DeviceStore, chirpstack_server

TOKEN = "chirpstack-api-key"
APPLICATION = "3f2a7c1e-0000-4000-8000-000000000001"
PROFILES = {
    "bosch-tps110": "profile-parking",
    "milesight-am103": "profile-air",
    "milesight-em300-sld": "profile-leak",
}


def _csv(
    lines: int, *, invalid_every: int = 50, seed: int = 7
) -> tuple[bytes, dict[str, tuple[str, str]]]:
    """A CSV of `lines` devices, one invalid line in `invalid_every`; the valid ones'
    DevEUI → (model, AppKey)."""
    rng = random.Random(seed)
    rows = ["dev_eui,model,name,join_eui,app_key,site,tags"]
    valid = {}
    models = sorted(PROFILES)
    for n in range(lines):
        dev_eui = f"70b3d5{n:010x}"
        model = models[n % len(models)]
        app_key = rng.randbytes(16).hex()
        if n % invalid_every == invalid_every - 1:
            rows.append(f"{dev_eui[:-1]}z,{model},Capteur {n},,{app_key},Mairie,")  # bad EUI
            continue
        keys = f"70b3d57ed0000001,{app_key.upper()}"
        rows.append(f"{dev_eui},{model},Capteur {n},{keys},Mairie,lot=2026-A;pilot")
        valid[dev_eui] = (model, app_key)
    return "\n".join(rows).encode(), valid


@pytest.fixture
def store() -> DeviceStore:
    return DeviceStore(token=TOKEN)


@pytest.fixture
def town(conn: psycopg.Connection) -> int:
    return tenants.create(conn, tenants.TenantCreate(slug="annecy", name="Annecy"))


def _settings(settings: Settings, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "chirpstack_api_url": url,
        "chirpstack_api_token": SecretStr(TOKEN),
        "chirpstack_applications": {"annecy": APPLICATION},
        "chirpstack_device_profiles": PROFILES,
        "chirpstack_requests_per_second": 5000.0,
    }
    return settings.model_copy(update={**values, **overrides})


def _statuses(conn: psycopg.Connection) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute("SELECT dev_eui, status, provisioning_error FROM devices").fetchall()
    return {dev_eui: (status, error) for dev_eui, status, error in rows}


@pytest.fixture
def server(store: DeviceStore) -> Iterator[str]:
    with chirpstack_server(store) as url:
        yield url


def test_bulk_import_of_a_thousand_lines_provisions_every_valid_device(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore, server: str
) -> None:
    data, valid = _csv(1000)
    results = service.import_csv(conn, settings, tenant_id=town, data=data)
    assert sum(r.status == "created" for r in results) == len(valid) == 980
    report = provision_pending(_settings(settings, server))
    assert (report.provisioned, report.failed, report.unavailable) == (980, 0, None)
    assert set(store.devices) == set(valid)
    for dev_eui, (model, app_key) in valid.items():
        device = store.devices[dev_eui]
        assert device.application_id == APPLICATION
        assert device.device_profile_id == PROFILES[model]
        assert device.join_eui == "70b3d57ed0000001"
        assert dict(device.tags) == {
            "civicsense_tenant": "annecy", "site": "Mairie", "lot": "2026-A", "pilot": "",
        }, "the technician's tags arrive under civicsense's own"  # fmt: skip
        assert store.keys[dev_eui].nwk_key == app_key, "LoRaWAN 1.0.x: AppKey in nwk_key"
    assert set(_statuses(conn).values()) == {("provisioned", None)}
    again = provision_pending(_settings(settings, server))
    assert (again.provisioned, again.failed) == (0, 0), "nothing left to do"


def test_devices_wait_while_chirpstack_is_down_and_go_through_when_it_is_back(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore
) -> None:
    data, valid = _csv(30, invalid_every=1000)
    service.import_csv(conn, settings, tenant_id=town, data=data)
    port = free_port()
    configured = _settings(settings, f"127.0.0.1:{port}")
    down = provision_pending(configured)
    assert down.unavailable and down.provisioned == 0
    statuses = _statuses(conn)
    assert {status for status, _ in statuses.values()} == {"registered"}
    assert any(error and "unavailable" in error for _, error in statuses.values())

    with chirpstack_server(store, port):
        store.fail_with = grpc.StatusCode.UNAVAILABLE
        failing = provision_pending(configured)
        assert failing.unavailable and failing.provisioned == 0 and not store.devices
        store.fail_with = None
        back = provision_pending(configured)
    assert (back.provisioned, back.unavailable) == (30, None)
    assert set(store.devices) == set(valid)
    assert set(_statuses(conn).values()) == {("provisioned", None)}


def test_a_refused_device_keeps_its_error_and_the_others_go_through(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore, server: str
) -> None:
    data, valid = _csv(9, invalid_every=1000)
    service.import_csv(conn, settings, tenant_id=town, data=data)
    profiles = {**PROFILES, "milesight-am103": ""}  # ChirpStack refuses an empty profile id
    report = provision_pending(_settings(settings, server, chirpstack_device_profiles=profiles))
    statuses = _statuses(conn)
    refused = {e for e, (model, _) in valid.items() if model == "milesight-am103"}
    assert report.failed == len(refused) == 3 and report.provisioned == 6
    for dev_eui in refused:
        status, error = statuses[dev_eui]
        assert status == "registered" and error and "INVALID_ARGUMENT" in error


def test_configuration_problems_are_shown_on_the_device(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore, server: str
) -> None:
    lines = "dev_eui,model,name,app_key\n" + "\n".join([
        "70b3d50000000001,bosch-tps110,Sans clé,",
        "70b3d50000000002,milesight-am103,Modèle sans profil,00112233445566778899aabbccddeeff",
    ])  # fmt: skip
    service.import_csv(conn, settings, tenant_id=town, data=lines.encode())
    profiles = {"bosch-tps110": "profile-parking"}
    provision_pending(_settings(settings, server, chirpstack_device_profiles=profiles))
    statuses = _statuses(conn)
    assert statuses["70b3d50000000001"] == (
        "registered", "no AppKey: register the device's AppKey to provision it (OTAA)",
    )  # fmt: skip
    assert statuses["70b3d50000000002"] == (
        "registered", "no ChirpStack device profile configured for model 'milesight-am103'",
    )  # fmt: skip
    other_town = provision_pending(_settings(settings, server, chirpstack_applications={}))
    assert other_town.provisioned == 0 and store.devices == {}


def test_wrong_api_token_stops_the_run(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore, server: str
) -> None:
    data, _ = _csv(5, invalid_every=1000)
    service.import_csv(conn, settings, tenant_id=town, data=data)
    report = provision_pending(_settings(settings, server, chirpstack_api_token=SecretStr("wrong")))
    assert report.unavailable and "UNAUTHENTICATED" in report.unavailable
    assert report.provisioned == 0 and store.calls == 1, "stops at the first refusal"


def test_without_a_chirpstack_url_provisioning_is_skipped_and_says_so(
    conn: psycopg.Connection, settings: Settings, town: int
) -> None:
    data, _ = _csv(3, invalid_every=1000)
    service.import_csv(conn, settings, tenant_id=town, data=data)
    report = provision_pending(settings)
    assert report.skipped and "CIVICSENSE_CHIRPSTACK_API_URL" in report.skipped
    assert {status for status, _ in _statuses(conn).values()} == {"registered"}


def test_decommissioned_devices_leave_chirpstack_unless_registered_again(
    conn: psycopg.Connection, settings: Settings, town: int, store: DeviceStore
) -> None:
    data, valid = _csv(3, invalid_every=1000)
    service.import_csv(conn, settings, tenant_id=town, data=data)
    gone, back, kept = sorted(valid)
    port = free_port()
    configured = _settings(settings, f"127.0.0.1:{port}")
    with chirpstack_server(store, port):
        assert provision_pending(configured).provisioned == 3
    conn.execute("UPDATE devices SET status = 'decommissioned' WHERE dev_eui IN (%s, %s)",
                 (gone, back))  # fmt: skip
    again = f"dev_eui,model,name,app_key\n{back},{valid[back][0]},De retour,{valid[back][1]}\n"
    service.import_csv(conn, settings, tenant_id=town, data=again.encode())
    down = provision_pending(configured)
    assert down.unavailable and down.deprovisioned == 0
    with chirpstack_server(store, port):
        report = provision_pending(configured)
    assert (report.deprovisioned, report.provisioned, report.unavailable) == (2, 1, None), report
    assert set(store.devices) == {back, kept}, "the re-registered DevEUI stays in ChirpStack"
    assert store.devices[back].name == "De retour"
    pending = conn.execute(
        "SELECT count(*) FROM devices WHERE status = 'decommissioned' AND deprovisioned_at IS NULL"
    ).fetchone()
    assert pending == (0,)
