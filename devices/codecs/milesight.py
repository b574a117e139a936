"""Milesight IoT codecs: AM103 ambience monitor and EM300-SLD spot leak detector.

Format (Milesight IoT SensorDecoders, AM103 and EM300-SLD payload definitions): the payload is a
sequence of `[channel id][channel type][value]` records, values little-endian, on fPort 85
(the devices' default application port; any application port 1..223 is accepted since the port
is configurable, fPort 0 carries MAC commands and is rejected):

| id type | length | meaning |
|---|---|---|
| `01 75` | 1 | battery, u8 % |
| `03 67` | 2 | temperature, int16 / 10 °C |
| `04 68` | 1 | humidity, u8 / 2 %RH |
| `07 7D` | 2 | CO2, u16 ppm (AM103) |
| `05 00` | 1 | leak, 0 normal / 1 leak (EM300-SLD); other values are rejected |
| `20 CE` | 9 / 8 | history: u32 unix time (UTC), temperature, humidity, CO2 (AM103) or leak |
| `FF 01`, `0B`, `0F`, `FE` | 1 | IPSO version, power-on, LoRaWAN class, reset event |
| `FF 09`, `0A`, `FF` | 2 | hardware, firmware, TSL version |
| `FF 16` | 8 | serial number |
| `FF 18` | 1 | sensor enable mask (AM103) |

Device information records are valid but carry no reading. History records are decoded as
readings carrying the record's own `timestamp`, never as current values. Units are the vendor's
and the vocabulary's (%, °C, %RH, ppm, 0/1); no conversion is made. An empty payload, an unknown
record, a truncated record or a leak value other than 0/1 raises `CodecError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .base import CodecError, Encoder, Quantity, Reading, register

FPORT = 85
APPLICATION_PORTS = range(1, 224)

Key = tuple[int, int]  # (channel id, channel type)


@dataclass(frozen=True, slots=True)
class Value:
    """One little-endian integer field and how it maps to a quantity (`raw / divisor`)."""

    quantity: str
    size: int
    signed: bool = False
    divisor: int = 1
    allowed: frozenset[int] | None = None  # raw values accepted, for enumerations

    def decode(self, raw: bytes) -> float:
        number = int.from_bytes(raw, "little", signed=self.signed)
        if self.allowed is not None and number not in self.allowed:
            raise CodecError(f"{self.quantity}: {number} is not one of {sorted(self.allowed)}")
        return number / self.divisor

    def encode(self, value: float) -> bytes:
        if not math.isfinite(value):
            raise CodecError(f"{self.quantity}: cannot encode {value!r}")
        scaled = value * self.divisor
        number = round(scaled)
        if self.allowed is not None and (number not in self.allowed or number != scaled):
            raise CodecError(f"{self.quantity}: {value!r} is not one of {sorted(self.allowed)}")
        try:
            return number.to_bytes(self.size, "little", signed=self.signed)
        except OverflowError:
            raise CodecError(f"{self.quantity}: {value!r} is out of the format's range") from None


@dataclass(frozen=True, slots=True)
class Record:
    """What follows a `[channel id][channel type]` header.

    `values` are current readings, or a history record's readings when `history` is set (a u32
    unix timestamp comes first); `skip` counts device-information bytes that carry no reading.
    """

    values: tuple[Value, ...] = ()
    history: bool = False
    skip: int = 0
    length: int = field(init=False)

    def __post_init__(self) -> None:
        size = (4 if self.history else 0) + sum(value.size for value in self.values) + self.skip
        object.__setattr__(self, "length", size)

    def readings(self, body: bytes) -> list[Reading]:
        at, timestamp = 0, None
        if self.history:
            timestamp = datetime.fromtimestamp(int.from_bytes(body[:4], "little"), tz=UTC)
            at = 4
        readings = []
        for value in self.values:
            raw = body[at : at + value.size]
            readings.append(Reading(value.quantity, value.decode(raw), timestamp=timestamp))
            at += value.size
        return readings


BATTERY = Value("battery", 1)
TEMPERATURE = Value("temperature", 2, signed=True, divisor=10)
HUMIDITY = Value("humidity", 1, divisor=2)
CO2 = Value("co2", 2)
LEAK = Value("leak", 1, allowed=frozenset({0, 1}))

DEVICE_INFO: dict[Key, Record] = {
    (0xFF, 0x01): Record(skip=1),  # IPSO version
    (0xFF, 0x09): Record(skip=2),  # hardware version
    (0xFF, 0x0A): Record(skip=2),  # firmware version
    (0xFF, 0x0B): Record(skip=1),  # power on
    (0xFF, 0x0F): Record(skip=1),  # LoRaWAN class
    (0xFF, 0x16): Record(skip=8),  # serial number
    (0xFF, 0xFE): Record(skip=1),  # reset event
    (0xFF, 0xFF): Record(skip=2),  # TSL version
}

AM103: dict[Key, Record] = {
    (0x01, 0x75): Record((BATTERY,)),
    (0x03, 0x67): Record((TEMPERATURE,)),
    (0x04, 0x68): Record((HUMIDITY,)),
    (0x07, 0x7D): Record((CO2,)),
    (0x20, 0xCE): Record((TEMPERATURE, HUMIDITY, CO2), history=True),
    (0xFF, 0x18): Record(skip=1),  # sensor enable mask
    **DEVICE_INFO,
}

EM300_SLD: dict[Key, Record] = {
    (0x01, 0x75): Record((BATTERY,)),
    (0x03, 0x67): Record((TEMPERATURE,)),
    (0x04, 0x68): Record((HUMIDITY,)),
    (0x05, 0x00): Record((LEAK,)),
    (0x20, 0xCE): Record((TEMPERATURE, HUMIDITY, LEAK), history=True),
    **DEVICE_INFO,
}


def _decode(records: Mapping[Key, Record], fport: int, payload: bytes) -> list[Reading]:
    if fport not in APPLICATION_PORTS:
        raise CodecError(f"fPort {fport} is not an application port")
    if not payload:
        raise CodecError("empty payload")
    readings: list[Reading] = []
    at = 0
    while at < len(payload):
        if at + 2 > len(payload):
            raise CodecError(f"truncated record header at byte {at}")
        channel, kind = payload[at], payload[at + 1]
        record = records.get((channel, kind))
        if record is None:
            raise CodecError(f"unknown channel {channel:02X} {kind:02X} at byte {at}")
        body = payload[at + 2 : at + 2 + record.length]
        if len(body) < record.length:
            raise CodecError(
                f"channel {channel:02X} {kind:02X} at byte {at} needs {record.length} bytes,"
                f" {len(body)} left"
            )
        readings.extend(record.readings(body))
        at += 2 + record.length
    return readings


def _encoder(records: Mapping[Key, Record]) -> Encoder:
    current = {
        record.values[0].quantity: (key, record.values[0])
        for key, record in records.items()
        if not record.history and len(record.values) == 1
    }

    def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
        unknown = set(readings) - set(current)
        if unknown:
            raise CodecError(f"cannot encode {sorted(unknown)}; known: {sorted(current)}")
        if not readings:
            raise CodecError("nothing to encode")
        frame = bytearray()
        for quantity, (key, value) in current.items():
            if quantity in readings:
                frame += bytes(key) + value.encode(readings[quantity])
        return FPORT, bytes(frame)

    return encode


@register(
    "milesight-am103",
    vendor="milesight",
    quantities=[
        Quantity("battery", "%"),
        Quantity("temperature", "°C", "0.1 °C steps"),
        Quantity("humidity", "%RH", "0.5 %RH steps"),
        Quantity("co2", "ppm"),
    ],
    encode=_encoder(AM103),
    description="Milesight AM103 indoor ambience monitor (temperature, humidity, CO2)",
)
def decode_am103(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one AM103 uplink."""
    return _decode(AM103, fport, payload)


@register(
    "milesight-em300-sld",
    vendor="milesight",
    quantities=[
        Quantity("battery", "%"),
        Quantity("temperature", "°C", "0.1 °C steps"),
        Quantity("humidity", "%RH", "0.5 %RH steps"),
        Quantity("leak", "0/1", "1 = water detected at the probe"),
    ],
    encode=_encoder(EM300_SLD),
    description="Milesight EM300-SLD spot leak detection sensor",
)
def decode_em300_sld(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one EM300-SLD uplink."""
    return _decode(EM300_SLD, fport, payload)
