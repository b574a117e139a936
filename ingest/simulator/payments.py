"""The simulated drivers' payments, sent to civicsense as a payment operator's signed webhooks.

`SimulatedDrivers` watches the occupancy the simulated parking bays measure: a bay turning
occupied is a car arriving (a car already there when the simulation starts arrives then),
turning free is the car leaving. The driver model (`drivers.py`) says what each driver does
and when; each payment event is handed over when the simulator's clock passes its time, so
a replayed day pays as it goes. `WebhookSender` POSTs it to
`{api}/parking/providers/{provider}/events`, signed as the endpoint checks it.

The simulator does not know the town's zones: it assumes the zone `civicsense seed demo`
creates (`ZoneFacts()`: 10 grace minutes, 3 hours at most, paid time counted on the wall
clock) and sends no amounts. Bay codes are the simulated devices' places, zone codes their
prefix (`ROY-001` is in zone `ROY`), as the parking demo seeds them.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

import httpx

from core.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

from .drivers import (
    DEFAULT_SHARES,
    Driver,
    DriverShares,
    PaymentEvent,
    Stay,
    ZoneFacts,
    driver_for,
)
from .events import SimEvent
from .fleet import SimDevice

__all__ = [
    "SECRET_ENV",
    "Delivery",
    "PaymentStats",
    "SimulatedDrivers",
    "WebhookSender",
    "WebhookTarget",
    "sign",
]

log = logging.getLogger("civicsense.simulate")

SECRET_ENV = "CIVICSENSE_PROVIDER_SECRET"

Delivery = Literal["sent", "refused", "failed"]


@dataclass(frozen=True)
class WebhookTarget:
    """Where the payments go, and as which operator of which town."""

    api_url: str  # the API base, e.g. http://127.0.0.1:8000/api/v1
    provider: str
    tenant: str
    secret: str = field(repr=False)

    @property
    def events_url(self) -> str:
        """The operator's webhook endpoint."""
        return f"{self.api_url.rstrip('/')}/parking/providers/{self.provider}/events"


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _event_body(event: PaymentEvent, tenant: str) -> dict[str, Any]:
    """The webhook body of a payment event (parking's ProviderEvent)."""
    session = event.session
    return {
        "event_id": event.event_id,
        "type": event.kind,
        "occurred_at": _iso(event.at),
        "tenant": tenant,
        "session": {
            "id": session.id,
            "plate": session.plate,
            "zone": session.zone,
            "bay": session.bay,
            "started_at": _iso(session.started_at),
            "ends_at": _iso(session.ends_at),
            "stopped_at": _iso(session.stopped_at),
            "amount": None if session.amount is None else str(session.amount),
        },
    }


class WebhookSender:
    """POSTs payment events, signed, retrying network errors and 5xx answers a few times.

    A 4xx answer is a refusal: logged with its reason, not retried. Each attempt is signed
    anew; the receiver refuses the very same signed request twice (409), so a 409 answering
    a retry means an earlier attempt got through.
    """

    def __init__(
        self,
        target: WebhookTarget,
        *,
        client: httpx.Client | None = None,
        attempts: int = 4,
        backoff: float = 1.0,
    ) -> None:
        self.target = target
        self._client = client or httpx.Client(timeout=10.0)
        self._attempts = attempts
        self._backoff = backoff

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def send(self, event: PaymentEvent) -> Delivery:
        """Deliver one event; what became of it."""
        body = json.dumps(_event_body(event, self.target.tenant)).encode()
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(self._backoff * 2 ** (attempt - 1))
            timestamp = int(time.time())
            headers = {
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(self.target.secret, timestamp, body),
                "Content-Type": "application/json",
            }
            try:
                response = self._client.post(self.target.events_url, content=body, headers=headers)
            except httpx.TransportError as exc:
                log.warning("payment %s: %s (attempt %d)", event.event_id, exc, attempt + 1)
                continue
            if response.is_success or (response.status_code == 409 and attempt):
                return "sent"
            if response.status_code < 500:
                log.warning("payment %s refused: %d %s", event.event_id, response.status_code,
                            response.text[:500])  # fmt: skip
                return "refused"
            log.warning("payment %s: %d (attempt %d)", event.event_id, response.status_code,
                        attempt + 1)  # fmt: skip
        return "failed"


