"""Bosch Parking Lot Sensor (TPS110): the fPort gives the frame type."""

from __future__ import annotations

import pytest

from devices.codecs import CodecError, Reading, decode, encode

TPS110 = "bosch-tps110"
STARTUP = "240300007503000000000000001d0203"  # debug codes 804 and 885, firmware 0.29.2


def values(readings: list[Reading]) -> dict[str, float]:
    return {r.quantity: r.value for r in readings}


@pytest.mark.parametrize(("byte", "occupied"), [(0x00, 0), (0x01, 1), (0x02, 0), (0xFF, 1)])
def test_parking_status_is_bit_zero(byte: int, occupied: int) -> None:
    assert values(decode(TPS110, 1, bytes([byte]))) == {"occupied": occupied}


@pytest.mark.parametrize("payload", ["", "0100"])
def test_parking_status_of_another_length_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="parking status"):
        decode(TPS110, 1, bytes.fromhex(payload))


def test_heartbeat_without_temperature_reports_occupancy_only() -> None:
    assert decode(TPS110, 2, bytes.fromhex("01")) == [Reading("occupied", 1.0)]


def test_heartbeat_temperature_is_signed() -> None:
    assert values(decode(TPS110, 2, bytes.fromhex("00ec"))) == {"occupied": 0, "temperature": -20}
    assert values(decode(TPS110, 2, bytes.fromhex("0119"))) == {"occupied": 1, "temperature": 25}


def test_heartbeat_longer_than_two_bytes_is_rejected() -> None:
    with pytest.raises(CodecError, match="heartbeat"):
        decode(TPS110, 2, bytes.fromhex("011900"))


def test_startup_frame_takes_occupancy_from_its_last_byte() -> None:
    assert values(decode(TPS110, 3, bytes.fromhex(STARTUP + "01"))) == {"occupied": 1}
    assert values(decode(TPS110, 3, bytes.fromhex(STARTUP + "00"))) == {"occupied": 0}


def test_truncated_startup_frame_is_rejected() -> None:
    with pytest.raises(CodecError, match="start-up: 16 bytes"):
        decode(TPS110, 3, bytes.fromhex(STARTUP))


@pytest.mark.parametrize(
    ("fport", "payload"),
    [
        (4, "001d02"),  # firmware version 0.29.2
        (4, "70b3d5" + "10" + "00" + "00" + "0000123456"),  # device URN
        (5, "00" + "00000123"),  # parking status changes
        (5, "05" + "010203040506" + "07"),  # resets since installation
        (5, "02" + "00" * 18),  # uplinks sent per data rate
        (6, "4e7cc639010400000cef"),  # debug
    ],
)
def test_information_frames_carry_no_reading(fport: int, payload: str) -> None:
    assert decode(TPS110, fport, bytes.fromhex(payload)) == []


@pytest.mark.parametrize(
    ("fport", "payload"),
    [
        (4, "001d"),
        (4, ""),
        (5, ""),
        (5, "00000001"),
        (5, "07" + "00000001"),
        (6, "4e7cc639010400000c"),
    ],
)
def test_information_frames_of_the_wrong_length_are_rejected(fport: int, payload: str) -> None:
    with pytest.raises(CodecError):
        decode(TPS110, fport, bytes.fromhex(payload))


@pytest.mark.parametrize("fport", [0, 7, 9, 85, 224])
def test_other_ports_are_rejected(fport: int) -> None:
    with pytest.raises(CodecError, match=f"fPort {fport}"):
        decode(TPS110, fport, b"\x01")


def test_encode_occupancy_alone_is_a_parking_status() -> None:
    assert encode(TPS110, {"occupied": 1}) == (1, b"\x01")


def test_encode_with_temperature_is_a_heartbeat() -> None:
    assert encode(TPS110, {"occupied": 0, "temperature": -3.4}) == (2, bytes.fromhex("00fd"))


@pytest.mark.parametrize(
    "readings",
    [{}, {"temperature": 20}, {"occupied": 2}, {"occupied": 1, "temperature": 130}, {"co2": 1}],
)
def test_encode_rejects_what_the_format_cannot_carry(readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(TPS110, readings)
