"""Properties every registered codec keeps, whatever the bytes.

- Its decoder raises `CodecError` and nothing else (called directly, without the safety net of
  `devices.codecs.decode`), and what it returns is finite readings of its declared quantities.
- encode -> decode gives back the readings it was given, within the format's resolution.

Realistic ranges and the coarsest resolution a format may have are listed per quantity below,
with overrides for models whose format is coarser or narrower. A model reporting a quantity that
has no range here fails the round trip until one is added.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devices.codecs import CodecError, Reading, models, registry

Range = tuple[st.SearchStrategy[float], float]  # values, resolution


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def _integers(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(low, high).map(float)


STATE = st.sampled_from([0.0, 1.0])

REALISTIC: dict[str, Range] = {
    "occupied": (STATE, 1),
    "leak": (STATE, 1),
    "door": (STATE, 1),
    "temperature": (_floats(-30, 60), 0.1),
    "humidity": (_floats(0, 100), 0.5),
    "co2": (_integers(350, 5000), 1),
    "battery": (_integers(0, 100), 1),
    "battery_voltage": (_floats(2.5, 3.6), 0.001),
    "pressure": (_floats(900, 1100), 0.1),
    "light": (_integers(0, 10_000), 1),
    "motion": (_integers(0, 255), 1),
    "pm2_5": (_integers(0, 500), 1),
    "pm10": (_integers(0, 500), 1),
}

OVERRIDES: dict[tuple[str, str], Range] = {
    ("bosch-tps110", "temperature"): (_floats(-30, 60), 1),
    ("nwave-nps405", "temperature"): (_floats(-30, 60), 0.5),
    ("nwave-nps405", "battery_voltage"): (_floats(2.5, 3.5), 0.004),
    ("elsys-ers-co2", "humidity"): (_integers(0, 100), 1),
    ("milesight-am307", "light"): (_integers(0, 5), 1),
    ("milesight-am307", "tvoc"): (_floats(1, 5), 0.01),  # IAQ level, register / 100
    ("elsys-ers", "humidity"): (_integers(0, 100), 1),
    ("elsys-ers-lite", "humidity"): (_integers(0, 100), 1),
    ("elsys-ers-sound", "humidity"): (_integers(0, 100), 1),
}

MODELS = models()
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _range(model: str, quantity: str) -> Range:
    found = OVERRIDES.get((model, quantity)) or REALISTIC.get(quantity)
    if found is None:
        pytest.fail(f"{model}: add a realistic range for {quantity!r} to {__name__}")
    return found


def _check_readings(model: str, readings: Any) -> None:
    declared = {quantity.name for quantity in registry()[model].quantities}
    assert isinstance(readings, list), f"{model}: decoder returned {type(readings).__name__}"
    for reading in readings:
        assert isinstance(reading, Reading)
        assert reading.quantity in declared, f"{model}: undeclared quantity {reading.quantity!r}"
        assert math.isfinite(reading.value), f"{model}: {reading}"


@pytest.mark.parametrize("model", MODELS)
@SETTINGS
@given(fport=st.integers(-1, 300), payload=st.binary(max_size=64))
def test_random_bytes_raise_only_codec_error(model: str, fport: int, payload: bytes) -> None:
    try:
        readings = registry()[model].decode(fport, payload)
    except CodecError:
        return
    _check_readings(model, readings)


@st.composite
def _valid_readings(draw: st.DrawFn, model: str) -> dict[str, float]:
    names = sorted(quantity.name for quantity in registry()[model].quantities)
    chosen = draw(st.sets(st.sampled_from(names), min_size=1)) if names else set()
    return {name: draw(_range(model, name)[0]) for name in sorted(chosen)}


def _encode(model: str, readings: dict[str, float]) -> tuple[int, bytes]:
    """The frame for `readings`; subsets a format cannot carry alone are skipped."""
    codec = registry()[model]
    try:
        return codec.encode(readings)
    except CodecError:
        if set(readings) == {quantity.name for quantity in codec.quantities}:
            raise  # every format carries its full set of quantities
        assume(False)
        raise


@pytest.mark.parametrize("model", MODELS)
@SETTINGS
@given(data=st.data())
def test_mutated_frames_raise_only_codec_error(model: str, data: st.DataObject) -> None:
    fport, payload = _encode(model, data.draw(_valid_readings(model)))
    mutation = data.draw(st.sampled_from(["truncate", "append", "replace", "port"]))
    if mutation == "truncate":
        payload = payload[: data.draw(st.integers(0, max(len(payload) - 1, 0)))]
    elif mutation == "append":
        payload += data.draw(st.binary(min_size=1, max_size=12))
    elif mutation == "replace" and payload:
        at = data.draw(st.integers(0, len(payload) - 1))
        payload = payload[:at] + bytes([data.draw(st.integers(0, 255))]) + payload[at + 1 :]
    else:
        fport = data.draw(st.integers(0, 255))
    try:
        readings = registry()[model].decode(fport, payload)
    except CodecError:
        return
    _check_readings(model, readings)


@pytest.mark.parametrize("model", MODELS)
@SETTINGS
@given(data=st.data())
def test_encode_then_decode_gives_the_readings_back(model: str, data: st.DataObject) -> None:
    readings = data.draw(_valid_readings(model))
    codec = registry()[model]
    fport, payload = _encode(model, readings)
    decoded = codec.decode(fport, payload)
    _check_readings(model, decoded)
    current = {r.quantity: r.value for r in decoded if r.timestamp is None and r.offset == 0}
    for quantity, value in readings.items():
        resolution = _range(model, quantity)[1]
        assert quantity in current, f"{model}: {quantity} lost in {payload.hex()} (fPort {fport})"
        assert abs(current[quantity] - value) <= resolution / 2 + 1e-9, (
            f"{model}: {quantity} {value} came back as {current[quantity]}"
        )
    # a decoded value is exactly representable: encoding it again gives the same frame
    assert codec.encode({q: current[q] for q in readings}) == (fport, payload)
