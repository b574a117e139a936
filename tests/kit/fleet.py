"""Register a simulated fleet's devices, and compute what ingesting its events must store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from chirpstack_api import integration
from google.protobuf import json_format

from core import tenants
from core.settings import Settings
from devices import codecs
from ingest import demo
from ingest.simulator.fleet import SimDevice

_TYPES = {
    "up": integration.UplinkEvent,
    "join": integration.JoinEvent,
    "status": integration.StatusEvent,
}


def register_fleet(
    conn: psycopg.Connection, settings: Settings, devices: Iterable[SimDevice], slug: str = "demo"
) -> int:
    """Create tenant `slug` and register `devices` in it; returns the tenant id."""
    tenant_id = tenants.get_or_create(conn, tenants.TenantCreate(slug=slug, name=slug.title()))
    demo.register_fleet(conn, settings, tenant_id, devices)
    return tenant_id


def decode_event(kind: str, payload: bytes) -> object:
    """Parse an event with protobuf's own parsers: the test's oracle, independent of ingest."""
    message = _TYPES[kind]()
    if payload.lstrip()[:1] == b"{":
        json_format.Parse(payload, message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(payload)
    return message


@dataclass
class Expected:
    """What the database must hold once every published event is ingested."""

    seen: set[tuple[str, str]] = field(default_factory=set)
    uplinks: int = 0
    events: int = 0
    readings: int = 0
    rejects: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str, payload: bytes, registered: dict[str, str], dev_eui: str) -> None:
        """Account for one well-formed event; `registered` maps DevEUI to model."""
        message: Any = decode_event(kind, payload)
        key = (kind, message.deduplication_id)
        if key in self.seen:
            return
        self.seen.add(key)
        if dev_eui not in registered:
            self.rejects["unknown_device"] += 1
        elif kind == "up":
            self.uplinks += 1
            try:
                self.readings += len(
                    codecs.decode(registered[dev_eui], message.f_port, message.data)
                )
            except codecs.CodecError:
                self.rejects["undecodable_payload"] += 1
        else:
            self.events += 1
            if kind == "status":
                powered = message.battery_level_unavailable or message.external_power_source
                self.readings += 1 if powered else 2


def other_format(kind: str, payload: bytes) -> bytes:
    """The same event in the other encoding (JSON ↔ protobuf)."""
    message: Any = decode_event(kind, payload)
    if payload.lstrip()[:1] == b"{":
        return bytes(message.SerializeToString())
    return json_format.MessageToJson(message).encode()
