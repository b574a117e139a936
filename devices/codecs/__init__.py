"""Payload codecs, one module per vendor; `decode` and `encode` dispatch on the model id."""

from __future__ import annotations

from collections.abc import Mapping

from . import bosch, cayenne, dragino, elsys, milesight, nwave  # noqa: F401  (modules register their models on import)
from .base import Codec, CodecError, Quantity, Reading, registry

__all__ = ["Codec", "CodecError", "Quantity", "Reading", "decode", "encode", "models", "registry"]


def _codec(model: str) -> Codec:
    try:
        return registry()[model]
    except KeyError:
        raise CodecError(f"unknown device model {model!r}") from None


def decode(model: str, fport: int, payload: bytes) -> list[Reading]:
    """Readings carried by one uplink; raises CodecError and nothing else on a bad frame."""
    codec = _codec(model)
    if not isinstance(payload, bytes | bytearray | memoryview):
        # bytes(5) would be five zero bytes, bytes(None) a TypeError: neither is a frame
        raise CodecError(f"{model}: payload must be bytes, not {type(payload).__name__}")
    try:
        return codec.decode(fport, bytes(payload))
    except CodecError:
        raise
    except Exception as exc:  # a decoder bug must not take the pipeline down
        raise CodecError(f"{model}: cannot decode fPort {fport} payload: {exc}") from exc


def encode(model: str, readings: Mapping[str, float]) -> tuple[int, bytes]:
    """(fPort, payload) for a frame carrying `readings`; used by the fleet simulator."""
    return _codec(model).encode(readings)


def models() -> list[str]:
    """Registered model ids, sorted."""
    return sorted(registry())
