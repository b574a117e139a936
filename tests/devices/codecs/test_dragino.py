"""Dragino LWL02 water leak sensor: 10-byte frames on fPort 10, the MOD byte selects the fields."""

from __future__ import annotations

import pytest

from devices.codecs import CodecError, Reading, decode, encode

LWL02 = "dragino-lwl02"


def values(readings: list[Reading]) -> dict[str, float]:
    assert all(r.offset == 0 and r.timestamp is None for r in readings), readings
    return {r.quantity: r.value for r in readings}


def frame(status: int, mode: int, rest: str = "000000" + "000000" + "00") -> bytes:
    return status.to_bytes(2, "big") + bytes([mode]) + bytes.fromhex(rest)


def test_leak_mode_reports_a_leak_and_the_battery_in_volts() -> None:
    # 404 leaks so far, the last one lasted 602 minutes
    readings = decode(LWL02, 10, bytes.fromhex("49c40200019400025a00"))
    assert values(readings) == {"battery_voltage": 2.5, "leak": 1}


def test_leak_mode_without_water() -> None:
    assert values(decode(LWL02, 10, frame(0x0BB8, 2))) == {"battery_voltage": 3.0, "leak": 0}


def test_door_mode_reports_the_door_not_the_leak_bit() -> None:
    open_door = frame(0x8000 | 0x4000 | 0x0BB0, 1, "001371" + "001650" + "01")
    assert values(decode(LWL02, 10, open_door)) == {"battery_voltage": 2.992, "door": 1}
    closed = bytes.fromhex("0bb00100137100165001")
    assert values(decode(LWL02, 10, closed)) == {"battery_voltage": 2.992, "door": 0}


def test_door_and_leak_mode_reports_both() -> None:
    readings = decode(LWL02, 10, bytes.fromhex("4bb90300002500002101"))
    assert values(readings) == {"battery_voltage": 3.001, "door": 0, "leak": 1}
    assert values(decode(LWL02, 10, frame(0x8000 | 0x0A4F, 3))) == {
        "battery_voltage": 2.639,
        "door": 1,
        "leak": 0,
    }


def test_battery_is_the_low_fourteen_bits() -> None:
    assert values(decode(LWL02, 10, frame(0xC000 | 0x0C1C, 3)))["battery_voltage"] == 3.1
    assert values(decode(LWL02, 10, frame(0x3FFF, 2)))["battery_voltage"] == 16.383


def test_vendor_example_of_seven_bytes_is_rejected() -> None:
    # the TTN example "Distance Detection" stops after 7 of the 10 bytes
    with pytest.raises(CodecError, match="7 bytes, expected 10"):
        decode(LWL02, 10, bytes.fromhex("0b880100250001"))


@pytest.mark.parametrize("payload", ["", "0bb8", "0bb802000000000000", "0bb80200000000000000ff"])
def test_frame_of_another_length_is_rejected(payload: str) -> None:
    with pytest.raises(CodecError, match="expected 10"):
        decode(LWL02, 10, bytes.fromhex(payload))


@pytest.mark.parametrize("mode", [0, 4, 7, 0xFF])
def test_unknown_mode_is_rejected(mode: int) -> None:
    with pytest.raises(CodecError, match=f"unknown MOD {mode}"):
        decode(LWL02, 10, frame(0x0C1C, mode))


@pytest.mark.parametrize("fport", [0, 1, 2, 42, 85])
def test_other_ports_are_rejected(fport: int) -> None:
    with pytest.raises(CodecError, match=f"fPort {fport}"):
        decode(LWL02, fport, bytes.fromhex("49c40200019400025a00"))


def test_encode_a_leak_gives_a_leak_mode_frame() -> None:
    fport, payload = encode(LWL02, {"leak": 1, "battery_voltage": 3.109})
    assert (fport, payload) == (10, bytes.fromhex("4c250200000000000000"))
    assert values(decode(LWL02, fport, payload)) == {"battery_voltage": 3.109, "leak": 1}


def test_encode_picks_the_mode_from_the_states_given() -> None:
    assert encode(LWL02, {"door": 1, "battery_voltage": 3.0})[1][2] == 1
    both = encode(LWL02, {"door": 0, "leak": 1, "battery_voltage": 3.0})
    assert both[1][2] == 3
    assert values(decode(LWL02, *both)) == {"battery_voltage": 3.0, "door": 0, "leak": 1}


@pytest.mark.parametrize(
    "readings",
    [
        {},
        {"battery_voltage": 3.0},  # neither a leak nor a door state
        {"leak": 1},  # every frame carries the battery
        {"leak": 2, "battery_voltage": 3.0},
        {"leak": 1, "battery_voltage": 17.0},
        {"leak": 1, "battery_voltage": float("inf")},
        {"leak": 1, "battery_voltage": 3.0, "temperature": 20},
    ],
)
def test_encode_rejects_what_the_format_cannot_carry(readings: dict[str, float]) -> None:
    with pytest.raises(CodecError):
        encode(LWL02, readings)
