"""Turn a list of inbound messages into rows: parse, resolve devices, decode.

Nothing here touches the database except through the `resolve` callable, and
nothing raises on bad input: every message ends as rows, a reject, or "ignored".
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from devices import codecs
from devices.lookup import DeviceRef

from . import chirpstack
from .events import StoredReading, StoredUplink

log = logging.getLogger("civicsense.ingest")

Resolver = Callable[[Iterable[str]], Mapping[str, DeviceRef]]


@dataclass(slots=True)
class Inbound:
    """One message from a source, with the callback that acknowledges it after commit."""

    source: str
    event: str | None
    payload: bytes
    topic: str | None = None
    topic_dev_eui: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ack: Callable[[], None] | None = None


def from_topic(topic: str, payload: bytes, **kwargs: object) -> Inbound:
    """An Inbound for an MQTT message on `application/{app}/device/{devEUI}/event/{type}`."""
    parts = topic.split("/")
    if (
        len(parts) == 6
        and parts[0] == "application"
        and parts[2] == "device"
        and parts[4] == "event"
    ):
        return Inbound("mqtt", parts[5], payload, topic, parts[3], **kwargs)  # type: ignore[arg-type]
    return Inbound("mqtt", None, payload, topic, **kwargs)  # type: ignore[arg-type]


@dataclass(slots=True)
class Batch:
    """Rows ready for the writer, keyed so that only new events get their readings."""

    uplinks: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    readings: dict[str, list[StoredReading]] = field(default_factory=dict)
    uplink_facts: dict[str, StoredUplink] = field(default_factory=dict)
    rejects: list[tuple] = field(default_factory=list)
    acks: list[Callable[[], None]] = field(default_factory=list)
    downlink_feedback: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    ignored: int = 0
    duplicates: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)

    def reject(
        self,
        message: Inbound,
        reason: str,
        detail: str,
        *,
        key: str | None = None,
        dev_eui: str | None = None,
        tenant_id: int | None = None,
    ) -> None:
        """Record a reject; `key` (the event's id) makes redeliveries land once.

        Logged at DEBUG only: rejects are kept in ingest_rejects and counted in the
        metrics, and a stream of them would flood the log at INFO."""
        log.debug("rejected (%s): %s", reason, detail, extra={"event_id": key} if key else None)
        basis = f"{reason}|{key}" if key else f"{reason}|{message.topic}|"
        fingerprint = hashlib.sha256(basis.encode() + (b"" if key else message.payload)).digest()
        self.rejects.append(
            (
                message.received_at,
                tenant_id,
                message.source,
                message.topic,
                message.event,
                dev_eui or message.topic_dev_eui,
                reason,
                detail[:2000],
                fingerprint,
                message.payload,
            )
        )
        self.reject_reasons[reason] = self.reject_reasons.get(reason, 0) + 1


def assemble(messages: list[Inbound], resolve: Resolver, *, fmt: str = "auto") -> Batch:
    """Build the batch for `messages` (acks kept in order, duplicates within it dropped)."""
    batch = Batch(acks=[m.ack for m in messages if m.ack is not None])
    parsed: list[tuple[Inbound, chirpstack.Uplink | chirpstack.DeviceEvent]] = []
    for message in messages:
        if message.event is None:
            batch.reject(message, "invalid_topic", f"unexpected topic {message.topic!r}")
            continue
        if message.event in chirpstack.IGNORED_EVENTS:
            batch.ignored += 1
            continue
        if message.event in chirpstack.FEEDBACK_EVENTS:
            _add_feedback(batch, message, fmt)
            continue
        try:
            item = chirpstack.parse(
                message.event, message.payload, fmt=fmt, topic_dev_eui=message.topic_dev_eui
            )
        except chirpstack.EventError as exc:
            batch.reject(message, exc.reason, exc.detail)
            continue
        except Exception as exc:  # a parser bug must cost one reject, never the pipeline
            batch.reject(message, "invalid_event", f"{type(exc).__name__}: {exc}")
            continue
        parsed.append((message, item))
    devices = resolve({item.dev_eui for _, item in parsed}) if parsed else {}
    seen: set[str] = set()
    for message, item in parsed:
        key = _key(item)
        if key in seen:
            batch.duplicates += 1
            continue
        seen.add(key)
        device = devices.get(item.dev_eui)
        if device is None:
            batch.reject(
                message,
                "unknown_device",
                f"no live device with DevEUI {item.dev_eui}",
                key=key,
                dev_eui=item.dev_eui,
            )
        else:
            try:
                _add(batch, message, item, device, key)
            except Exception as exc:  # rows are only added once complete: nothing half-added
                batch.reject(message, "invalid_event", f"{type(exc).__name__}: {exc}", key=key)
    return batch


def _add_feedback(batch: Batch, message: Inbound, fmt: str) -> None:
    """A downlink's fate (txack, ack): kept for the writer, which updates the downlink."""
    assert message.event is not None
    try:
        feedback = chirpstack.downlink_feedback(message.event, message.payload, fmt=fmt)
    except chirpstack.EventError as exc:
        batch.reject(message, exc.reason, exc.detail)
        return
    if feedback is None:
        batch.ignored += 1
    else:
        batch.downlink_feedback.append(feedback)


def _add(
    batch: Batch,
    message: Inbound,
    item: chirpstack.Uplink | chirpstack.DeviceEvent,
    device: DeviceRef,
    key: str,
) -> None:
    if isinstance(item, chirpstack.Uplink):
        _add_uplink(batch, message, item, device, key)
    else:
        _add_event(batch, item, device, key)


def _key(item: chirpstack.Uplink | chirpstack.DeviceEvent) -> str:
    if isinstance(item, chirpstack.Uplink):
        return str(item.dedup_id)
    return f"{item.kind}:{item.key}"


def _add_uplink(
    batch: Batch, message: Inbound, up: chirpstack.Uplink, device: DeviceRef, key: str
) -> None:
    """Rows of one uplink; everything is computed before anything is added to the batch."""
    best = up.best_rx or {}
    gateway, rssi, snr = best.get("gatewayId"), best.get("rssi"), best.get("snr")
    rssi = None if rssi is None else round(rssi)  # JSON may say -88.0
    row = (
        up.time,
        device.tenant_id,
        device.id,
        up.dev_eui,
        up.dedup_id,
        up.f_cnt,
        up.f_port,
        up.data,
        up.confirmed,
        up.dr,
        up.adr,
        up.frequency,
        up.spreading_factor,
        up.bandwidth,
        gateway,
        rssi,
        snr,
        len(up.rx_info),
        orjson.dumps(up.rx_info).decode(),
        message.received_at,
    )
    gateways = tuple(str(rx.get("gatewayId", "")) for rx in up.rx_info)
    fact = StoredUplink(
        up.time, device.tenant_id, device.id, up.dev_eui, up.f_cnt, gateway, rssi, snr, gateways
    )
    readings: list[StoredReading] = []
    if up.f_port != 0:  # fPort 0 carries MAC commands only
        try:
            decoded = codecs.decode(device.model, up.f_port, up.data)
        except codecs.CodecError as exc:
            batch.reject(
                message,
                "undecodable_payload",
                str(exc),
                key=key,
                dev_eui=up.dev_eui,
                tenant_id=device.tenant_id,
            )
            decoded = []
        readings = [
            StoredReading(
                reading.timestamp or up.time + timedelta(seconds=reading.offset),
                device.tenant_id,
                device.id,
                up.dev_eui,
                device.model,
                reading.quantity,
                float(reading.value),
            )
            for reading in decoded
            if math.isfinite(reading.value)
        ]
    batch.uplinks.append(row)
    batch.uplink_facts[key] = fact
    if readings:
        batch.readings[key] = readings


def _add_event(batch: Batch, event: chirpstack.DeviceEvent, device: DeviceRef, key: str) -> None:
    batch.events.append(
        (
            event.time,
            device.tenant_id,
            device.id,
            event.dev_eui,
            event.kind,
            event.key,
            orjson.dumps(event.body, default=str).decode(),
        )
    )
    if event.readings:
        batch.readings[key] = [
            StoredReading(
                event.time,
                device.tenant_id,
                device.id,
                event.dev_eui,
                device.model,
                quantity,
                value,
            )
            for quantity, value in event.readings
        ]
