"""The codec contract: readings out of payload bytes, and bytes out of readings."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple


class CodecError(ValueError):
    """A payload that does not fit its model's format (truncated, unknown channel...)."""


class Reading(NamedTuple):
    """One decoded value in the readings vocabulary of DESIGN.md.

    `offset` (seconds, usually negative) places a value before the uplink time;
    `timestamp` is an absolute time carried by the frame itself (history records).
    A named tuple: decoding creates millions of them, and tuples are the cheapest.
    """

    quantity: str
    value: float
    offset: float = 0.0
    timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class Quantity:
    """A quantity a model reports, with its unit and, where useful, a note on the vendor unit."""

    name: str
    unit: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class BigEndianField:
    """A big-endian integer field of a TLV format (Elsys, Cayenne LPP): its size and, where
    it maps to one, the quantity it gives as `raw / divisor`."""

    name: str
    size: int
    quantity: str | None = None
    signed: bool = False
    divisor: int = 1

    def decode(self, raw: bytes) -> float:
        return int.from_bytes(raw, "big", signed=self.signed) / self.divisor

    def encode(self, value: float) -> bytes:
        if not math.isfinite(value):
            raise CodecError(f"{self.name}: cannot encode {value!r}")
        try:
            return round(value * self.divisor).to_bytes(self.size, "big", signed=self.signed)
        except OverflowError:
            raise CodecError(f"{self.name}: {value!r} is out of the format's range") from None


Decoder = Callable[[int, bytes], list[Reading]]
Encoder = Callable[[Mapping[str, float]], tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class Codec:
    """A registered device model: its id, what it measures and its two functions."""

    model: str
    vendor: str
    quantities: tuple[Quantity, ...]
    decode: Decoder
    encode: Encoder
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, Codec] = {}


def register(
    model: str,
    *,
    vendor: str,
    quantities: Sequence[Quantity],
    encode: Encoder,
    description: str = "",
) -> Callable[[Decoder], Decoder]:
    """Class the decorated function as the decoder of `model` (ids are `vendor-model`)."""

    def wrap(decode: Decoder) -> Decoder:
        if model in _REGISTRY:
            raise RuntimeError(f"codec {model!r} registered twice")
        _REGISTRY[model] = Codec(
            model=model,
            vendor=vendor,
            quantities=tuple(quantities),
            decode=decode,
            encode=encode,
            description=description,
        )
        return decode

    return wrap


def registry() -> Mapping[str, Codec]:
    """All registered codecs by model id."""
    return _REGISTRY
