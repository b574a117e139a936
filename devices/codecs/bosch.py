"""Bosch Parking Lot Sensor (TPS110) codec.

Format (Bosch PLS communication interface, as decoded by TTN lorawan-devices
`vendor/bosch/tpl110-0292.js`): the fPort gives the frame type.

| fPort | frame | length | content |
|---|---|---|---|
| 1 | parking status | 1 | bit 0 = occupied, other bits reserved |
| 2 | heartbeat | 1 or 2 | bit 0 = occupied; optional int8 temperature, °C |
| 3 | start-up | 17 | 3 × 4 debug code bytes, firmware (3), reset cause (1), bit 0 = occupied |
| 4 | device information | 3 or 11 | firmware version, or device URN |
| 5 | device usage | 5, 8 or 19 | byte 0 = counter kind 0..6, its length is fixed by the kind |
| 6 | debug | 10 | timestamp, debug code, sequence number |

The lengths of frames 4 and 5 follow the decoders that parse them (SensationalSystems'
bosch-parking-lot-sensor-decoder, later TTN versions); `tpl110-0292.js` keeps their bytes raw.
Frames 4, 5 and 6 are valid but carry no reading. Any other fPort, or a length that does not fit
the frame, raises `CodecError`. Units are the vocabulary's: occupied 0/1, temperature °C (1 °C
resolution, the sensor's own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .base import CodecError, Quantity, Reading, register

STATUS_PORT = 1
HEARTBEAT_PORT = 2


@dataclass(frozen=True, slots=True)
class Frame:
    """One fPort's frame: the lengths it may have and where its readings sit."""

    name: str
    lengths: frozenset[int] = frozenset()
    occupied_at: int | None = None  # byte whose bit 0 is the occupancy
    temperature_at: int | None = None  # int8 °C, present when the frame is long enough
    length_by_kind: Mapping[int, int] = field(default_factory=dict)  # byte 0 selects the length

    def check_length(self, payload: bytes) -> None:
        name, lengths = self.name, self.lengths
        if self.length_by_kind:
            if not payload or payload[0] not in self.length_by_kind:
                raise CodecError(f"{name}: unknown kind {payload[:1].hex() or '(empty frame)'}")
            name = f"{name} kind {payload[0]}"
            lengths = frozenset({self.length_by_kind[payload[0]]})
        if len(payload) not in lengths:
            expected = " or ".join(str(length) for length in sorted(lengths))
            raise CodecError(f"{name}: {len(payload)} bytes, expected {expected}")

    def readings(self, payload: bytes) -> list[Reading]:
        self.check_length(payload)
        readings = []
        if self.occupied_at is not None:
            readings.append(Reading("occupied", float(payload[self.occupied_at] & 0x01)))
        if self.temperature_at is not None and len(payload) > self.temperature_at:
            raw = payload[self.temperature_at : self.temperature_at + 1]
            readings.append(Reading("temperature", float(int.from_bytes(raw, "big", signed=True))))
        return readings


FRAMES: dict[int, Frame] = {
    STATUS_PORT: Frame("parking status", frozenset({1}), occupied_at=0),
    HEARTBEAT_PORT: Frame("heartbeat", frozenset({1, 2}), occupied_at=0, temperature_at=1),
    3: Frame("start-up", frozenset({17}), occupied_at=16),
    4: Frame("device information", frozenset({3, 11})),
    5: Frame("device usage", length_by_kind={0: 5, 1: 5, 2: 19, 3: 5, 4: 5, 5: 8, 6: 5}),
    6: Frame("debug", frozenset({10})),
}


def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
    """A parking status frame, or a heartbeat when a temperature is given."""
    unknown = set(readings) - {"occupied", "temperature"}
    if unknown:
        raise CodecError(f"cannot encode {sorted(unknown)}")
    if "occupied" not in readings:
        raise CodecError("a TPS110 frame always carries the occupancy")
    occupied = readings["occupied"]
    if occupied not in (0, 1):
        raise CodecError(f"occupied must be 0 or 1, not {occupied!r}")
    if "temperature" not in readings:
        return STATUS_PORT, bytes([int(occupied)])
    temperature = readings["temperature"]
    if not -128 <= temperature < 127.5:  # also rejects NaN
        raise CodecError(f"temperature {temperature!r} °C does not fit an int8")
    return HEARTBEAT_PORT, bytes([int(occupied), round(temperature) & 0xFF])


@register(
    "bosch-tps110",
    vendor="bosch",
    quantities=[
        Quantity("occupied", "0/1", "1 = a vehicle is parked over the sensor"),
        Quantity("temperature", "°C", "1 °C steps, heartbeat frames only"),
    ],
    encode=encode,
    description="Bosch Parking Lot Sensor (in-ground, radar and magnetometer)",
)
def decode(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one TPS110 uplink."""
    frame = FRAMES.get(fport)
    if frame is None:
        raise CodecError(f"fPort {fport} is not a TPS110 uplink port")
    return frame.readings(payload)
