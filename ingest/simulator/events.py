"""FleetSimulator: a fleet's simulated life as ChirpStack v4 events, in JSON or Protobuf."""

from __future__ import annotations

import heapq
import itertools
import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chirpstack_api import common, integration
from google.protobuf import json_format
from google.protobuf.message import Message

from devices.codecs import CodecError, decode, encode

from . import radio
from .fleet import (
    APPLICATION_NAMES,
    PROFILE_NAMES,
    TENANT_ID,
    TENANT_NAME,
    SimDevice,
)
from .sensors import Sensor, sensor_for

Clock = Callable[[], datetime]
# (poll period, polls between reports when nothing changed) per device kind
_CADENCE = {
    "parking": (timedelta(minutes=2), 30),  # change frames at once, a heartbeat an hour
    "air": (timedelta(minutes=10), 1),  # an uplink every 10 minutes
    "leak": (timedelta(minutes=5), 4),  # every 20 minutes, a leak at once
}
_SECOND_GATEWAY_SHARE = 0.3


@dataclass(frozen=True)
class SimEvent:
    """One MQTT message as ChirpStack publishes it, with what the simulator knows about it.

    `malformed`: the payload is not a parsable event, or its uplink data does not decode.
    `duplicate`: a second copy of the previous uplink (same deduplicationId) via another gateway.
    `time`: the simulated town's time of the event. `readings`: what the device measured for
    an uplink (also when the frame got corrupted on the way), None for other events.
    """

    topic: str
    payload: bytes
    event: str
    dev_eui: str
    deduplication_id: str | None
    malformed: bool
    duplicate: bool = False
    time: datetime | None = None
    readings: Mapping[str, float] | None = field(default=None, hash=False)


def wall_clock() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


def replay_clock(start: datetime, step: timedelta | float) -> Clock:
    """A clock that reads `start`, then `step` (a timedelta or seconds) later on each call."""
    increment = step if isinstance(step, timedelta) else timedelta(seconds=step)
    ticks = itertools.count()
    return lambda: start + next(ticks) * increment


@dataclass(eq=False)
class _Tracked:
    """A device's network-side state: session, counters and when it is next polled."""

    device: SimDevice
    sensor: Sensor
    link: radio.Link
    device_info: integration.DeviceInfo
    dev_addr: str = ""
    f_cnt: int = 0
    polls: int = 0
    uplinks: int = 0
    reported_alarm: int | None = None


