"""Nwave parking sensor (NPS405) codec.

Format (Nwave "LoRaWAN Parking Sensor - Getting Started", application protocol, as decoded by
TTN lorawan-devices `vendor/nwave/nps405.js`): the fPort gives the message type.

| fPort | message | length | content |
|---|---|---|---|
| 1 | parking status | 1 | bit 0 = occupied; bits 7..1 = compressed previous-state duration |
| 2 | heartbeat | 6 | status, battery, temperature, 3 bytes the vendor does not decode |
| 3 | start-up | 5 | firmware version (3), reset cause (1), byte 4 bit 0 = occupied |
| 6 | debug | 1 or more | vendor debug bytes, no reading |
| 10 | SDI tag registration | 5 or 6 | status byte, [tag battery (newer firmware)], u32 tag id |

Heartbeat: byte 0 bit 0 = occupied (bits 7..1 hardware health); byte 1 = battery, 2500 + 4·b mV;
byte 2 = int8 temperature, b / 2 + 10 °C. Tag registration: byte 0 is a parking status whose bit 0
clear means "no parking state given", not "free".

Compressed duration `c` (bits 7..1 of a parking status), in minutes, as the vendor decodes it:

| c | duration | resolution |
|---|---|---|
| 0..89 | c | 1 min |
| 90..119 | 90 + 5·(c − 90) | 5 min (the true duration is up to 4 min longer) |
| 120..126 | 240 + 60·(c − 120) | 60 min (up to 59 min longer) |
| 127 | 660 or more (overflow) | unknown |

The sensor sends a parking status when the state changes, so the previous state (the opposite of
the current one) began `duration` minutes before the uplink: a parking status decodes to the
current `occupied` and a history reading `occupied = previous state` with
`offset = -60 · duration` seconds (the vendor's lower bound). It is not emitted when `c` is 0 (the
previous state lasted under a minute: offset 0 would make it a current value) or 127 (its start is
unknown). A tag registration is not sent at a state change, so its duration is not placed in time.

Units are the vocabulary's: occupied 0/1, battery_voltage V (4 mV steps, 2.5..3.52 V),
temperature °C (0.5 °C steps). The hardware health bits, firmware, reset cause and the tag's id and
battery are not readings. Any other fPort, or a length that does not fit the message, raises
`CodecError`; the heartbeat is taken to be the 6 bytes of the vendor's example (its last three bytes
are kept raw by the vendor's decoder, and sent as zeros by `encode`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .base import CodecError, Quantity, Reading, register

STATUS_PORT = 1
HEARTBEAT_PORT = 2
HEARTBEAT_LENGTH = 6
BATTERY_BASE_MV = 2500
BATTERY_STEP_MV = 4
TEMPERATURE_OFFSET = 10.0  # °C at raw 0
TEMPERATURE_STEP = 0.5  # °C per raw unit


@dataclass(frozen=True, slots=True)
class DurationBand:
    """Compressed codes `first..last` decode to `start + step * (code - first)` minutes."""

    first: int
    last: int
    start: int
    step: int


DURATION_BANDS = (
    DurationBand(0, 89, 0, 1),
    DurationBand(90, 119, 90, 5),
    DurationBand(120, 126, 240, 60),
)
DURATION_OVERFLOW = 127


def previous_state_minutes(code: int) -> int | None:
    """Minutes the previous state lasted (lower bound), None on overflow (660 min or more)."""
    for band in DURATION_BANDS:
        if band.first <= code <= band.last:
            return band.start + band.step * (code - band.first)
    if code == DURATION_OVERFLOW:
        return None
    raise CodecError(f"compressed duration {code} is not a 7-bit code")


def _status_readings(status: int, *, history: bool) -> list[Reading]:
    occupied = status & 0x01
    readings = [Reading("occupied", float(occupied))]
    if history:
        minutes = previous_state_minutes(status >> 1)
        if minutes:  # neither overflow (None) nor under a minute (0)
            readings.append(Reading("occupied", float(1 - occupied), offset=-60.0 * minutes))
    return readings


@dataclass(frozen=True, slots=True)
class Message:
    """One fPort's message: the lengths it may have and where its readings sit."""

    name: str
    lengths: frozenset[int] | None  # None: any non-empty length
    status_at: int | None = None  # byte whose bit 0 is the occupancy
    duration_history: bool = False  # bits 7..1 of the status byte date the previous state
    status_only_if_set: bool = False  # bit 0 clear means "no parking state", not "free"
    heartbeat: bool = False

    def check_length(self, payload: bytes) -> None:
        if not payload:
            raise CodecError(f"{self.name}: empty frame")
        if self.lengths is not None and len(payload) not in self.lengths:
            expected = " or ".join(str(length) for length in sorted(self.lengths))
            raise CodecError(f"{self.name}: {len(payload)} bytes, expected {expected}")

    def readings(self, payload: bytes) -> list[Reading]:
        self.check_length(payload)
        if self.status_at is None:
            return []
        status = payload[self.status_at]
        if self.status_only_if_set and not status & 0x01:
            return []
        readings = _status_readings(status, history=self.duration_history)
        if self.heartbeat:
            millivolts = BATTERY_BASE_MV + BATTERY_STEP_MV * payload[1]
            raw_temperature = int.from_bytes(payload[2:3], "big", signed=True)
            readings.append(Reading("battery_voltage", millivolts / 1000))
            readings.append(
                Reading("temperature", raw_temperature * TEMPERATURE_STEP + TEMPERATURE_OFFSET)
            )
        return readings


