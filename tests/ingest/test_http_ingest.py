"""ChirpStack's HTTP integration: real events POSTed to `/api/v1/ingest/chirpstack?event=...`.

The route answers after the batch holding the event committed, so everything is
checked right after the response, without waiting.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from core import tenants
from core.app import create_app
from core.settings import Settings
from devices import codecs, service
from devices.models import DeviceCreate
from ingest import pipeline as pipeline_module
from ingest.batch import Batch
from tests.kit.fleet import decode_event
from tests.kit.waiting import wait_until

URL = "/api/v1/ingest/chirpstack"
AUTH = {"Authorization": "Bearer test-ingest-token"}
JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/octet-stream"}
EVENT_STEMS = (
    "join",
    "status",
    "up_elsys-ers-co2",
    "up_milesight-am307",
    "up_milesight-em300-sld_fcnt-omitted",
    "up_nwave-nps405",
)
TABLES = ("uplinks", "device_events", "readings", "ingest_rejects")
EM300 = "up_milesight-em300-sld_fcnt-omitted"


def _kind(stem: str) -> str:
    return stem.split("_")[0]


def _event_files(shared_dir: Path) -> dict[str, dict[str, bytes]]:
    folder = shared_dir / "chirpstack-events"
    return {
        stem: {
            "json": (folder / f"{stem}.json").read_bytes(),
            "pb": (folder / f"{stem}.pb").read_bytes(),
        }
        for stem in EVENT_STEMS
    }


def _device_of(raw_json: bytes) -> tuple[str, str, str]:
    """(DevEUI, model tag, device name) of a JSON event."""
    info = json.loads(raw_json)["deviceInfo"]
    return info["devEui"], info["tags"]["model"], info["deviceName"]


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]


@pytest.fixture
def events(shared_dir: Path) -> dict[str, dict[str, bytes]]:
    """stem → {"json": bytes, "pb": bytes} for every shared ChirpStack event."""
    return _event_files(shared_dir)


@pytest.fixture
def registered(
    conn: psycopg.Connection, settings: Settings, events: dict[str, dict[str, bytes]]
) -> dict[str, dict[str, Any]]:
    """The events' devices whose model has a codec, registered; DevEUI → device row."""
    tenant_id = tenants.create(conn, tenants.TenantCreate(slug="amsterdam", name="Amsterdam"))
    known = set(codecs.models())
    rows = {}
    for files in events.values():
        dev_eui, model, name = _device_of(files["json"])
        if model in known and dev_eui not in rows:
            _, rows[dev_eui] = service.register(
                conn,
                settings,
                tenant_id=tenant_id,
                device=DeviceCreate(dev_eui=dev_eui, model=model, name=name),
            )
    return rows


@pytest.fixture
def client(settings: Settings, registered: dict[str, dict[str, Any]]) -> Iterator[TestClient]:
    """The app with its lifespan running: pool and the HTTP ingest pipeline."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _post(client: TestClient, event: str, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, params={"event": event}, content=body, headers={**AUTH, **headers})


def _expected_readings(kind: str, message: Any, model: str) -> Counter[tuple[Any, str, float]]:
    """(time, quantity, value) the event must add, from the codec and protobuf's own parser."""
    when = message.time.ToDatetime(tzinfo=UTC)
    if kind == "up":
        return Counter(
            (r.timestamp or when + timedelta(seconds=r.offset), r.quantity, float(r.value))
            for r in codecs.decode(model, message.f_port, message.data)
        )
    if kind == "status":
        readings = [("link_margin", float(message.margin))]
        if not (message.battery_level_unavailable or message.external_power_source):
            readings.append(("battery", float(message.battery_level)))
        return Counter((when, q, v) for q, v in readings)
    return Counter()


def _stored_readings(conn: psycopg.Connection, device_id: int) -> Counter[tuple[Any, str, float]]:
    rows = conn.execute(
        "SELECT time, quantity, value FROM readings WHERE device_id = %s", (device_id,)
    ).fetchall()
    return Counter((t.astimezone(UTC), q, v) for t, q, v in rows)


def test_the_shared_events_are_all_covered_and_include_a_registered_model(
    shared_dir: Path, registered: dict[str, dict[str, Any]]
) -> None:
    """Otherwise the storage tests below would skip events or only see unknown devices."""
    folder = shared_dir / "chirpstack-events"
    assert {p.stem for p in folder.glob("*.json")} == set(EVENT_STEMS)
    assert {p.stem for p in folder.glob("*.pb")} == set(EVENT_STEMS)
    assert registered, f"no shared event is of a registered model ({codecs.models()})"


