"""Elsys ERS family: repeated `[type][value BE]` records, one decoder for every model."""

from __future__ import annotations

import base64

import pytest

from devices.codecs import CodecError, Reading, decode, encode, models

ERS_CO2 = "elsys-ers-co2"
ERS = "elsys-ers"
ERS_LITE = "elsys-ers-lite"
ERS_SOUND = "elsys-ers-sound"

# `data` of the ChirpStack v4 uplink shared/chirpstack-events/up_elsys-ers-co2.json (the TTN device
# repository's ERS CO2 example): 22.6 °C, 41 %RH, 39 lux, 6 motions, 776 ppm
EVENT_DATA = "AQDiAikEACcFBgYDCA=="
# temperature, humidity, light, motion, CO2 and VDD, in the vendor's order
FULL = "010352" + "023d" + "040493" + "0502" + "0608fe" + "070cb5"


def values(readings: list[Reading]) -> dict[str, float]:
    """Current values by quantity, checking that nothing is history and nothing repeats."""
    assert all(r.timestamp is None and r.offset == 0 for r in readings), readings
    assert len({r.quantity for r in readings}) == len(readings), readings
    return {r.quantity: r.value for r in readings}


def test_chirpstack_event_payload_gives_the_room_readings() -> None:
    readings = decode(ERS_CO2, 1, base64.b64decode(EVENT_DATA))
    assert values(readings) == {
        "temperature": 22.6,
        "humidity": 41,
        "light": 39,
        "motion": 6,
        "co2": 776,
    }


def test_vdd_in_millivolts_is_the_battery_voltage_in_volts() -> None:
    readings = decode(ERS_CO2, 5, bytes.fromhex(FULL))
    assert values(readings) == {
        "temperature": 85.0,
        "humidity": 61,
        "light": 1171,
        "motion": 2,
        "co2": 2302,
        "battery_voltage": 3.253,
    }


def test_negative_temperature_is_signed() -> None:
    assert values(decode(ERS_CO2, 5, bytes.fromhex("01ffe5"))) == {"temperature": -2.7}


def test_records_may_come_in_any_order() -> None:
    shuffled = "0605a6" + "070d37" + "0245" + "0508" + "01018d" + "040473"
    assert values(decode(ERS_CO2, 5, bytes.fromhex(shuffled))) == {
        "co2": 1446,
        "battery_voltage": 3.383,
        "humidity": 69,
        "motion": 8,
        "temperature": 39.7,
        "light": 1139,
    }


def test_value_cut_short_is_rejected() -> None:
    with pytest.raises(CodecError, match=r"type 07 \(vdd\) at byte 13 needs 2 bytes, 1 left"):
        decode(ERS_CO2, 5, bytes.fromhex(FULL[:-2]))
    with pytest.raises(
        CodecError, match=r"type 01 \(temperature\) at byte 2 needs 2 bytes, 0 left"
    ):
        decode(ERS_CO2, 5, bytes.fromhex("023d01"))


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(CodecError, match="unknown type FF at byte 0"):
        decode(ERS_CO2, 1, bytes.fromhex("ff0100e2"))
    with pytest.raises(CodecError, match="unknown type 20 at byte 3"):  # between 1C and 3D
        decode(ERS_CO2, 5, bytes.fromhex("0100e2" + "2001"))


def test_empty_payload_and_mac_port_are_rejected() -> None:
    with pytest.raises(CodecError, match="empty"):
        decode(ERS_CO2, 5, b"")
    with pytest.raises(CodecError, match="fPort 0"):
        decode(ERS_CO2, 0, bytes.fromhex(FULL))


def test_other_elsys_types_are_checked_and_skipped() -> None:
    # acceleration (3 bytes), ERS Sound peak and average (2), pulse count (4), debug (4)
    frame = "03fe013f" + "0100e2" + "154a32" + "0b00000102" + "0229" + "3d01020304"
    assert values(decode(ERS_SOUND, 5, bytes.fromhex(frame))) == {
        "temperature": 22.6,
        "humidity": 41,
    }


def test_skipped_type_cut_short_is_rejected() -> None:
    with pytest.raises(CodecError, match=r"type 15 \(sound\) at byte 3 needs 2 bytes, 1 left"):
        decode(ERS_SOUND, 5, bytes.fromhex("0100e2" + "154a"))
    grideye = "13" + "15" + "00" * 63  # a reference byte and 63 of the 64 pixels
    with pytest.raises(CodecError, match="needs 65 bytes, 64 left"):
        decode(ERS_CO2, 5, bytes.fromhex(grideye))


def test_grideye_block_of_65_bytes_is_skipped_whole() -> None:
    frame = "13" + "15" + "01" * 64 + "0608fe"
    assert values(decode(ERS_CO2, 5, bytes.fromhex(frame))) == {"co2": 2302}


def test_settings_block_is_skipped_by_its_length() -> None:
    frame = "3e" + "04" + "0805" + "0a01" + "0100e2"  # settings: port 5, ack on
    assert values(decode(ERS_CO2, 5, bytes.fromhex(frame))) == {"temperature": 22.6}


def test_settings_block_cut_short_is_rejected() -> None:
    with pytest.raises(CodecError, match="settings at byte 0 need 4 bytes, 2 left"):
        decode(ERS_CO2, 5, bytes.fromhex("3e04" + "0805"))
    with pytest.raises(CodecError, match="no length byte"):
        decode(ERS_CO2, 5, bytes.fromhex("0100e2" + "3e"))


def test_a_model_reports_only_its_own_quantities() -> None:
    readings = decode(ERS_LITE, 5, bytes.fromhex(FULL))
    assert values(readings) == {"temperature": 85.0, "humidity": 61, "battery_voltage": 3.253}
    assert "co2" not in values(decode(ERS, 5, bytes.fromhex(FULL)))


def test_pressure_record_is_four_bytes() -> None:
    # an ELT-style pressure record (u32 / 1000 hPa) is validated whole, the record after it decodes
    frame = "14000f6ff8" + "0100e2"
    assert values(decode(ERS_CO2, 5, bytes.fromhex(frame))) == {"temperature": 22.6}


def test_every_ers_model_is_registered() -> None:
    assert {ERS_CO2, ERS, ERS_LITE, ERS_SOUND} <= set(models())


def test_encode_writes_big_endian_records_on_port_5() -> None:
    readings = {"battery_voltage": 3.253, "co2": 776, "temperature": 22.6}
    assert encode(ERS_CO2, readings) == (5, bytes.fromhex("0100e2" + "060308" + "070cb5"))


def test_encoded_frame_decodes_back() -> None:
    readings = {"temperature": -4.2, "humidity": 55, "light": 320, "motion": 3}
    fport, payload = encode(ERS, readings)
    assert values(decode(ERS, fport, payload)) == readings


@pytest.mark.parametrize(
    ("model", "readings"),
    [
        (ERS_CO2, {}),
        (ERS_CO2, {"humidity": 256}),
        (ERS_CO2, {"co2": -1}),
        (ERS_CO2, {"temperature": float("inf")}),
        (ERS_CO2, {"battery_voltage": 70}),
        (ERS_CO2, {"leak": 1}),
        (ERS_LITE, {"co2": 400}),
    ],
)
def test_encode_rejects_what_cannot_be_carried(model: str, readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(model, readings)
