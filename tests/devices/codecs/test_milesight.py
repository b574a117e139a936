"""Milesight AM103, AM307 and EM300-SLD: `[channel][type][value LE]` records on fPort 85."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.codecs import CodecError, Reading, decode, encode

AM103 = "milesight-am103"
AM307 = "milesight-am307"
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
        (AM307, {"light": 6}),
        (AM307, {"light": 2.5}),
        (AM307, {"occupied": 0.5}),
        (AM307, {"leak": 1}),
        (AM307, {"pressure": 7000}),
    ],
)
def test_encode_rejects_what_cannot_be_carried(model: str, readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(model, readings)


# AM307: the vendor README's example, 0367EE00 04687C 050001 06CB02 077DA803 087D2500 09736627
AM307_EXAMPLE = "0367ee00" + "04687c" + "050001" + "06cb02" + "077da803" + "087d2500" + "09736627"
# an AM307 history record: 2022-10-12 08:02:38 UTC, 27.2 °C, 62 %RH (u16), PIR trigger, light 3,
# CO2 936 ppm, TVOC register 133, 1008.6 hPa
AM307_HISTORY = "20ce" + "9e744663" + "1001" + "7c00" + "01" + "03" + "a803" + "8500" + "6627"
WHEN = datetime(2022, 10, 12, 8, 2, 38, tzinfo=UTC)


def test_am307_example_frame_gives_every_quantity() -> None:
    assert values(decode(AM307, 85, bytes.fromhex(AM307_EXAMPLE))) == {
        "temperature": 23.8,
        "humidity": 62.0,
        "occupied": 1,
        "light": 2,
        "co2": 936,
        "tvoc": 0.37,
        "pressure": 1008.6,
    }


def test_am307_battery_and_pressure() -> None:
    readings = decode(AM307, 85, bytes.fromhex("017550" + "09731527"))
    assert values(readings) == {"battery": 80, "pressure": 1000.5}


def test_am307_idle_pir_means_unoccupied() -> None:
    assert values(decode(AM307, 85, bytes.fromhex("050000"))) == {"occupied": 0}


def test_am307_pir_state_outside_idle_and_trigger_is_rejected() -> None:
    with pytest.raises(CodecError, match="occupied: 2"):
        decode(AM307, 85, bytes.fromhex("050002"))


def test_am307_light_is_the_vendor_level_zero_to_five() -> None:
    assert values(decode(AM307, 85, bytes.fromhex("06cb05"))) == {"light": 5}
    with pytest.raises(CodecError, match="light: 6"):
        decode(AM307, 85, bytes.fromhex("06cb06"))


def test_am307_tvoc_is_the_iaq_level() -> None:
    assert values(decode(AM307, 85, bytes.fromhex("087d8500"))) == {"tvoc": 1.33}


def test_am307_tvoc_in_micrograms_is_checked_but_not_reported() -> None:
    readings = decode(AM307, 85, bytes.fromhex("08e6f401" + "0367ee00"))
    assert values(readings) == {"temperature": 23.8}
    with pytest.raises(CodecError, match="08 E6 at byte 0 needs 2 bytes"):
        decode(AM307, 85, bytes.fromhex("08e6f4"))


def test_am307_vendor_example_with_an_am100_pir_record_decodes() -> None:
    # TTN device repository, am307-codec.yaml example 1: its `05 6A` record is the AM100 series'
    readings = decode(AM307, 85, bytes.fromhex("01755c03673401046865056a4900"))
    assert values(readings) == {"battery": 92, "temperature": 30.8, "humidity": 50.5}


def test_am307_stray_trailing_byte_is_rejected() -> None:
    with pytest.raises(CodecError, match="truncated record header at byte 7"):
        decode(AM307, 85, bytes.fromhex("0367100104687005"))


def test_am307_truncated_pressure_is_rejected() -> None:
    with pytest.raises(CodecError, match="09 73 at byte 3 needs 2 bytes, 1 left"):
        decode(AM307, 85, bytes.fromhex("017550" + "097315"))


def test_same_record_is_a_leak_on_em300_sld_and_presence_on_am307() -> None:
    assert values(decode(EM300_SLD, 85, bytes.fromhex("050001"))) == {"leak": 1}
    assert values(decode(AM307, 85, bytes.fromhex("050001"))) == {"occupied": 1}


def test_am307_knows_only_its_own_channels() -> None:
    with pytest.raises(CodecError, match="unknown channel 0A 7D"):  # AM319 formaldehyde
        decode(AM307, 85, bytes.fromhex("0a7d2c01"))
    with pytest.raises(CodecError, match="unknown channel 06 CB"):
        decode(AM103, 85, bytes.fromhex("06cb02"))


def test_am307_device_information_frame_carries_no_reading() -> None:
    assert decode(AM307, 85, bytes.fromhex(POWER_ON)) == []


def test_am307_history_record_keeps_its_own_timestamp() -> None:
    readings = decode(AM307, 85, bytes.fromhex(AM307_HISTORY))
    assert readings == [
        Reading("temperature", 27.2, timestamp=WHEN),
        Reading("humidity", 62.0, timestamp=WHEN),
        Reading("occupied", 1.0, timestamp=WHEN),
        Reading("light", 3.0, timestamp=WHEN),
        Reading("co2", 936.0, timestamp=WHEN),
        Reading("tvoc", 1.33, timestamp=WHEN),
        Reading("pressure", 1008.6, timestamp=WHEN),
    ]


def test_am307_history_in_micrograms_leaves_tvoc_out() -> None:
    readings = decode(AM307, 85, bytes.fromhex("21" + AM307_HISTORY[2:]))
    assert values_of(readings) == {
        "temperature": 27.2,
        "humidity": 62.0,
        "occupied": 1.0,
        "light": 3.0,
        "co2": 936.0,
        "pressure": 1008.6,
    }
    assert {r.timestamp for r in readings} == {WHEN}


def test_am307_history_is_not_mistaken_for_current_values() -> None:
    readings = decode(AM307, 85, bytes.fromhex(AM307_HISTORY + "077d9001"))
    assert [r for r in readings if r.timestamp is None] == [Reading("co2", 400.0)]


def test_am307_history_record_cut_short_is_rejected() -> None:
    with pytest.raises(CodecError, match="20 CE at byte 0 needs 16 bytes, 15 left"):
        decode(AM307, 85, bytes.fromhex(AM307_HISTORY[:-2]))
    with pytest.raises(CodecError, match="needs 16 bytes"):  # an AM103-sized history record
        decode(AM307, 85, bytes.fromhex("20ce9e74466318016dc501"))


def test_am307_history_with_an_impossible_pir_state_is_rejected() -> None:
    with pytest.raises(CodecError, match="occupied: 7"):
        decode(AM307, 85, bytes.fromhex(AM307_HISTORY[:20] + "07" + AM307_HISTORY[22:]))


def test_am307_encode_writes_the_vendor_records() -> None:
    readings = {"occupied": 1, "light": 3, "tvoc": 1.33, "pressure": 1004.7}
    assert encode(AM307, readings) == (
        85,
        bytes.fromhex("050001" + "06cb03" + "087d8500" + "09733f27"),
    )
