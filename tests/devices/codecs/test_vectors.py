"""Every registered codec against the vendor-derived vectors of `shared/vectors/` (see its README).

The vectors file is found through `CIVICSENSE_SHARED_DIR`, else `<repo>/../shared`. Vectors of
models that have no codec yet are skipped; the models this suite was written with must be
registered and have vectors, so the file cannot silently stop testing them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from devices.codecs import CodecError, Reading, decode, models

MODELS_WITH_VECTORS = (
    "bosch-tps110",
    "cayenne-lpp",
    "dragino-lwl02",
    "elsys-ers-co2",
    "milesight-am103",
    "milesight-am307",
    "milesight-em300-sld",
    "nwave-nps405",
)


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent
    return here.parents[3]  # <repo>/tests/devices/codecs/test_vectors.py


def _shared_dir() -> Path:
    configured = os.environ.get("CIVICSENSE_SHARED_DIR")
    return Path(configured) if configured else _repo_root().parent / "shared"


VECTORS_FILE = _shared_dir() / "vectors" / "codec_vectors.json"
MISSING = f"codec vectors not found at {VECTORS_FILE} (set CIVICSENSE_SHARED_DIR to the shared dir)"


def _load() -> list[dict[str, Any]] | None:
    if not VECTORS_FILE.is_file():
        return None
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))


VECTORS = _load()


def _vector_id(index: int, vector: dict[str, Any]) -> str:
    payload = vector["payload_hex"][:20] or "empty"
    return f"{index:02d}-{vector['model']}-p{vector['fport']}-{payload}"


def _params() -> list[Any]:
    if VECTORS is None:
        return [pytest.param(None, id="no-vectors", marks=pytest.mark.skip(reason=MISSING))]
    return [
        pytest.param(vector, id=_vector_id(index, vector)) for index, vector in enumerate(VECTORS)
    ]


def current_values(readings: Sequence[Reading]) -> dict[str, float]:
    """Current readings by quantity; history (timestamp or offset) is not a current value.

    Where a format repeats a quantity the first reading is kept: codecs list repeated
    quantities lowest channel first, which is the one the vectors give.
    """
    values: dict[str, float] = {}
    for reading in readings:
        if reading.timestamp is None and reading.offset == 0:
            values.setdefault(reading.quantity, reading.value)
    return values


@pytest.mark.parametrize("vector", _params())
def test_vector(vector: dict[str, Any]) -> None:
    model = vector["model"]
    if model not in models():
        pytest.skip(f"no codec registered for {model} yet")
    payload = bytes.fromhex(vector["payload_hex"])
    expected: dict[str, float] | None = vector["expected"]
    lenient = bool(vector.get("lenient", False))
    where = f"{model} fPort {vector['fport']} {vector['payload_hex'] or '(empty)'}"

    try:
        readings = decode(model, vector["fport"], payload)
    except CodecError as exc:
        assert expected is None or lenient, f"{where}: valid frame rejected: {exc}"
        return

    values = current_values(readings)
    if expected is None:
        if lenient:
            assert not values, f"{where}: history decoded as current values {values}"
        else:
            assert not readings, f"{where}: malformed frame decoded as {readings}"
        return
    missing = set(expected) - set(values)
    assert not missing, f"{where}: no current {sorted(missing)} in {readings}"
    for quantity, value in expected.items():
        assert values[quantity] == pytest.approx(value, rel=1e-9, abs=1e-9), (
            f"{where}: {quantity} is {values[quantity]}, vector says {value}"
        )


def test_vectors_cover_the_registered_models() -> None:
    if VECTORS is None:
        pytest.skip(MISSING)
    with_vectors = {vector["model"] for vector in VECTORS}
    for model in MODELS_WITH_VECTORS:
        assert model in models(), f"{model} is not registered"
        assert model in with_vectors, f"{VECTORS_FILE} has no vector for {model}"