@dataclass
class PaymentStats:
    """Payment events delivered by kind, refused (4xx) and undeliverable."""

    started: int = 0
    extended: int = 0
    stopped: int = 0
    refused: int = 0
    failed: int = 0

    def count(self, event: PaymentEvent, delivery: Delivery) -> None:
        """Count one event's delivery."""
        name = event.kind.removeprefix("session.") if delivery == "sent" else delivery
        setattr(self, name, getattr(self, name) + 1)

    def summary(self) -> str:
        """'payments: 3 started, 1 extended, 2 stopped, 0 refused, 0 failed'."""
        return (
            f"payments: {self.started} started, {self.extended} extended, "
            f"{self.stopped} stopped, {self.refused} refused, {self.failed} failed"
        )


@dataclass(eq=False)
class _Parked:
    """A car in a bay: its stay so far, what its driver plans, how much of it was sent."""

    dev_eui: str
    stay: Stay
    driver: Driver
    plan: list[PaymentEvent]
    sent: int = 0


class SimulatedDrivers:
    """The drivers of a simulated fleet's parking bays; `observe` each published event."""

    def __init__(
        self,
        fleet: Iterable[SimDevice],
        send: Callable[[PaymentEvent], Delivery],
        *,
        shares: DriverShares = DEFAULT_SHARES,
        seed: int = 0,
        zone: ZoneFacts | None = None,
    ) -> None:
        self._bays = {d.dev_eui: d.place for d in fleet if d.kind == "parking"}
        self._send = send
        self._shares = shares
        self._seed = seed
        self._zone = zone or ZoneFacts()
        self._occupied: dict[str, bool] = {}
        self._parked: dict[str, _Parked] = {}
        self._due: list[tuple[datetime, int, _Parked]] = []  # next planned event of each car
        self._order = itertools.count()
        self.stats = PaymentStats()

    def observe(self, event: SimEvent) -> None:
        """Hand over the payments due by the event's time, then see who arrived or left."""
        if event.time is None:
            return
        self._pay_until(event.time)
        occupied = (event.readings or {}).get("occupied")
        if occupied is None or event.dev_eui not in self._bays:
            return
        was = self._occupied.get(event.dev_eui, False)
        self._occupied[event.dev_eui] = bool(occupied)
        if occupied and not was:
            self._arrive(event.dev_eui, event.time)
        elif was and not occupied:
            self._leave(event.dev_eui, event.time)

    def _arrive(self, dev_eui: str, when: datetime) -> None:
        bay = self._bays[dev_eui]
        stay = Stay(bay=bay, zone=bay.split("-")[0], arrived_at=when)
        driver = driver_for(stay, self._zone, shares=self._shares, seed=self._seed)
        parked = _Parked(dev_eui, stay, driver, driver.timeline(stay, self._zone))
        self._parked[dev_eui] = parked
        self._schedule(parked)

    def _leave(self, dev_eui: str, when: datetime) -> None:
        """The rest of the driver's events: those before leaving not yet due, and the stop.

        Events already sent were due before `when`, so they open the final timeline too.
        """
        parked = self._parked.pop(dev_eui, None)
        if parked is None:
            return
        stay = replace(parked.stay, left_at=when)
        for event in parked.driver.timeline(stay, self._zone)[parked.sent :]:
            self._deliver(event)

    def _schedule(self, parked: _Parked) -> None:
        if parked.sent < len(parked.plan):
            at = parked.plan[parked.sent].at
            heapq.heappush(self._due, (at, next(self._order), parked))

    def _pay_until(self, now: datetime) -> None:
        """Send the planned events of cars still parked that fell due before `now`."""
        while self._due and self._due[0][0] < now:
            _, _, parked = heapq.heappop(self._due)
            if self._parked.get(parked.dev_eui) is not parked:
                continue  # the car left meanwhile
            self._deliver(parked.plan[parked.sent])
            parked.sent += 1
            self._schedule(parked)

    def _deliver(self, event: PaymentEvent) -> None:
        self.stats.count(event, self._send(event))