@pytest.mark.parametrize("stem", EVENT_STEMS)
def test_event_is_in_the_database_when_the_response_arrives(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
    stem: str,
) -> None:
    kind, raw = _kind(stem), events[stem]["json"]
    dev_eui, model, _ = _device_of(raw)
    message = decode_event(kind, raw)
    response = _post(client, kind, raw, JSON)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "accepted"}

    counts = _counts(conn)
    device = registered.get(dev_eui)
    if device is None:
        rejects = conn.execute(
            "SELECT reason, dev_eui, source, event, raw FROM ingest_rejects"
        ).fetchall()
        assert rejects == [("unknown_device", dev_eui, "http", kind, raw)]
        assert counts == {"uplinks": 0, "device_events": 0, "readings": 0, "ingest_rejects": 1}
        return

    assert counts["ingest_rejects"] == 0, conn.execute(
        "SELECT reason, detail FROM ingest_rejects"
    ).fetchall()
    when = message.time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]
    if kind == "up":
        uplink = conn.execute(
            "SELECT dedup_id::text, device_id, dev_eui, time, f_cnt, f_port, payload, gateway_count"
            " FROM uplinks"
        ).fetchall()
        assert uplink == [
            (
                message.deduplication_id,  # type: ignore[attr-defined]
                device["id"],
                dev_eui,
                when,
                message.f_cnt,  # type: ignore[attr-defined]
                message.f_port,  # type: ignore[attr-defined]
                message.data,  # type: ignore[attr-defined]
                len(message.rx_info),  # type: ignore[attr-defined]
            )
        ]
        assert counts["device_events"] == 0
    else:
        stored = conn.execute(
            "SELECT kind, event_key, device_id, time FROM device_events"
        ).fetchall()
        assert stored == [(kind, message.deduplication_id, device["id"], when)]  # type: ignore[attr-defined]
        assert counts["uplinks"] == 0
    expected = _expected_readings(kind, message, model)
    assert _stored_readings(conn, device["id"]) == expected
    if kind == "up":
        assert expected, "an uplink of a registered model must give readings"


@pytest.mark.parametrize("stem", EVENT_STEMS)
def test_same_event_as_json_then_protobuf_is_stored_once(
    client: TestClient, conn: psycopg.Connection, events: dict[str, dict[str, bytes]], stem: str
) -> None:
    kind = _kind(stem)
    assert _post(client, kind, events[stem]["json"], JSON).status_code == 200
    after_first = _counts(conn)
    assert sum(after_first.values()) > 0
    assert _post(client, kind, events[stem]["pb"], PROTOBUF).status_code == 200
    assert _counts(conn) == after_first
    assert _post(client, kind, events[stem]["json"], JSON).status_code == 200
    assert _counts(conn) == after_first


def test_protobuf_event_stores_the_same_rows_as_its_json_twin(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
) -> None:
    stems = [
        s
        for s in EVENT_STEMS
        if _kind(s) == "up" and _device_of(events[s]["json"])[0] in registered
    ]
    for stem in stems:
        assert _post(client, "up", events[stem]["pb"], PROTOBUF).status_code == 200
    rows = conn.execute(
        "SELECT dedup_id::text, time, f_cnt, f_port, payload FROM uplinks ORDER BY time"
    ).fetchall()
    expected = []
    for stem in stems:
        message: Any = decode_event("up", events[stem]["json"])
        expected.append(
            (
                message.deduplication_id,
                message.time.ToDatetime(tzinfo=UTC),
                message.f_cnt,
                message.f_port,
                message.data,
            )
        )
    assert rows == sorted(expected, key=lambda r: r[1])


