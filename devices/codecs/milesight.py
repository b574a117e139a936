"""Milesight IoT codecs: AM103 and AM307 ambience monitors, EM300-SLD spot leak detector.

Format (Milesight IoT SensorDecoders, AM103, AM307 and EM300-SLD payload definitions): the payload
is a sequence of `[channel id][channel type][value]` records, values little-endian, on fPort 85
(the devices' default application port; any application port 1..223 is accepted since the port
is configurable, fPort 0 carries MAC commands and is rejected):

| id type | length | meaning |
|---|---|---|
| `01 75` | 1 | battery, u8 % |
| `03 67` | 2 | temperature, int16 / 10 °C |
| `04 68` | 1 | humidity, u8 / 2 %RH |
| `07 7D` | 2 | CO2, u16 ppm (AM103, AM307) |
| `05 00` | 1 | leak, 0 normal / 1 leak (EM300-SLD); other values are rejected |
| `05 00` | 1 | PIR, 0 idle / 1 trigger (AM307); other values are rejected |
| `06 CB` | 1 | light level, u8 0..5 (AM307); other values are rejected |
| `08 7D` | 2 | TVOC, u16 / 100 IAQ level (AM307) |
| `08 E6` | 2 | TVOC, u16 µg/m³ (AM307 set to report µg/m³): validated, not reported |
| `09 73` | 2 | barometric pressure, u16 / 10 hPa (AM307) |
| `0E 01` | 1 | buzzer status (AM307): validated, not reported |
| `05 6A` | 2 | AM100-series PIR activity, in an AM307 example frame: validated, not reported |
| `20 CE` | 9 / 8 | history: u32 unix time (UTC), temperature, humidity, CO2 (AM103) or leak |
| `20 CE` | 16 | AM307 history: u32 time, temperature, u16/2 humidity, PIR, light, CO2, TVOC, hPa |
| `21 CE` | 16 | AM307 history with TVOC in µg/m³: the same, its TVOC not reported |
| `FF 01`, `0B`, `0F`, `FE` | 1 | IPSO version, power-on, LoRaWAN class, reset event |
| `FF 09`, `0A`, `FF` | 2 | hardware, firmware, TSL version |
| `FF 16` | 8 | serial number |
| `FF 18` | 1 | sensor enable mask (AM103) |

Device information records are valid but carry no reading. History records are decoded as
readings carrying the record's own `timestamp`, never as current values. An empty payload, an
unknown record (each model knows only its own), a truncated record or an enumerated value outside
its set raises `CodecError`.

Units are the vendor's and the vocabulary's (%, °C, %RH, ppm, hPa, 0/1); no conversion is made.
Where the AM307 reports in units of its own:

- PIR (`05 00`) is a state, not a count: 1 ("trigger") when the passive-infrared detector saw
  someone move, 0 ("idle") otherwise. It is reported as `occupied` (0/1: the room is occupied),
  not as `motion`, which counts detections.
- Light (`06 CB`) is the sensor's light level, 0..5 (higher is brighter), reported as `light` in
  that vendor unit, not in lux.
- TVOC (`08 7D`) is the sensor's indoor-air-quality level (IAQ, higher is worse): the raw
  register divided by 100, as the vendor's payload definition reads it ("unit: iaq, read:
  uint16/100"). Older decoders, such as the TTN device repository's `am307.js`, give the raw
  register, 100 times larger. Devices set to report TVOC in µg/m³ (`08 E6`, `21 CE`) keep their
  frames decoded but their TVOC is not reported: one model's `tvoc` series keeps one unit.
- `05 6A` is the AM100 series' PIR activity counter; no AM307 documentation defines it, but the
  vendor's own AM307 example frame (TTN device repository) carries it, so it is skipped.
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
    """One little-endian integer field and how it maps to a quantity (`raw / divisor`).

    A field without a quantity is validated (its bytes must be there) but not reported.
    """

    quantity: str | None
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
            if value.quantity is not None:
                readings.append(Reading(value.quantity, value.decode(raw), timestamp=timestamp))
            at += value.size
        return readings


BATTERY = Value("battery", 1)
TEMPERATURE = Value("temperature", 2, signed=True, divisor=10)
HUMIDITY = Value("humidity", 1, divisor=2)
CO2 = Value("co2", 2)
LEAK = Value("leak", 1, allowed=frozenset({0, 1}))
PIR = Value("occupied", 1, allowed=frozenset({0, 1}))  # 0 idle, 1 trigger
LIGHT_LEVEL = Value("light", 1, allowed=frozenset(range(6)))  # vendor level 0..5
TVOC_IAQ = Value("tvoc", 2, divisor=100)  # IAQ level
TVOC_UGM3 = Value(None, 2)  # µg/m³: validated, not reported
PRESSURE = Value("pressure", 2, divisor=10)
HISTORY_HUMIDITY = Value("humidity", 2, divisor=2)  # AM307 history records: u16

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

AM307_HISTORY = (TEMPERATURE, HISTORY_HUMIDITY, PIR, LIGHT_LEVEL, CO2)
AM307: dict[Key, Record] = {
    (0x01, 0x75): Record((BATTERY,)),
    (0x03, 0x67): Record((TEMPERATURE,)),
    (0x04, 0x68): Record((HUMIDITY,)),
    (0x05, 0x00): Record((PIR,)),
    (0x06, 0xCB): Record((LIGHT_LEVEL,)),
    (0x07, 0x7D): Record((CO2,)),
    (0x08, 0x7D): Record((TVOC_IAQ,)),
    (0x08, 0xE6): Record((TVOC_UGM3,)),
    (0x09, 0x73): Record((PRESSURE,)),
    (0x0E, 0x01): Record(skip=1),  # buzzer status
    (0x05, 0x6A): Record(skip=2),  # AM100-series PIR activity, in the vendor's AM307 example
    (0x20, 0xCE): Record((*AM307_HISTORY, TVOC_IAQ, PRESSURE), history=True),
    (0x21, 0xCE): Record((*AM307_HISTORY, TVOC_UGM3, PRESSURE), history=True),
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
    current: dict[str, tuple[Key, Value]] = {}
    for key, record in records.items():
        if not record.history and len(record.values) == 1:
            quantity = record.values[0].quantity
            if quantity is not None:
                current[quantity] = (key, record.values[0])

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
    "milesight-am307",
    vendor="milesight",
    quantities=[
        Quantity("battery", "%"),
        Quantity("temperature", "°C", "0.1 °C steps"),
        Quantity("humidity", "%RH", "0.5 %RH steps"),
        Quantity("occupied", "0/1", "PIR state: 1 = triggered (presence), 0 = idle"),
        Quantity("light", "level 0-5", "vendor light level, 0 dark .. 5 bright; not lux"),
        Quantity("co2", "ppm"),
        Quantity("tvoc", "IAQ level", "vendor indoor-air-quality level (register / 100)"),
        Quantity("pressure", "hPa", "0.1 hPa steps"),
    ],
    encode=_encoder(AM307),
    description=(
        "Milesight AM307 indoor ambience monitor (temperature, humidity, PIR, light level,"
        " CO2, TVOC, barometric pressure)"
    ),
)
def decode_am307(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one AM307 uplink."""
    return _decode(AM307, fport, payload)


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
