"""Dragino LWL02 water leak sensor codec (the same frame as the LDS01/LDS02 door sensors).

Format (Dragino LWL02 LoRaWAN Water Leak user manual and Dragino's own decoder
`dragino-end-node-decoder/LWL02/lds01_02_payload_*_v1.5`, which requires the 10 bytes; TTN
lorawan-devices `vendor/dragino/lwl02.js` reads the same fields): fPort 10, exactly 10 bytes,
big-endian.

| bytes | content |
|---|---|
| 0..1 | bit 15 = door open (1 open), bit 14 = water leak (1 leak), bits 13..0 = battery mV |
| 2 | MOD, the working mode: 1 door, 2 water leak, 3 door and water leak |
| 3..5 | u24 event count: door openings (MOD 1) or water leaks (MOD 2) |
| 6..8 | u24 duration of the last door opening (MOD 1) or water leak (MOD 2), minutes |
| 9 | bit 0 = alarm flag (decoded by the vendor in MOD 1 and 3) |

Readings: `battery_voltage` in V (the frame's mV / 1000) in every mode; `leak` 0/1 (1 = water
detected) in MOD 2 and 3; `door` 0/1 (1 = open) in MOD 1 and 3. `door` is a quantity this codec
adds to the readings vocabulary (unit 0/1, 1 = open). The status bit of the sensor the mode does
not use is ignored. The event counts, the alarm flag and the last event's duration are not
readings: the duration says how long the last event lasted but not when it happened, so it cannot be
placed in time as a history reading. Any other fPort, a length other than 10 or a MOD other than
1..3 raises `CodecError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .base import CodecError, Quantity, Reading, register

FPORT = 10
LENGTH = 10
DOOR_BIT = 0x8000
LEAK_BIT = 0x4000
BATTERY_MASK = 0x3FFF  # mV

# MOD -> which status bits it reports, in the order readings are listed
MODES: dict[int, tuple[tuple[str, int], ...]] = {
    1: (("door", DOOR_BIT),),
    2: (("leak", LEAK_BIT),),
    3: (("door", DOOR_BIT), ("leak", LEAK_BIT)),
}
MODE_OF: dict[frozenset[str], int] = {
    frozenset(name for name, _ in states): mode for mode, states in MODES.items()
}


def encode(readings: Mapping[str, float]) -> tuple[int, bytes]:
    """A 10-byte frame in the mode the given states call for (zero counters, no alarm)."""
    unknown = set(readings) - {"battery_voltage", "leak", "door"}
    if unknown:
        raise CodecError(f"cannot encode {sorted(unknown)}")
    if "battery_voltage" not in readings:
        raise CodecError("an LWL02 frame always carries the battery voltage")
    mode = MODE_OF.get(frozenset(readings) - {"battery_voltage"})
    if mode is None:
        raise CodecError("an LWL02 frame carries a leak state, a door state or both")
    battery = readings["battery_voltage"]
    if not math.isfinite(battery) or not 0 <= round(battery * 1000) <= BATTERY_MASK:
        raise CodecError(f"battery_voltage {battery!r} V does not fit 14 bits of mV")
    status = round(battery * 1000)
    for name, bit in MODES[mode]:
        if readings[name] not in (0, 1):
            raise CodecError(f"{name} must be 0 or 1, not {readings[name]!r}")
        if readings[name]:
            status |= bit
    return FPORT, status.to_bytes(2, "big") + bytes([mode]) + bytes(LENGTH - 3)


@register(
    "dragino-lwl02",
    vendor="dragino",
    quantities=[
        Quantity("battery_voltage", "V", "1 mV steps"),
        Quantity("leak", "0/1", "1 = water between the probes (water leak modes)"),
        Quantity("door", "0/1", "1 = door open (door modes); added to the vocabulary here"),
    ],
    encode=encode,
    description="Dragino LWL02 water leak sensor (also LDS01/LDS02 door sensor frames)",
)
def decode(fport: int, payload: bytes) -> list[Reading]:
    """Readings of one LWL02 uplink."""
    if fport != FPORT:
        raise CodecError(f"fPort {fport} is not an LWL02 uplink port (expected {FPORT})")
    if len(payload) != LENGTH:
        raise CodecError(f"LWL02 frame: {len(payload)} bytes, expected {LENGTH}")
    mode = payload[2]
    states = MODES.get(mode)
    if states is None:
        raise CodecError(f"LWL02 frame: unknown MOD {mode} (expected 1, 2 or 3)")
    status = int.from_bytes(payload[0:2], "big")
    readings = [Reading("battery_voltage", (status & BATTERY_MASK) / 1000)]
    readings.extend(Reading(name, float(bool(status & bit))) for name, bit in states)
    return readings