def test_join_and_status_of_a_registered_device_are_stored_as_device_events(
    client: TestClient,
    conn: psycopg.Connection,
    settings: Settings,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
) -> None:
    """Join and status carry no payload: any registered model stores them."""
    tenant_id = tenants.id_for_slug(conn, "amsterdam")
    devices = {}
    for kind in ("join", "status"):
        dev_eui, model, name = _device_of(events[kind]["json"])
        if dev_eui not in registered:
            model = codecs.models()[0]
        devices[kind] = service.register(
            conn,
            settings,
            tenant_id=tenant_id,
            device=DeviceCreate(dev_eui=dev_eui, model=model, name=name),
        )[1]
    for kind in ("join", "status"):
        assert _post(client, kind, events[kind]["pb"], PROTOBUF).status_code == 200
    stored = conn.execute(
        "SELECT kind, event_key, device_id, dev_eui FROM device_events ORDER BY kind"
    ).fetchall()
    assert stored == [
        (
            kind,
            decode_event(kind, events[kind]["json"]).deduplication_id,  # type: ignore[attr-defined]
            devices[kind]["id"],
            devices[kind]["dev_eui"],
        )
        for kind in ("join", "status")
    ]
    status_time = decode_event("status", events["status"]["json"]).time.ToDatetime(tzinfo=UTC)  # type: ignore[attr-defined]
    assert _stored_readings(conn, devices["status"]["id"]) == Counter(
        {(status_time, "battery", 88.5): 1, (status_time, "link_margin", 7.0): 1}
    )
    assert conn.execute("SELECT count(*) FROM ingest_rejects").fetchone() == (0,)


def test_undecodable_payload_keeps_the_uplink_and_records_why(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
) -> None:
    body = json.loads(events[EM300]["json"])
    body["data"] = base64.b64encode(b"\xff\x01").decode()
    dev_eui = body["deviceInfo"]["devEui"]
    assert dev_eui in registered
    assert _post(client, "up", json.dumps(body).encode(), JSON).status_code == 200
    assert conn.execute("SELECT dedup_id::text, payload FROM uplinks").fetchall() == [
        (body["deduplicationId"], b"\xff\x01")
    ]
    assert conn.execute("SELECT reason, dev_eui, tenant_id FROM ingest_rejects").fetchall() == [
        ("undecodable_payload", dev_eui, registered[dev_eui]["tenant_id"])
    ]
    assert _counts(conn)["readings"] == 0


def _with_field(raw: bytes, path: tuple[str, ...], value: object) -> bytes:
    body = json.loads(raw)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("event", "stem", "path", "value"),
    [
        pytest.param("up", EM300, ("deviceInfo", "devEui"), 2414136225107, id="numeric-deveui"),
        pytest.param("up", EM300, ("deduplicationId",), 12, id="numeric-deduplication-id"),
        pytest.param("up", EM300, ("txInfo",), "868.3 MHz", id="txinfo-string"),
        pytest.param("up", EM300, ("rxInfo",), [{"snr": "n/a"}, {"snr": 7.5}], id="snr-string"),
        pytest.param("status", "status", ("batteryLevel",), "high", id="battery-string"),
    ],
)
def test_event_with_wrongly_typed_fields_is_answered_and_does_not_block_ingest(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    event: str,
    stem: str,
    path: tuple[str, ...],
    value: object,
) -> None:
    """A hand-made or buggy event is stored or rejected; the events behind it still flow."""
    body = _with_field(events[stem]["json"], path, value)
    responses: list[Any] = []
    poster = threading.Thread(
        target=lambda: responses.append(_post(client, event, body, JSON)), daemon=True
    )
    poster.start()
    try:
        wait_until(lambda: responses, timeout=2, interval=0.05)
    finally:
        if not responses:
            # the writer retries the batch forever: let it through so the app can stop
            monkeypatch.setattr(pipeline_module, "assemble", lambda *args, **kwargs: Batch())
            poster.join(timeout=60)
    assert responses[0].status_code == 200
    counts = _counts(conn)
    assert counts["uplinks"] + counts["device_events"] + counts["ingest_rejects"] == 1, counts

    good = events[EM300]["json"]
    assert _post(client, "up", good, JSON).status_code == 200
    assert conn.execute(
        "SELECT count(*) FROM uplinks WHERE dedup_id = %s",
        (json.loads(good)["deduplicationId"],),
    ).fetchone() == (1,)


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        pytest.param(b'{"deviceInfo": {"devEui": ', JSON, "invalid_json", id="truncated-json"),
        pytest.param(b"{\xff\xfe garbage", JSON, "invalid_json", id="binary-after-brace"),
        pytest.param(b"\x0a\x10abc", PROTOBUF, "invalid_protobuf", id="truncated-protobuf"),
        pytest.param(b"\xff\xff\xff\xff", PROTOBUF, "invalid_protobuf", id="garbage-bytes"),
    ],
)
def test_garbage_body_is_accepted_and_kept_as_a_reject(
    client: TestClient, conn: psycopg.Connection, body: bytes, headers: dict[str, str], reason: str
) -> None:
    response = _post(client, "up", body, headers)
    assert response.status_code == 200, response.text
    rejects = conn.execute("SELECT reason, source, event, raw FROM ingest_rejects").fetchall()
    assert rejects == [(reason, "http", "up", body)]
    assert _counts(conn) == {"uplinks": 0, "device_events": 0, "readings": 0, "ingest_rejects": 1}


