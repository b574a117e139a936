"""Milesight AM103 and EM300-SLD: `[channel][type][value LE]` records on fPort 85."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.codecs import CodecError, Reading, decode, encode

AM103 = "milesight-am103"
EM300_SLD = "milesight-em300-sld"
# power on, IPSO version, serial number, hardware, firmware version, LoRaWAN class
POWER_ON = "ff0bff" + "ff0101" + "ff166791d19604050005" + "ff090140" + "ff0a0114" + "ff0f00"


def values_of(readings: list[Reading]) -> dict[str, float]:
    return {r.quantity: r.value for r in readings}


def values(readings: list[Reading]) -> dict[str, float]:
    """Current values by quantity, checking that nothing is history."""
    assert all(r.timestamp is None and r.offset == 0 for r in readings), readings
    return values_of(readings)


def test_full_am103_frame_gives_every_quantity() -> None:
    readings = decode(AM103, 85, bytes.fromhex("0175640367180104686d077dc501"))
    assert values(readings) == {"battery": 100, "temperature": 28.0, "humidity": 54.5, "co2": 453}


def test_negative_temperature_is_signed() -> None:
    assert values(decode(AM103, 85, bytes.fromhex("0367c1ff"))) == {"temperature": -6.3}


def test_truncated_co2_is_rejected() -> None:
    with pytest.raises(CodecError, match="needs 2 bytes"):
        decode(AM103, 85, bytes.fromhex("01755c077de7"))


def test_lone_channel_id_is_rejected() -> None:
    with pytest.raises(CodecError, match="truncated record header"):
        decode(AM103, 85, bytes.fromhex("01755c03"))


def test_unknown_channel_is_rejected() -> None:
    with pytest.raises(CodecError, match="unknown channel 09 73"):
        decode(AM103, 85, bytes.fromhex("01755c09733f27"))


def test_each_model_knows_only_its_own_channels() -> None:
    with pytest.raises(CodecError, match="unknown channel 05 00"):
        decode(AM103, 85, bytes.fromhex("050001"))
    with pytest.raises(CodecError, match="unknown channel 07 7D"):
        decode(EM300_SLD, 85, bytes.fromhex("077dc501"))


def test_empty_payload_is_rejected() -> None:
    with pytest.raises(CodecError, match="empty"):
        decode(EM300_SLD, 85, b"")


def test_mac_command_port_is_rejected() -> None:
    with pytest.raises(CodecError, match="fPort 0"):
        decode(AM103, 0, bytes.fromhex("01755c"))


def test_leak_and_normal_states() -> None:
    assert values(decode(EM300_SLD, 85, bytes.fromhex("050001"))) == {"leak": 1}
    assert values(decode(EM300_SLD, 85, bytes.fromhex("050000"))) == {"leak": 0}


def test_leak_state_outside_zero_one_is_rejected() -> None:
    with pytest.raises(CodecError, match="leak"):
        decode(EM300_SLD, 85, bytes.fromhex("050002"))


def test_device_information_frame_carries_no_reading() -> None:
    assert decode(AM103, 85, bytes.fromhex(POWER_ON)) == []
    assert decode(EM300_SLD, 85, bytes.fromhex(POWER_ON)) == []


def test_readings_after_device_information_are_decoded() -> None:
    readings = decode(EM300_SLD, 85, bytes.fromhex(POWER_ON + "01755c050001"))
    assert values(readings) == {"battery": 92, "leak": 1}


def test_truncated_serial_number_is_rejected() -> None:
    with pytest.raises(CodecError, match="FF 16"):
        decode(AM103, 85, bytes.fromhex("ff166791d196"))


def test_history_record_keeps_its_own_timestamp() -> None:
    readings = decode(EM300_SLD, 85, bytes.fromhex("20ce9e74466310015d01"))
    when = datetime(2022, 10, 12, 8, 2, 38, tzinfo=UTC)  # 1665561758
    assert readings == [
        Reading("temperature", 27.2, timestamp=when),
        Reading("humidity", 46.5, timestamp=when),
        Reading("leak", 1.0, timestamp=when),
    ]


def test_am103_history_record_carries_co2() -> None:
    readings = decode(AM103, 85, bytes.fromhex("20ce" + "9e744663" + "1801" + "6d" + "c501"))
    assert values_of(readings) == {"temperature": 28.0, "humidity": 54.5, "co2": 453}
    assert {r.timestamp for r in readings} == {datetime(2022, 10, 12, 8, 2, 38, tzinfo=UTC)}


def test_history_is_not_mistaken_for_current_values() -> None:
    readings = decode(EM300_SLD, 85, bytes.fromhex("20ce9e74466310015d01" + "0367f000"))
    current = [r for r in readings if r.timestamp is None]
    assert current == [Reading("temperature", 24.0)]
    assert [r.value for r in readings if r.quantity == "temperature"] == [27.2, 24.0]


def test_truncated_history_record_is_rejected() -> None:
    with pytest.raises(CodecError, match="needs 8 bytes"):
        decode(EM300_SLD, 85, bytes.fromhex("20ce9e74466310015d"))
    with pytest.raises(CodecError, match="needs 9 bytes"):
        decode(AM103, 85, bytes.fromhex("20ce9e74466310015dc5"))


def test_encode_writes_only_the_given_channels_on_port_85() -> None:
    assert encode(AM103, {"co2": 453, "temperature": 28}) == (85, bytes.fromhex("03671801077dc501"))
    assert encode(EM300_SLD, {"leak": 1}) == (85, bytes.fromhex("050001"))


def test_encode_rounds_to_the_format_resolution() -> None:
    fport, payload = encode(AM103, {"temperature": 21.26, "humidity": 40.3})
    assert values(decode(AM103, fport, payload)) == {"temperature": 21.3, "humidity": 40.5}


@pytest.mark.parametrize(
    ("model", "readings"),
    [
        (AM103, {"leak": 1}),
        (AM103, {}),
        (AM103, {"humidity": 128}),
        (AM103, {"co2": -1}),
        (AM103, {"temperature": float("nan")}),
        (EM300_SLD, {"leak": 0.5}),
        (EM300_SLD, {"co2": 400}),
    ],
)
def test_encode_rejects_what_cannot_be_carried(model: str, readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(model, readings)
