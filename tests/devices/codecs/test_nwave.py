"""Nwave NPS405 parking sensor: the fPort gives the message type."""

from __future__ import annotations

import pytest

from devices.codecs import CodecError, Reading, decode, encode

NPS405 = "nwave-nps405"
HEARTBEAT = "00d3d800590b"  # vendor example: free, 3.344 V, -10 °C
STARTUP = "020409" + "02"  # firmware 2.4.9, reset cause power-on; the occupancy byte follows


def current(readings: list[Reading]) -> dict[str, float]:
    return {r.quantity: r.value for r in readings if r.offset == 0 and r.timestamp is None}


def history(readings: list[Reading]) -> list[Reading]:
    return [r for r in readings if r.offset != 0 or r.timestamp is not None]


def status_byte(occupied: int, compressed_duration: int) -> bytes:
    return bytes([compressed_duration << 1 | occupied])


@pytest.mark.parametrize(("byte", "occupied"), [(0x00, 0), (0x01, 1), (0x95, 1), (0xEE, 0)])
def test_parking_status_occupancy_is_bit_zero(byte: int, occupied: int) -> None:
    assert current(decode(NPS405, 1, bytes([byte]))) == {"occupied": occupied}


def test_parking_status_dates_the_previous_state_from_its_duration() -> None:
    # vendor example 0x95: occupied, the bay had been free for 74 minutes
    readings = decode(NPS405, 1, bytes.fromhex("95"))
    assert readings == [Reading("occupied", 1.0), Reading("occupied", 0.0, offset=-74 * 60.0)]


@pytest.mark.parametrize(
    ("compressed", "minutes"),
    [(1, 1), (89, 89), (90, 90), (119, 235), (120, 240), (126, 600)],
)
def test_compressed_duration_follows_the_vendor_bands(compressed: int, minutes: int) -> None:
    readings = decode(NPS405, 1, status_byte(0, compressed))
    assert history(readings) == [Reading("occupied", 1.0, offset=-60.0 * minutes)]


def test_previous_state_of_unknown_start_gives_no_history() -> None:
    # 127 is the overflow code (11 hours or more): when it began is unknown
    assert decode(NPS405, 1, status_byte(1, 127)) == [Reading("occupied", 1.0)]


def test_previous_state_under_a_minute_is_not_a_second_current_value() -> None:
    assert decode(NPS405, 1, status_byte(1, 0)) == [Reading("occupied", 1.0)]


@pytest.mark.parametrize("payload", ["", "9500"])
def test_parking_status_of_another_length_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="parking status"):
        decode(NPS405, 1, bytes.fromhex(payload))


def test_heartbeat_gives_occupancy_battery_voltage_and_temperature() -> None:
    readings = decode(NPS405, 2, bytes.fromhex(HEARTBEAT))
    assert not history(readings)
    assert current(readings) == {"occupied": 0, "battery_voltage": 3.344, "temperature": -10.0}


@pytest.mark.parametrize(("battery", "volts"), [(0x00, 2.5), (0xAF, 3.2), (0xFF, 3.52)])
def test_heartbeat_battery_is_2500_plus_4_mv_per_step(battery: int, volts: float) -> None:
    payload = bytes([0x01, battery, 0x14]) + bytes(3)
    assert current(decode(NPS405, 2, payload))["battery_voltage"] == pytest.approx(volts)


@pytest.mark.parametrize(
    ("raw", "celsius"), [(0x00, 10.0), (0x47, 45.5), (0xD8, -10.0), (0x80, -54.0), (0x7F, 73.5)]
)
def test_heartbeat_temperature_is_signed_half_degrees_above_ten(raw: int, celsius: float) -> None:
    payload = bytes([0x00, 0xD3, raw]) + bytes(3)
    assert current(decode(NPS405, 2, payload))["temperature"] == celsius


@pytest.mark.parametrize("payload", ["", "00d3d8", "00d3d80059", "00d3d800590b00"])
def test_heartbeat_of_another_length_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="heartbeat"):
        decode(NPS405, 2, bytes.fromhex(payload))


@pytest.mark.parametrize(("last", "occupied"), [("00", 0), ("01", 1)])
def test_startup_takes_occupancy_from_its_last_byte(last: str, occupied: int) -> None:
    assert decode(NPS405, 3, bytes.fromhex(STARTUP + last)) == [Reading("occupied", occupied)]


def test_truncated_startup_is_rejected() -> None:
    with pytest.raises(CodecError, match="start-up: 4 bytes"):
        decode(NPS405, 3, bytes.fromhex(STARTUP))


@pytest.mark.parametrize(
    "payload",
    [
        "d11f345678",  # vendor example: tag 1F345678
        "d1201f345678",  # newer firmware: tag battery byte before the tag id
    ],
)
def test_tag_registration_reports_occupancy_without_dating_it(payload: str) -> None:
    assert decode(NPS405, 10, bytes.fromhex(payload)) == [Reading("occupied", 1.0)]


def test_tag_registration_without_parking_state_carries_no_reading() -> None:
    assert decode(NPS405, 10, bytes.fromhex("d01f345678")) == []


@pytest.mark.parametrize("payload", ["", "d11f3456", "d1201f34567800"])
def test_tag_registration_of_another_length_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="tag registration"):
        decode(NPS405, 10, bytes.fromhex(payload))


def test_debug_frame_carries_no_reading() -> None:
    assert decode(NPS405, 6, bytes.fromhex("0102030405")) == []


def test_empty_debug_frame_is_rejected() -> None:
    with pytest.raises(CodecError, match="debug: empty"):
        decode(NPS405, 6, b"")


@pytest.mark.parametrize("fport", [0, 4, 5, 7, 85, 224])
def test_other_ports_are_rejected(fport: int) -> None:
    with pytest.raises(CodecError, match=f"fPort {fport}"):
        decode(NPS405, fport, b"\x01")


def test_encode_occupancy_alone_is_a_parking_status() -> None:
    assert encode(NPS405, {"occupied": 1}) == (1, b"\x01")


def test_encode_with_battery_and_temperature_is_a_heartbeat() -> None:
    fport, payload = encode(NPS405, {"occupied": 0, "battery_voltage": 3.344, "temperature": -10})
    assert (fport, payload) == (2, bytes.fromhex("00d3d8000000"))
    assert current(decode(NPS405, fport, payload)) == {
        "occupied": 0,
        "battery_voltage": 3.344,
        "temperature": -10.0,
    }


@pytest.mark.parametrize(
    "readings",
    [
        {},
        {"temperature": 20},  # no occupancy
        {"occupied": 1, "temperature": 20},  # a heartbeat needs the battery too
        {"occupied": 2},
        {"occupied": 1, "battery_voltage": 3.6, "temperature": 20},
        {"occupied": 1, "battery_voltage": 3.0, "temperature": 80},
        {"occupied": 1, "battery_voltage": float("nan"), "temperature": 20},
        {"occupied": 1, "co2": 400},
    ],
)
def test_encode_rejects_what_the_format_cannot_carry(readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(NPS405, readings)
