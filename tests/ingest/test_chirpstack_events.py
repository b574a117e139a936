"""Parsing real-format ChirpStack v4 events, JSON and protobuf alike."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ingest import chirpstack


def _events(shared_dir: Path, suffix: str) -> dict[str, bytes]:
    return {
        p.stem: p.read_bytes()
        for p in sorted((shared_dir / "chirpstack-events").glob(f"*{suffix}"))
    }


def _kind(stem: str) -> str:
    return stem.split("_")[0]


def test_json_and_protobuf_give_the_same_event(shared_dir: Path) -> None:
    json_events, pb_events = _events(shared_dir, ".json"), _events(shared_dir, ".pb")
    assert json_events.keys() == pb_events.keys() and json_events
    for stem in json_events:
        from_json = chirpstack.parse(_kind(stem), json_events[stem])
        from_pb = chirpstack.parse(_kind(stem), pb_events[stem])
        if isinstance(from_json, chirpstack.Uplink):
            assert from_json == from_pb
        else:
            assert (from_json.kind, from_json.key, from_json.time, from_json.readings) == (
                from_pb.kind,
                from_pb.key,
                from_pb.time,
                from_pb.readings,
            )


def test_omitted_fcnt_reads_as_zero(shared_dir: Path) -> None:
    raw = (
        shared_dir / "chirpstack-events" / "up_milesight-em300-sld_fcnt-omitted.json"
    ).read_bytes()
    assert b"fCnt" not in raw
    uplink = chirpstack.parse("up", raw)
    assert isinstance(uplink, chirpstack.Uplink)
    assert uplink.f_cnt == 0
    assert uplink.dev_eui == "24e124136c225107"
    assert uplink.dedup_id == uuid.UUID("3ac7e3c4-4401-4b8d-9386-a5c902f9202e")
    assert uplink.data == bytes.fromhex("01755c03673401046865050000")
    assert uplink.spreading_factor == 11 and uplink.frequency == 868300000
    assert uplink.best_rx is not None and uplink.best_rx["gatewayId"] == "0016c001f153a14c"


def test_status_event_gives_battery_and_margin_readings(shared_dir: Path) -> None:
    event = chirpstack.parse(
        "status", (shared_dir / "chirpstack-events" / "status.pb").read_bytes()
    )
    assert isinstance(event, chirpstack.DeviceEvent)
    assert dict(event.readings) == {"battery": 88.5, "link_margin": 7.0}


def test_status_on_external_power_has_no_battery_reading() -> None:
    body = (
        b'{"deduplicationId":"bf2a9746-1c8b-49be-a92e-f0b89c8534e5",'
        b'"deviceInfo":{"devEui":"a81758fffe05a3c7"},"margin":3,"externalPowerSource":true}'
    )
    event = chirpstack.parse("status", body)
    assert isinstance(event, chirpstack.DeviceEvent)
    assert dict(event.readings) == {"link_margin": 3.0}


def test_uplink_without_time_takes_the_gateway_time() -> None:
    body = (
        b'{"deviceInfo":{"devEui":"24e124136c225107"},"fPort":85,"data":"AXVc",'
        b'"rxInfo":[{"gatewayId":"0016c001f153a14c","gwTime":"2024-06-11T10:17:02.925012Z"}]}'
    )
    uplink = chirpstack.parse("up", body)
    assert isinstance(uplink, chirpstack.Uplink)
    assert uplink.time.isoformat() == "2024-06-11T10:17:02.925012+00:00"
    # no deduplicationId: a stable id derived from the bytes, so a redelivery is still one
    assert uplink.dedup_id == chirpstack.parse("up", body).dedup_id  # type: ignore[union-attr]


def test_dev_eui_falls_back_to_the_topic() -> None:
    uplink = chirpstack.parse("up", b'{"fPort":1,"data":"AQ=="}', topic_dev_eui="FCD6BD0000000001")
    assert uplink.dev_eui == "fcd6bd0000000001"


@pytest.mark.parametrize(
    ("event", "payload", "reason"),
    [
        ("up", b"{not json", "invalid_json"),
        ("up", b"[1, 2]", "invalid_json"),
        ("up", b"\xff\xff\xff\xff", "invalid_protobuf"),
        ("up", b'{"deviceInfo":{"devEui":"xyz"}}', "invalid_event"),
        ("up", b'{"deviceInfo":{"devEui":"24e124136c225107"},"data":"***"}', "invalid_event"),
        ("up", b'{"deviceInfo":{"devEui":"24e124136c225107"},"fPort":"x"}', "invalid_event"),
        ("up", b'{"deviceInfo":{"devEui":"24e124136c225107"},"time":"yesterday"}', "invalid_event"),
        (
            "up",
            b'{"deviceInfo":{"devEui":"24e124136c225107"},"deduplicationId":"1"}',
            "invalid_event",
        ),
        ("txack", b"{}", "unsupported_event"),
    ],
)
def test_bad_events_raise_event_error_with_reason(event: str, payload: bytes, reason: str) -> None:
    with pytest.raises(chirpstack.EventError) as caught:
        chirpstack.parse(event, payload)
    assert caught.value.reason == reason