def test_unsupported_event_type_is_kept_as_a_reject(
    client: TestClient, conn: psycopg.Connection, events: dict[str, dict[str, bytes]]
) -> None:
    body = events[EM300]["json"]
    assert _post(client, "foo", body, JSON).status_code == 200
    assert conn.execute("SELECT reason, event FROM ingest_rejects").fetchall() == [
        ("unsupported_event", "foo")
    ]


@pytest.mark.parametrize("event", ["txack", "ack", "location", "integration"])
def test_events_with_nothing_to_store_are_not_an_error(
    client: TestClient, conn: psycopg.Connection, events: dict[str, dict[str, bytes]], event: str
) -> None:
    body = events[EM300]["json"]
    response = _post(client, event, body, JSON)
    assert response.status_code == 200
    assert _counts(conn) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
    ],
)
def test_event_without_the_token_is_401_and_stores_nothing(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    headers: dict[str, str],
) -> None:
    body = events[EM300]["json"]
    response = client.post(URL, params={"event": "up"}, content=body, headers={**JSON, **headers})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert _counts(conn) == dict.fromkeys(TABLES, 0)


def test_only_the_configured_ingest_token_opens_the_route(
    settings: Settings,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    registered: dict[str, dict[str, Any]],
) -> None:
    ingest_settings = settings.model_copy(
        update={"http_ingest_token": SecretStr("chirpstack-secret")}
    )
    stem = EM300
    with TestClient(create_app(ingest_settings)) as client:
        default_token = _post(client, "up", events[stem]["json"], JSON)
        assert default_token.status_code == 401
        ingest_token = client.post(
            URL,
            params={"event": "up"},
            content=events[stem]["json"],
            headers={**JSON, "Authorization": "Bearer chirpstack-secret"},
        )
        assert ingest_token.status_code == 200
    assert sum(_counts(conn).values()) > 0


def test_an_empty_ingest_token_closes_the_route_instead_of_opening_it(
    settings: Settings, conn: psycopg.Connection, events: dict[str, dict[str, bytes]]
) -> None:
    """CIVICSENSE_HTTP_INGEST_TOKEN= (set but empty) must not mean "no token needed"."""
    empty = settings.model_copy(update={"http_ingest_token": SecretStr("")})
    with TestClient(create_app(empty)) as client:
        response = client.post(URL, params={"event": "up"}, content=events[EM300]["json"],
                               headers=JSON)  # fmt: skip
        assert response.status_code == 503
    assert _counts(conn) == dict.fromkeys(TABLES, 0)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"event": "UP!"}, id="punctuation"),
        pytest.param({"event": "UP"}, id="uppercase"),
        pytest.param({"event": ""}, id="empty"),
        pytest.param({"event": "x" * 17}, id="too-long"),
        pytest.param({}, id="missing"),
    ],
)
def test_bad_event_query_is_422_and_stores_nothing(
    client: TestClient,
    conn: psycopg.Connection,
    events: dict[str, dict[str, bytes]],
    params: dict[str, str],
) -> None:
    body = events[EM300]["json"]
    response = client.post(URL, params=params, content=body, headers={**AUTH, **JSON})
    assert response.status_code == 422
    assert response.json()["detail"]
    assert _counts(conn) == dict.fromkeys(TABLES, 0)


def test_body_over_256_kib_is_413_and_stores_nothing(
    client: TestClient, conn: psycopg.Connection
) -> None:
    response = _post(client, "up", b"{" + b" " * (256 * 1024), JSON)
    assert response.status_code == 413
    assert "detail" in response.json()
    assert _counts(conn) == dict.fromkeys(TABLES, 0)


def test_body_of_exactly_256_kib_is_accepted(client: TestClient, conn: psycopg.Connection) -> None:
    body = b"{" + b" " * (256 * 1024 - 1)
    assert _post(client, "up", body, JSON).status_code == 200
    assert conn.execute("SELECT reason, length(raw) FROM ingest_rejects").fetchall() == [
        ("invalid_json", 256 * 1024)
    ]