class FleetSimulator:
    """Produces the ChirpStack events of a fleet: joins, uplinks, statuses, duplicates, bad frames.

    Each time an event is wanted, the clock is read once, the devices take turns in the order of
    their next poll (so the relative cadence of the kinds holds whatever the event rate), and the
    first device with something to say is brought to the clock's time and reports.
    """

    def __init__(
        self,
        devices: Iterable[SimDevice],
        *,
        protobuf: bool | None = False,
        seed: int = 0,
        start: datetime | None = None,
        malformed_ratio: float = 0.005,
        duplicate_gateway_ratio: float = 0.1,
        status_every: int = 24,
    ) -> None:
        self.devices = tuple(devices)
        if not self.devices:
            raise ValueError("a fleet needs at least one device")
        if unknown := {d.kind for d in self.devices} - _CADENCE.keys():
            raise ValueError(f"no simulation for device kinds {sorted(unknown)}")
        if status_every < 1:
            raise ValueError("status_every counts uplinks, it must be at least 1")
        self.protobuf = protobuf
        self.malformed_ratio = malformed_ratio
        self.duplicate_gateway_ratio = duplicate_gateway_ratio
        self.status_every = status_every
        self._rng = random.Random(seed)
        self._start = start
        self._queue: list[tuple[datetime, int, _Tracked]] = []
        self._pending: deque[SimEvent] = deque()

    def prepare(self, clock: Clock = wall_clock) -> None:
        """Build every device's state at `start` (else the clock's instant) before the first
        event is asked for: otherwise the first event is stamped before the work (about a
        second for 20,000 devices) and published that much after its own time."""
        if not self._queue:
            self._start_fleet(self._start or _aware(clock()))

    def events(self, count: int | None = None, *, clock: Clock = wall_clock) -> Iterator[SimEvent]:
        """Exactly `count` events (endless if None), stamped by `clock` (real time by default)."""
        stream = self._stream(clock)
        return stream if count is None else itertools.islice(stream, count)

    def _stream(self, clock: Clock) -> Iterator[SimEvent]:
        while True:
            if not self._pending:
                self._pending.extend(self._occasion(_aware(clock())))
            yield self._pending.popleft()

    def _occasion(self, now: datetime) -> list[SimEvent]:
        """The events of one device's turn at `now`: a join first, an uplink, maybe a status."""
        tracked = self._next_reporter(now)
        events = [] if tracked.dev_addr else [self._join(tracked, now)]
        uplinks = self._uplinks(tracked, now)
        events.extend(uplinks)
        tracked.uplinks += 1
        if tracked.uplinks % self.status_every == 0:
            events.append(self._status(tracked, now, uplinks[0].deduplication_id))
        return events

    def _next_reporter(self, now: datetime) -> _Tracked:
        """Poll devices in turn until one has news; the last polled reports if none has."""
        if not self._queue:
            self._start_fleet(self._start or now)
        for _ in range(len(self._queue)):
            due, order, tracked = heapq.heappop(self._queue)
            period, polls_per_report = _CADENCE[tracked.device.kind]
            heapq.heappush(self._queue, (max(due, now) + period, order, tracked))
            tracked.sensor.advance(self._rng, now)
            tracked.polls += 1
            if (
                tracked.polls >= polls_per_report
                or tracked.sensor.alarm != tracked.reported_alarm
                or not tracked.dev_addr
            ):
                break
        return tracked

    def _start_fleet(self, start: datetime) -> None:
        for order, device in enumerate(self.devices):
            period, _ = _CADENCE[device.kind]
            tracked = _Tracked(
                device=device,
                sensor=sensor_for(device, self._rng, start),
                link=radio.link_for(device),
                device_info=_device_info(device),
            )
            self._queue.append((start + period * self._rng.random(), order, tracked))
        heapq.heapify(self._queue)

    def _join(self, tracked: _Tracked, now: datetime) -> SimEvent:
        tracked.dev_addr = f"{0x26000000 | self._rng.getrandbits(25):08x}"
        tracked.f_cnt = 0
        message = integration.JoinEvent(
            deduplication_id=self._uuid(),
            device_info=tracked.device_info,
            dev_addr=tracked.dev_addr,
            region_config_id=radio.REGION_CONFIG_ID,
        )
        message.time.FromDatetime(now)
        return self._event(tracked.device, "join", message, now)

    def _status(self, tracked: _Tracked, now: datetime, deduplication_id: str | None) -> SimEvent:
        """DevStatusAns riding on the uplink just sent, so it shares its deduplicationId."""
        margin = radio.snr_for(tracked.link.hops[0][1]) + self._rng.gauss(0, 1)
        message = integration.StatusEvent(
            deduplication_id=deduplication_id or self._uuid(),
            device_info=tracked.device_info,
            margin=round(margin),
            battery_level=round(tracked.sensor.battery, 2),
        )
        message.time.FromDatetime(now)
        return self._event(tracked.device, "status", message, now)

    def _uplinks(self, tracked: _Tracked, now: datetime) -> list[SimEvent]:
        """The uplink of this turn: one event, two for a duplicate, or a malformed one."""
        alarm = tracked.sensor.alarm
        heartbeat = alarm == tracked.reported_alarm
        tracked.polls, tracked.reported_alarm = 0, alarm
        readings = tracked.sensor.readings(self._rng, heartbeat=heartbeat)
        fport, data = encode(tracked.device.model, readings)
        device, roll = tracked.device, self._rng.random()
        if roll < self.malformed_ratio:
            broken = None
            if roll >= self.malformed_ratio / 2:
                broken = _undecodable(device.model, fport, data)
            if broken is None:
                uplink = self._uplink(tracked, now, fport, data)
                return [self._garbage(device, uplink, now, readings)]
            uplink = self._uplink(tracked, now, fport, broken)
            return [self._event(device, "up", uplink, now, readings, malformed=True)]
        uplink = self._uplink(tracked, now, fport, data)
        events = [self._event(device, "up", uplink, now, readings)]
        if self._rng.random() < self.duplicate_gateway_ratio:
            copy = self._other_gateway(tracked, uplink, now)
            events.append(self._event(device, "up", copy, now, readings, duplicate=True))
        return events

    def _uplink(
        self, tracked: _Tracked, now: datetime, fport: int, data: bytes
    ) -> integration.UplinkEvent:
        channel = radio.random_channel(self._rng)
        gateways = 2 if self._rng.random() < _SECOND_GATEWAY_SHARE else 1
        uplink = integration.UplinkEvent(
            deduplication_id=self._uuid(),
            device_info=tracked.device_info,
            dev_addr=tracked.dev_addr,
            adr=True,
            dr=tracked.link.data_rate,
            f_cnt=tracked.f_cnt,
            f_port=fport,
            data=data,
            rx_info=radio.rx_info(tracked.link, now, self._rng, gateways=gateways, channel=channel),
            tx_info=radio.tx_info(tracked.link, channel),
            region_config_id=radio.REGION_CONFIG_ID,
        )
        uplink.time.FromDatetime(now)
        tracked.f_cnt += 1
        return uplink

    def _other_gateway(
        self, tracked: _Tracked, uplink: integration.UplinkEvent, now: datetime
    ) -> integration.UplinkEvent:
        """The same uplink as delivered through another gateway: rxInfo reordered, re-measured."""
        copy = integration.UplinkEvent()
        copy.CopyFrom(uplink)
        channel = uplink.rx_info[0].channel
        heard = radio.rx_info(tracked.link, now, self._rng, gateways=2, channel=channel)
        del copy.rx_info[:]
        copy.rx_info.extend(reversed(heard))
        return copy

    def _garbage(
        self,
        device: SimDevice,
        uplink: integration.UplinkEvent,
        now: datetime,
        readings: Mapping[str, float],
    ) -> SimEvent:
        """A corrupted delivery of `uplink`: bytes that are neither JSON nor Protobuf."""
        intact = self._serialise(uplink)
        # JSON cut mid-document; Protobuf starting with the invalid field number 0
        garbage = intact[: len(intact) // 2]
        if not intact.startswith(b"{"):
            garbage = b"\x00" + garbage[1:]
        return SimEvent(_topic(device, "up"), garbage, "up", device.dev_eui, None,
                        malformed=True, time=now, readings=readings)  # fmt: skip

    def _event(
        self,
        device: SimDevice,
        kind: str,
        message: Message,
        now: datetime,
        readings: Mapping[str, float] | None = None,
        *,
        malformed: bool = False,
        duplicate: bool = False,
    ) -> SimEvent:
        return SimEvent(
            topic=_topic(device, kind),
            payload=self._serialise(message),
            event=kind,
            dev_eui=device.dev_eui,
            deduplication_id=message.deduplication_id,
            malformed=malformed,
            duplicate=duplicate,
            time=now,
            readings=readings,
        )

    def _serialise(self, message: Message) -> bytes:
        """Binary Protobuf, or ChirpStack's JSON: the protobuf JSON mapping, camelCase, compact."""
        binary = self.protobuf if self.protobuf is not None else self._rng.random() < 0.5
        if binary:
            return message.SerializeToString()
        document = json_format.MessageToDict(message)
        # ChirpStack writes every field of deviceInfo, deviceClassEnabled CLASS_A (zero) included
        document["deviceInfo"] = json_format.MessageToDict(
            message.device_info, always_print_fields_with_no_presence=True
        )
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


def _topic(device: SimDevice, kind: str) -> str:
    return f"application/{device.application_id}/device/{device.dev_eui}/event/{kind}"


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _device_info(device: SimDevice) -> integration.DeviceInfo:
    tags = {"model": device.model, "kind": device.kind, "site": device.site}
    if device.place:
        tags["place"] = device.place
    return integration.DeviceInfo(
        tenant_id=TENANT_ID,
        tenant_name=TENANT_NAME,
        application_id=device.application_id,
        application_name=APPLICATION_NAMES.get(device.kind, device.kind),
        device_profile_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"civicsense:{device.model}")),
        device_profile_name=PROFILE_NAMES.get(device.model, device.model),
        device_name=device.name,
        dev_eui=device.dev_eui,
        device_class_enabled=common.CLASS_A,
        tags=tags,
    )


def _undecodable(model: str, fport: int, data: bytes) -> bytes | None:
    """A truncation of `data` that the model's codec rejects, if one exists."""
    for cut in (len(data) - 1, len(data) // 2, 0):
        try:
            decode(model, fport, data[:cut])
        except CodecError:
            return data[:cut]
    return None
