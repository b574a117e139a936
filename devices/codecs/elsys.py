"""Elsys codecs: ERS CO2, ERS, ERS Lite and ERS Sound room sensors.

Format (Elsys sensor payload documentation, as decoded by the vendor's generic decoder,
`vendor/elsys/elsys.js` of the TTN device repository): every Elsys sensor sends the same
repeated `[type][value]` records, values big-endian, each type with a fixed length. The default
application port is 5; any application port 1..223 is accepted since the port is configurable
(fPort 0 carries MAC commands and is rejected).

| type | length | content | reported as |
|---|---|---|---|
| `01` | 2 | temperature, int16 / 10 °C | `temperature` °C |
| `02` | 1 | relative humidity, u8 % | `humidity` %RH (1 %RH steps) |
| `03` | 3 | acceleration X, Y, Z, int8 (63 = 1 g) | — |
| `04` | 2 | light, u16 lux | `light` lux |
| `05` | 1 | PIR motion count since the previous uplink, u8 | `motion` count |
| `06` | 2 | CO2, u16 ppm | `co2` ppm |
| `07` | 2 | VDD, the battery voltage, u16 mV | `battery_voltage` V (mV / 1000) |
| `08` | 2 | analog input 1, u16 mV | — |
| `09` | 6 | GPS latitude, longitude (3 bytes each) | — |
| `0A` | 2 | pulse input 1, relative count | — |
| `0B` | 4 | pulse input 1, absolute count | — |
| `0C` | 2 | external temperature probe, int16 / 10 °C | — |
| `0D` | 1 | external digital input, 0/1 | — |
| `0E` | 2 | distance, u16 mm | — |
| `0F` | 1 | accelerometer motion count | — |
| `10` | 4 | IR thermometer, internal and external int16 / 10 °C | — |
| `11` | 1 | occupancy (ERS Eye / Desk: 0 free, 1 pending, 2 occupied) | — |
| `12` | 1 | water leak level, u8 0..255 | — |
| `13` | 65 | Grid-EYE: reference byte and 64 pixel temperatures | — |
| `14` | 4 | pressure, u32 / 1000 hPa | `pressure` hPa |
| `15` | 2 | sound peak and average, u8 dB each | — |
| `16` | 2 | pulse input 2, relative count | — |
| `17` | 4 | pulse input 2, absolute count | — |
| `18` | 2 | analog input 2, u16 mV | — |
| `19` | 2 | external temperature probe 2, int16 / 10 °C | — |
| `1A` | 1 | external digital input 2, 0/1 | — |
| `1B` | 4 | analog input, int32 µV | — |
| `1C` | 2 | TVOC, u16 ppb | `tvoc` ppb |
| `3D` | 4 | debug | — |
| `3E` | 1 + n | settings (Elsys settings payload): a length byte, then that many bytes | — |

Every type of the list is parsed whichever model sends it, so that a frame is validated as a
whole; a model reports the quantities it declares and validates and skips the rest. The types
marked — carry nothing the readings vocabulary holds as such: an external probe's temperature is
not the room's, the ERS Eye occupancy has a third, "pending" state, and the water-leak level has
no threshold in the vendor's documentation. The pressure and TVOC mappings exist for models that
declare them; none of the models registered here does. An empty payload, an unknown type or a
record (or settings block) cut short raises `CodecError`; missing bytes are never read as zeros.

Registered models (all on this one decoder):

| model | sensors | quantities |
|---|---|---|
| `elsys-ers-co2` | ERS CO2 | temperature, humidity, light, motion, co2, battery_voltage |
| `elsys-ers` | ERS | temperature, humidity, light, motion, battery_voltage |
| `elsys-ers-lite` | ERS Lite | temperature, humidity, battery_voltage |
| `elsys-ers-sound` | ERS Sound | as the ERS; its sound levels are validated and skipped |

Units are the vocabulary's: the only conversion is VDD, sent in mV and reported in V.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .base import BigEndianField, CodecError, Encoder, Quantity, Reading, register

FPORT = 5
APPLICATION_PORTS = range(1, 224)
SETTINGS = 0x3E


TYPES: dict[int, BigEndianField] = {
    0x01: BigEndianField("temperature", 2, "temperature", signed=True, divisor=10),
    0x02: BigEndianField("humidity", 1, "humidity"),
    0x03: BigEndianField("acceleration", 3),
    0x04: BigEndianField("light", 2, "light"),
    0x05: BigEndianField("motion", 1, "motion"),
    0x06: BigEndianField("co2", 2, "co2"),
    0x07: BigEndianField("vdd", 2, "battery_voltage", divisor=1000),
    0x08: BigEndianField("analog input 1", 2),
    0x09: BigEndianField("gps", 6),
    0x0A: BigEndianField("pulse input 1", 2),
    0x0B: BigEndianField("pulse input 1 absolute", 4),
    0x0C: BigEndianField("external temperature", 2),
    0x0D: BigEndianField("digital input", 1),
    0x0E: BigEndianField("distance", 2),
    0x0F: BigEndianField("accelerometer motion", 1),
    0x10: BigEndianField("ir temperature", 4),
    0x11: BigEndianField("occupancy", 1),
    0x12: BigEndianField("water leak", 1),
    0x13: BigEndianField("grideye", 65),
    0x14: BigEndianField("pressure", 4, "pressure", divisor=1000),
    0x15: BigEndianField("sound", 2),
    0x16: BigEndianField("pulse input 2", 2),
    0x17: BigEndianField("pulse input 2 absolute", 4),
    0x18: BigEndianField("analog input 2", 2),
    0x19: BigEndianField("external temperature 2", 2),
    0x1A: BigEndianField("digital input 2", 1),
    0x1B: BigEndianField("analog input uV", 4),
    0x1C: BigEndianField("tvoc", 2, "tvoc"),
    0x3D: BigEndianField("debug", 4),
}

QUANTITIES: dict[str, Quantity] = {
    "temperature": Quantity("temperature", "°C", "0.1 °C steps"),
    "humidity": Quantity("humidity", "%RH", "1 %RH steps"),
    "light": Quantity("light", "lux"),
    "motion": Quantity("motion", "count", "PIR detections since the previous uplink"),
    "co2": Quantity("co2", "ppm"),
    "battery_voltage": Quantity("battery_voltage", "V", "sent as VDD in mV"),
    "pressure": Quantity("pressure", "hPa"),
    "tvoc": Quantity("tvoc", "ppb"),
}

# the type carrying each quantity, for the encoder
TYPE_OF: dict[str, int] = {
    field.quantity: kind for kind, field in TYPES.items() if field.quantity is not None
}


def _decode(quantities: frozenset[str], fport: int, payload: bytes) -> list[Reading]:
    if fport not in APPLICATION_PORTS:
        raise CodecError(f"fPort {fport} is not an application port")
    if not payload:
        raise CodecError("empty payload")
    readings: list[Reading] = []
    at = 0
    while at < len(payload):
        kind = payload[at]
        if kind == SETTINGS:
            if at + 2 > len(payload):
                raise CodecError(f"settings at byte {at} have no length byte")
            end = at + 2 + payload[at + 1]
            if end > len(payload):
                raise CodecError(
                    f"settings at byte {at} need {payload[at + 1]} bytes,"
                    f" {len(payload) - at - 2} left"
                )
            at = end
            continue
        field = TYPES.get(kind)
        if field is None:
            raise CodecError(f"unknown type {kind:02X} at byte {at}")
        body = payload[at + 1 : at + 1 + field.size]
        if len(body) < field.size:
            raise CodecError(
                f"type {kind:02X} ({field.name}) at byte {at} needs {field.size} bytes,"
                f" {len(body)} left"
            )
        if field.quantity in quantities:
            readings.append(Reading(field.quantity, field.decode(body)))
        at += 1 + field.size
    return readings


def _encoder(quantities: frozenset[str]) -> Encoder:
    def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
        unknown = set(readings) - quantities
        if unknown:
            raise CodecError(f"cannot encode {sorted(unknown)}; known: {sorted(quantities)}")
        if not readings:
            raise CodecError("nothing to encode")
        frame = bytearray()
        for quantity in sorted(readings, key=TYPE_OF.__getitem__):
            kind = TYPE_OF[quantity]
            frame += bytes([kind]) + TYPES[kind].encode(readings[quantity])
        return FPORT, bytes(frame)

    return encode


def _register(model: str, description: str, names: Sequence[str]) -> None:
    quantities = frozenset(names)

    def decode(fport: int, payload: bytes) -> list[Reading]:
        return _decode(quantities, fport, payload)

    decode.__doc__ = f"Readings of one {description} uplink."
    register(
        model,
        vendor="elsys",
        quantities=[QUANTITIES[name] for name in names],
        encode=_encoder(quantities),
        description=description,
    )(decode)


ROOM = ("temperature", "humidity", "light", "motion")

_register("elsys-ers-co2", "Elsys ERS CO2 room sensor", (*ROOM, "co2", "battery_voltage"))
_register("elsys-ers", "Elsys ERS room sensor", (*ROOM, "battery_voltage"))
_register(
    "elsys-ers-lite", "Elsys ERS Lite room sensor", ("temperature", "humidity", "battery_voltage")
)
_register("elsys-ers-sound", "Elsys ERS Sound room sensor", (*ROOM, "battery_voltage"))
