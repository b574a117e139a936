"""Cayenne Low Power Payload (LPP) codec, for devices and firmwares that speak it natively.

Format (myDevices Cayenne LPP, "LoRaWAN" documentation; as decoded by TheThingsNetwork
go-cayenne-lib and ChirpStack's Cayenne LPP codec): the payload is a sequence of
`[channel][type][value]` records, values big-endian and signed where noted, on any application
fPort (1..223; fPort 0 carries MAC commands and is rejected). The type is the IPSO Smart Object id
minus 3200; the channel (0..255) numbers the device's sensors.

| type | IPSO object | size | value | reading |
|---|---|---|---|---|
| `00` | 3200 digital input | 1 | u8 | — |
| `01` | 3201 digital output | 1 | u8 | — |
| `02` | 3202 analog input | 2 | int16 / 100 | — |
| `03` | 3203 analog output | 2 | int16 / 100 | — |
| `65` | 3301 illuminance | 2 | u16 lux | light, lux |
| `66` | 3302 presence | 1 | u8 | — |
| `67` | 3303 temperature | 2 | int16 / 10 °C | temperature, °C |
| `68` | 3304 humidity | 1 | u8 / 2 %RH | humidity, %RH |
| `71` | 3313 accelerometer | 6 | 3 × int16 / 1000 G | — |
| `73` | 3315 barometer | 2 | u16 / 10 hPa | pressure, hPa |
| `86` | 3334 gyrometer | 6 | 3 × int16 / 100 °/s | — |
| `88` | 3336 GPS location | 9 | latitude, longitude int24 / 10000 °, altitude int24 / 100 m | — |

The four types that have a quantity in the readings vocabulary are decoded in its units (the same
as LPP's: no conversion is made); the others are generic (a digital or analog value means what the
integrator wired to it) or outside the vocabulary, so they are checked and skipped. Readings are
listed by channel, lowest first, so where a quantity repeats on several channels the first reading
is the lowest channel's. LPP has no timestamp or history record: every reading is a current value.

An empty payload, an unknown type (including the extended types of some LPP libraries), a
truncated record, or the same channel and type twice in one frame raises `CodecError`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import BigEndianField, CodecError, Quantity, Reading, register

FPORT = 1  # encode's port; LPP devices use any application port
APPLICATION_PORTS = range(1, 224)


TYPES: dict[int, BigEndianField] = {
    0x00: BigEndianField("digital input", 1),
    0x01: BigEndianField("digital output", 1),
    0x02: BigEndianField("analog input", 2),
    0x03: BigEndianField("analog output", 2),
    0x65: BigEndianField("illuminance", 2, "light"),
    0x66: BigEndianField("presence", 1),
    0x67: BigEndianField("temperature", 2, "temperature", signed=True, divisor=10),
    0x68: BigEndianField("humidity", 1, "humidity", divisor=2),
    0x71: BigEndianField("accelerometer", 6),
    0x73: BigEndianField("barometer", 2, "pressure", divisor=10),
    0x86: BigEndianField("gyrometer", 6),
    0x88: BigEndianField("GPS location", 9),
}

# encode: the channel each quantity is sent on, and its type
CHANNELS: dict[str, tuple[int, int]] = {
    "temperature": (1, 0x67),
    "humidity": (2, 0x68),
    "pressure": (3, 0x73),
    "light": (4, 0x65),
}


def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
    """One record per reading, on the channels of `CHANNELS`."""
    unknown = set(readings) - set(CHANNELS)
    if unknown:
        raise CodecError(f"cannot encode {sorted(unknown)}; known: {sorted(CHANNELS)}")
    if not readings:
        raise CodecError("nothing to encode")
    frame = bytearray()
    for quantity, (channel, kind) in CHANNELS.items():
        if quantity in readings:
            frame += bytes([channel, kind]) + TYPES[kind].encode(readings[quantity])
    return FPORT, bytes(frame)


@register(
    "cayenne-lpp",
    vendor="cayenne",
    quantities=[
        Quantity("temperature", "°C", "0.1 °C steps"),
        Quantity("humidity", "%RH", "0.5 %RH steps"),
        Quantity("pressure", "hPa", "0.1 hPa steps"),
        Quantity("light", "lux", "1 lux steps"),
    ],
    encode=encode,
    description="Any device sending Cayenne Low Power Payload (channel, type, value records)",
)
def decode(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one Cayenne LPP uplink, lowest channel first."""
    if fport not in APPLICATION_PORTS:
        raise CodecError(f"fPort {fport} is not an application port")
    if not payload:
        raise CodecError("empty payload")
    found: list[tuple[int, Reading]] = []
    seen: set[tuple[int, int]] = set()
    at = 0
    while at < len(payload):
        if at + 2 > len(payload):
            raise CodecError(f"truncated record header at byte {at}")
        channel, kind = payload[at], payload[at + 1]
        data_type = TYPES.get(kind)
        if data_type is None:
            raise CodecError(f"unknown type {kind:02X} on channel {channel} at byte {at}")
        if (channel, kind) in seen:
            raise CodecError(f"channel {channel} sends {data_type.name} twice")
        seen.add((channel, kind))
        raw = payload[at + 2 : at + 2 + data_type.size]
        if len(raw) < data_type.size:
            raise CodecError(
                f"{data_type.name} on channel {channel} at byte {at} needs {data_type.size}"
                f" bytes, {len(raw)} left"
            )
        if data_type.quantity is not None:
            found.append((channel, Reading(data_type.quantity, data_type.decode(raw))))
        at += 2 + data_type.size
    found.sort(key=lambda item: item[0])  # stable: records of one channel keep their order
    return [reading for _, reading in found]
