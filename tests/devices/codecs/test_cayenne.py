"""Cayenne LPP: `[channel][type][value BE]` records on any application port."""

from __future__ import annotations

import pytest

from devices.codecs import CodecError, Reading, decode, encode

LPP = "cayenne-lpp"
# go-cayenne-lib TestDecode "Happy flow: uplink": every standard type once, channels 1..13
EVERY_TYPE = (
    "0100ff 020164 0302154a 0403eab6 056501f4 066632 0767ff64 0868a0 0971fe58000f0682"
    " 0a7329ef 0b8601630231fe66 0c8807fd8700bef500086a 0d8807fd87ff410c00086a"
)


def test_spec_example_with_two_temperature_sensors() -> None:
    readings = decode(LPP, 1, bytes.fromhex("03670110056700ff"))
    assert readings == [Reading("temperature", 27.2), Reading("temperature", 25.5)]


def test_repeated_quantity_is_listed_lowest_channel_first() -> None:
    readings = decode(LPP, 1, bytes.fromhex("056700ff 03670110 0468a0"))
    assert readings == [
        Reading("temperature", 27.2),
        Reading("humidity", 80.0),
        Reading("temperature", 25.5),
    ]


def test_negative_temperature_is_signed() -> None:
    assert decode(LPP, 1, bytes.fromhex("0167ffd7")) == [Reading("temperature", -4.1)]


def test_humidity_is_in_half_percent_steps() -> None:
    assert decode(LPP, 1, bytes.fromhex("026861")) == [Reading("humidity", 48.5)]


def test_every_standard_type_is_read_and_only_vocabulary_ones_give_readings() -> None:
    readings = decode(LPP, 1, bytes.fromhex(EVERY_TYPE))
    assert readings == [
        Reading("light", 500.0),
        Reading("temperature", -15.6),
        Reading("humidity", 80.0),
        Reading("pressure", 1073.5),
    ]


def test_frame_of_types_outside_the_vocabulary_carries_no_reading() -> None:
    # spec example: accelerometer only
    assert decode(LPP, 1, bytes.fromhex("067104d2fb2e0000")) == []


def test_same_channel_may_carry_several_types() -> None:
    readings = decode(LPP, 1, bytes.fromhex("01670110 016861 0173278d 01650ce5"))
    assert readings == [
        Reading("temperature", 27.2),
        Reading("humidity", 48.5),
        Reading("pressure", 1012.5),
        Reading("light", 3301.0),
    ]


def test_same_channel_and_type_twice_is_rejected() -> None:
    with pytest.raises(CodecError, match="channel 1 sends temperature twice"):
        decode(LPP, 1, bytes.fromhex("01670110 016700ff"))


@pytest.mark.parametrize("fport", [1, 25, 223])
def test_any_application_port_is_accepted(fport: int) -> None:
    assert decode(LPP, fport, bytes.fromhex("49650000")) == [Reading("light", 0.0)]


@pytest.mark.parametrize("fport", [0, 224, 255])
def test_mac_and_reserved_ports_are_rejected(fport: int) -> None:
    with pytest.raises(CodecError, match=f"fPort {fport}"):
        decode(LPP, fport, bytes.fromhex("49650000"))


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(CodecError, match="empty"):
        decode(LPP, 1, b"")


@pytest.mark.parametrize("payload", ["01", "0167011003"])
def test_lone_channel_byte_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="truncated record header"):
        decode(LPP, 1, bytes.fromhex(payload))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("0167ff", "temperature on channel 1 at byte 0 needs 2 bytes, 1 left"),
        ("01670110 0273", "barometer on channel 2 at byte 4 needs 2 bytes, 0 left"),
        ("0c8807fd8700bef50008", "GPS location on channel 12 at byte 0 needs 9 bytes, 8 left"),
    ],
)
def test_truncated_value_is_rejected(payload: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode(LPP, 1, bytes.fromhex(payload))


@pytest.mark.parametrize("kind", ["04", "64", "74", "7d", "ff"])
def test_unknown_type_is_rejected(kind: str) -> None:
    with pytest.raises(CodecError, match=f"unknown type {kind.upper()} on channel 1"):
        decode(LPP, 1, bytes.fromhex(f"01670110 01{kind}0000"))


def test_encode_puts_each_quantity_on_its_channel() -> None:
    readings = {"temperature": 21.5, "humidity": 48.5, "pressure": 1012.5, "light": 3301}
    fport, payload = encode(LPP, readings)
    assert (fport, payload) == (1, bytes.fromhex("016700d7 026861 0373278d 04650ce5"))
    assert {r.quantity: r.value for r in decode(LPP, fport, payload)} == readings


@pytest.mark.parametrize(
    "readings",
    [
        {},
        {"co2": 400},
        {"humidity": 200},  # u8 / 2: 127.5 %RH at most
        {"light": 70_000},
        {"temperature": float("nan")},
    ],
)
def test_encode_rejects_what_the_format_cannot_carry(readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(LPP, readings)
