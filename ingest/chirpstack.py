"""ChirpStack v4 integration events, JSON (protobuf JSON mapping) or binary protobuf.

Every field is optional: early v4 releases omitted zero values (`fCnt: 0`), and
anything may be missing from a hand-made or truncated event. JSON goes through a
fast path (orjson and dict look-ups); protobuf through `chirpstack_api` types.
Both produce the same `Uplink` / `DeviceEvent` values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from chirpstack_api import integration
from google.protobuf.message import DecodeError

STORED_EVENTS = ("up", "join", "status", "log")
FEEDBACK_EVENTS = ("ack", "txack")  # what became of a downlink civicsense queued
IGNORED_EVENTS = ("location", "integration")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX16 = re.compile(r"[0-9a-f]{16}")
_DEDUP_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4b8e-9d39-2b7c1f5e0a11")


class EventError(ValueError):
    """An event that cannot be used; `reason` is the reject reason stored with it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Uplink:
    """The parts of an `up` event civicsense keeps."""

    dev_eui: str
    dedup_id: uuid.UUID
    time: datetime
    f_cnt: int
    f_port: int
    data: bytes
    confirmed: bool
    dr: int
    adr: bool
    frequency: int | None
    spreading_factor: int | None
    bandwidth: int | None
    rx_info: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_rx(self) -> dict[str, Any] | None:
        """The gateway that heard the uplink best (highest SNR, then RSSI)."""
        if not self.rx_info:
            return None
        return max(self.rx_info, key=lambda rx: (rx.get("snr", 0.0), rx.get("rssi", -999)))


@dataclass(slots=True)
class DeviceEvent:
    """A `join`, `status` or `log` event; `readings` are those it carries (status)."""

    kind: str
    dev_eui: str
    key: str
    time: datetime
    body: dict[str, Any]
    readings: list[tuple[str, float]] = field(default_factory=list)


def detect_format(payload: bytes) -> str:
    """'json' when the payload is a JSON object, else 'protobuf'.

    A protobuf event never starts with `{` or `[` (they would be groups, unused in v4).
    """
    return "json" if payload.lstrip()[:1] in (b"{", b"[") else "protobuf"


def parse(
    event: str, payload: bytes, *, fmt: str = "auto", topic_dev_eui: str | None = None
) -> Uplink | DeviceEvent:
    """Parse one event of type `event` (from the topic or `?event=`)."""
    if event not in STORED_EVENTS:
        raise EventError("unsupported_event", f"event type {event!r} is not stored")
    fmt = detect_format(payload) if fmt == "auto" else fmt
    get: _JsonFields | _ProtoFields
    if fmt == "json":
        get = _JsonFields(_load_json(payload))
    else:
        get = _ProtoFields(_load_proto(event, payload))
    dev_eui = normalise_dev_eui(get.dev_eui() or topic_dev_eui)
    if event == "up":
        return _uplink(get, dev_eui, payload)
    return _device_event(event, get, dev_eui, payload)


_FEEDBACK_TYPES = {"ack": integration.AckEvent, "txack": integration.TxAckEvent}


def downlink_feedback(
    event: str, payload: bytes, *, fmt: str = "auto"
) -> tuple[uuid.UUID, str] | None:
    """(queue item id, new status) from a `txack` (sent) or `ack` (acknowledged or nacked)
    event; None when it names no queue item."""
    fmt = detect_format(payload) if fmt == "auto" else fmt
    if fmt == "json":
        body = _load_json(payload)
        queue_item, acknowledged = body.get("queueItemId"), body.get("acknowledged", False)
    else:
        try:
            message = _FEEDBACK_TYPES[event].FromString(payload)
        except (DecodeError, RuntimeWarning, ValueError) as exc:
            raise EventError("invalid_protobuf", f"not a {event} protobuf event: {exc}") from None
        queue_item = message.queue_item_id
        acknowledged = event == "ack" and message.acknowledged
    if not queue_item:
        return None
    try:
        queue_id = uuid.UUID(str(queue_item))
    except ValueError:
        raise EventError("invalid_event", f"queueItemId is not a UUID: {queue_item!r}") from None
    if event == "txack":
        return queue_id, "sent"
    return queue_id, "acknowledged" if acknowledged is True else "nacked"