MESSAGES: dict[int, Message] = {
    STATUS_PORT: Message("parking status", frozenset({1}), status_at=0, duration_history=True),
    HEARTBEAT_PORT: Message(
        "heartbeat", frozenset({HEARTBEAT_LENGTH}), status_at=0, heartbeat=True
    ),
    3: Message("start-up", frozenset({5}), status_at=4),
    6: Message("debug", None),
    10: Message("tag registration", frozenset({5, 6}), status_at=0, status_only_if_set=True),
}


def _scaled(quantity: str, value: float, base: float, step: float) -> int:
    if not math.isfinite(value):
        raise CodecError(f"{quantity}: cannot encode {value!r}")
    return round((value - base) / step)


def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
    """A parking status (occupancy alone) or a heartbeat (occupancy, battery and temperature).

    The parking status says the previous state lasted under a minute (no history reading).
    """
    unknown = set(readings) - {"occupied", "battery_voltage", "temperature"}
    if unknown:
        raise CodecError(f"cannot encode {sorted(unknown)}")
    if "occupied" not in readings:
        raise CodecError("an NPS405 frame always carries the occupancy")
    occupied = readings["occupied"]
    if occupied not in (0, 1):
        raise CodecError(f"occupied must be 0 or 1, not {occupied!r}")
    if set(readings) == {"occupied"}:
        return STATUS_PORT, bytes([int(occupied)])
    missing = {"battery_voltage", "temperature"} - set(readings)
    if missing:
        raise CodecError(f"a heartbeat carries the battery and the temperature: {sorted(missing)}")
    battery = _scaled(
        "battery_voltage",
        readings["battery_voltage"],
        BATTERY_BASE_MV / 1000,
        BATTERY_STEP_MV / 1000,
    )
    if not 0 <= battery <= 0xFF:
        raise CodecError(f"battery_voltage {readings['battery_voltage']!r} V is out of 2.5..3.52 V")
    temperature = _scaled(
        "temperature", readings["temperature"], TEMPERATURE_OFFSET, TEMPERATURE_STEP
    )
    if not -128 <= temperature <= 127:
        raise CodecError(f"temperature {readings['temperature']!r} °C is out of -54..73.5 °C")
    payload = bytes([int(occupied), battery, temperature & 0xFF]) + bytes(HEARTBEAT_LENGTH - 3)
    return HEARTBEAT_PORT, payload


@register(
    "nwave-nps405",
    vendor="nwave",
    quantities=[
        Quantity(
            "occupied",
            "0/1",
            "1 = a vehicle is parked over the sensor; a parking status also dates the previous"
            " state (history reading, minute resolution at best)",
        ),
        Quantity("battery_voltage", "V", "4 mV steps, heartbeat frames only"),
        Quantity("temperature", "°C", "0.5 °C steps, heartbeat frames only"),
    ],
    encode=encode,
    description="Nwave in-ground parking sensor (NPS405, flush and surface mount)",
)
def decode(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one NPS405 uplink."""
    message = MESSAGES.get(fport)
    if message is None:
        raise CodecError(f"fPort {fport} is not an NPS405 uplink port")
    return message.readings(payload)