def normalise_dev_eui(value: object) -> str:
    """16 lowercase hex digits, or EventError."""
    if value is not None and not isinstance(value, str):
        raise EventError("invalid_event", f"devEui is not a string: {value!r}")
    text = (value or "").strip().lower().replace("-", "").replace(":", "")
    if not _HEX16.fullmatch(text):
        raise EventError("invalid_event", f"missing or invalid devEui {value!r}")
    return text


def _load_json(payload: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise EventError("invalid_json", f"not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise EventError("invalid_json", "JSON event is not an object")
    return body


_PROTO_TYPES = {
    "up": integration.UplinkEvent,
    "join": integration.JoinEvent,
    "status": integration.StatusEvent,
    "log": integration.LogEvent,
}


def _load_proto(event: str, payload: bytes) -> Any:
    try:
        return _PROTO_TYPES[event].FromString(payload)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise EventError("invalid_protobuf", f"not a {event} protobuf event: {exc}") from None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EventError("invalid_event", f"invalid time {text!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _dedup_id(text: object, dev_eui: str, raw: bytes) -> uuid.UUID:
    """The event's deduplicationId; a name-based UUID of the bytes when it has none."""
    if text is not None and not isinstance(text, str):
        raise EventError("invalid_event", f"deduplicationId is not a string: {text!r}")
    if text:
        try:
            return uuid.UUID(text)
        except ValueError:
            raise EventError("invalid_event", f"invalid deduplicationId {text!r}") from None
    return uuid.uuid5(_DEDUP_NAMESPACE, dev_eui + hashlib.sha256(raw).hexdigest())


def _object(value: object, name: str) -> dict[str, Any]:
    """A JSON object field (absent: empty), or EventError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventError("invalid_event", f"{name} is not an object")
    return value


def _number(value: object, name: str) -> float | None:
    """A JSON number field (absent: None), or EventError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError("invalid_event", f"{name} is not a number: {value!r}")
    return value


class _JsonFields:
    """Field access on the JSON mapping (camelCase, zero values possibly omitted)."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def dev_eui(self) -> str | None:
        return _object(self.body.get("deviceInfo"), "deviceInfo").get("devEui")

    def dedup(self) -> str | None:
        return self.body.get("deduplicationId")

    def time(self) -> datetime | None:
        value = self.body.get("time")
        if value is not None and not isinstance(value, str):
            raise EventError("invalid_event", f"time is not a string: {value!r}")
        return _parse_time(value)

    def int_(self, name: str) -> int:
        """A number field; absent means zero in the protobuf JSON mapping."""
        value = self.body.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise EventError("invalid_event", f"{name} is not a number: {value!r}")
        try:
            return int(value)
        except ValueError:
            raise EventError("invalid_event", f"{name} is not a number: {value!r}") from None

    def bool_(self, name: str) -> bool:
        return bool(self.body.get(name, False))

    def data(self) -> bytes:
        text = self.body.get("data") or ""
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise EventError("invalid_event", "data is not base64") from None

    def tx(self) -> tuple[int | None, int | None, int | None]:
        tx = _object(self.body.get("txInfo"), "txInfo")
        lora = _object(_object(tx.get("modulation"), "modulation").get("lora"), "lora")
        values = (
            _number(tx.get("frequency"), "frequency"),
            _number(lora.get("spreadingFactor"), "spreadingFactor"),
            _number(lora.get("bandwidth"), "bandwidth"),
        )
        return tuple(None if v is None else int(v) for v in values)  # type: ignore[return-value]

    def rx_info(self) -> list[dict[str, Any]]:
        items = self.body.get("rxInfo") or []
        if not isinstance(items, list):
            raise EventError("invalid_event", "rxInfo is not a list")
        return [_rx_from_json(_object(rx, "rxInfo item")) for rx in items]

    def as_dict(self) -> dict[str, Any]:
        return self.body

    def status(self) -> tuple[float | None, int | None]:
        body = self.body
        unavailable = body.get("batteryLevelUnavailable", False) or body.get(
            "externalPowerSource", False
        )
        battery = None if unavailable else _number(body.get("batteryLevel", 0.0), "batteryLevel")
        margin = _number(body.get("margin", 0), "margin")
        return battery, None if margin is None else int(margin)


def _rx_from_json(rx: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {k: rx[k] for k in ("gatewayId", "gwTime", "nsTime") if k in rx}
    for name in ("rssi", "snr", "channel"):
        value = _number(rx.get(name), name)
        if value is not None:
            kept[name] = value
    location = rx.get("location")
    if isinstance(location, dict):
        kept["location"] = {
            k: location[k] for k in ("latitude", "longitude", "altitude") if k in location
        }
    return kept


def _timestamp_text(message: Any, name: str) -> str | None:
    """RFC 3339 text of a Timestamp field, microseconds, as ChirpStack's JSON has it."""
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    when = _EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


_PROTO_NAMES = {"fPort": "f_port", "fCnt": "f_cnt", "dr": "dr"}


class _ProtoFields:
    """Field access on a `chirpstack_api.integration` message."""

    def __init__(self, message: Any) -> None:
        self.message = message

    def dev_eui(self) -> str | None:
        return self.message.device_info.dev_eui or None

    def dedup(self) -> str | None:
        return getattr(self.message, "deduplication_id", "") or None

    def time(self) -> datetime | None:
        if not self.message.HasField("time"):
            return None
        return self.message.time.ToDatetime(tzinfo=UTC)

    def int_(self, name: str) -> int:
        return int(getattr(self.message, _PROTO_NAMES[name]))

    def bool_(self, name: str) -> bool:
        return bool(getattr(self.message, name))

    def data(self) -> bytes:
        return bytes(self.message.data)

    def tx(self) -> tuple[int | None, int | None, int | None]:
        tx = self.message.tx_info
        lora = tx.modulation.lora
        return tx.frequency or None, lora.spreading_factor or None, lora.bandwidth or None

    def rx_info(self) -> list[dict[str, Any]]:
        rows = []
        for rx in self.message.rx_info:
            kept: dict[str, Any] = {"gatewayId": rx.gateway_id, "rssi": rx.rssi}
            kept["snr"] = float(f"{rx.snr:.7g}")  # float32 in protobuf
            kept["channel"] = rx.channel
            for name, key in (("gw_time", "gwTime"), ("ns_time", "nsTime")):
                text = _timestamp_text(rx, name)
                if text:
                    kept[key] = text
            if rx.HasField("location"):
                loc = rx.location
                kept["location"] = {
                    "latitude": loc.latitude,
                    "longitude": loc.longitude,
                    "altitude": loc.altitude,
                }
            rows.append(kept)
        return rows

    def as_dict(self) -> dict[str, Any]:
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(self.message)

    def status(self) -> tuple[float | None, int | None]:
        m = self.message
        unavailable = m.battery_level_unavailable or m.external_power_source
        return (None if unavailable else m.battery_level), m.margin


def _event_time(get: _JsonFields | _ProtoFields) -> datetime:
    """The event's time; the first gateway's time, then now, when ChirpStack gave none."""
    when = get.time()
    if when is not None:
        return when
    for rx in get.rx_info():
        text = rx.get("gwTime") or rx.get("nsTime")
        parsed = _parse_time(text) if isinstance(text, str) else None
        if parsed is not None:
            return parsed
    return datetime.now(UTC)


def _uplink(get: _JsonFields | _ProtoFields, dev_eui: str, raw: bytes) -> Uplink:
    frequency, spreading_factor, bandwidth = get.tx()
    f_port = get.int_("fPort")
    return Uplink(
        dev_eui=dev_eui,
        dedup_id=_dedup_id(get.dedup(), dev_eui, raw),
        time=_event_time(get),
        f_cnt=get.int_("fCnt"),
        f_port=f_port,
        data=get.data(),
        confirmed=get.bool_("confirmed"),
        dr=get.int_("dr"),
        adr=get.bool_("adr"),
        frequency=frequency,
        spreading_factor=spreading_factor,
        bandwidth=bandwidth,
        rx_info=get.rx_info(),
    )


def _device_event(
    kind: str, get: _JsonFields | _ProtoFields, dev_eui: str, raw: bytes
) -> DeviceEvent:
    dedup = get.dedup()
    key = dedup or hashlib.sha256(raw).hexdigest()
    readings: list[tuple[str, float]] = []
    if kind == "status":
        battery, margin = get.status()
        if battery is not None:
            readings.append(("battery", float(battery)))
        if margin is not None:
            readings.append(("link_margin", float(margin)))
    body = get.as_dict()
    body.pop("deviceInfo", None)
    return DeviceEvent(kind, dev_eui, key, _event_time(get), body, readings)
