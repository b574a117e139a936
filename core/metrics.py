"""Prometheus metrics of every civicsense process, defined here in one place.

The web app serves them at GET /metrics behind a bearer token (`metrics_token`); `serve`,
`ingest` and `scheduler` can also expose them on a port of their own for a scraper on a
private network (`metrics_port`, `start_exporter`). Counters are per process: Prometheus
sums the processes and handles their restarts.

Ingest counts per batch, not per message, to keep its hot path cheap; the lag of each
stored uplink goes through `BulkHistogram`, which files a whole batch under one lock.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Protocol
from wsgiref.simple_server import WSGIServer

from fastapi import APIRouter, Header, HTTPException, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .scheduler import COUNTERS
from .settings import Settings

log = logging.getLogger("civicsense.metrics")


class BulkHistogram(Collector):
    """A label-less histogram that takes a batch of observations at once: one bisection per
    value and one lock per batch, where `Histogram.observe` takes a lock per value."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = [*buckets, float("inf")]
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        REGISTRY.register(self)

    def observe_many(self, values: Iterable[float]) -> None:
        """File every value of `values`."""
        counts = [0] * len(self._bounds)
        total = 0.0
        for value in values:
            counts[bisect_left(self._bounds, value)] += 1
            total += value
        with self._lock:
            self._counts = [a + b for a, b in zip(self._counts, counts, strict=True)]
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The cumulative buckets Prometheus expects."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, buckets = 0, []
        for bound, count in zip(self._bounds, counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, total)
        yield family


# --- ingest -----------------------------------------------------------------------------

INGEST_RECEIVED = Counter(
    "civicsense_ingest_received", "Messages from the sources (MQTT, HTTP) taken into a batch"
)
INGEST_UPLINKS_STORED = Counter("civicsense_ingest_uplinks_stored", "New uplinks committed")
INGEST_EVENTS_STORED = Counter(
    "civicsense_ingest_device_events_stored", "New device events (join, status) committed"
)
INGEST_READINGS_STORED = Counter("civicsense_ingest_readings_stored", "Readings committed")
INGEST_DUPLICATES = Counter(
    "civicsense_ingest_duplicates",
    "Events already stored (redeliveries, copies from a second gateway): not stored again",
)
INGEST_IGNORED = Counter(
    "civicsense_ingest_ignored", "Events of kinds not kept (log, location, integration...)"
)
INGEST_REJECTED = Counter(
    "civicsense_ingest_rejected",
    "Messages stored as rejects (ingest_rejects), by reason",
    ["reason"],
)
INGEST_BATCH_SIZE = Histogram(
    "civicsense_ingest_batch_size",
    "Messages per batch written",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
INGEST_LAG = BulkHistogram(
    "civicsense_ingest_lag_seconds",
    "Seconds from an uplink's time (ChirpStack's, else the gateway's, else its reception)"
    " to its commit",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


class QueueHolder(Protocol):
    """What the queue-depth gauge reads: an ingest pipeline."""

    def queue_depth(self) -> int:
        """Messages received and not yet committed."""
        ...


_pipelines: weakref.WeakSet[QueueHolder] = weakref.WeakSet()
INGEST_QUEUE_DEPTH = Gauge(
    "civicsense_ingest_queue_depth", "Messages received and not yet committed (all pipelines)"
)
INGEST_QUEUE_DEPTH.set_function(lambda: sum(p.queue_depth() for p in list(_pipelines)))


def watch_queue(pipeline: QueueHolder) -> None:
    """Count `pipeline`'s waiting messages in the queue-depth gauge while it lives."""
    _pipelines.add(pipeline)


# --- webhooks ---------------------------------------------------------------------------

NOTIFICATION_DELIVERIES = Counter(
    "civicsense_notification_deliveries",
    "Alert notifications sent (delivered), to be retried after a failure (retried), or"
    " given up (failed), by channel (email, webhook)",
    ["channel", "outcome"],
)
PAYMENT_WEBHOOKS_ACCEPTED = Counter(
    "civicsense_payment_webhooks_accepted", "Payment operators' session events applied"
)
PAYMENT_WEBHOOKS_REJECTED = Counter(
    "civicsense_payment_webhooks_rejected",
    "Payment operators' webhook calls refused, by reason",
    ["reason"],
)


# --- scheduler --------------------------------------------------------------------------


class SchedulerCollector(Collector):
    """The scheduler's per-job counters of this process (`core.scheduler.COUNTERS`)."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        """One sample per job and counter."""
        jobs = COUNTERS.snapshot()
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "runs": CounterMetricFamily(
                "civicsense_scheduler_job_runs", "Job runs in this process", labels=["job"]
            ),
            "failures": CounterMetricFamily(
                "civicsense_scheduler_job_failures", "Job runs that failed", labels=["job"]
            ),
            "skipped": CounterMetricFamily(
                "civicsense_scheduler_job_skipped",
                "Job slots left to another process (already run, or running)",
                labels=["job"],
            ),
            "last_duration_s": GaugeMetricFamily(
                "civicsense_scheduler_job_last_duration_seconds",
                "Duration of the job's last run",
                labels=["job"],
            ),
            "last_success": GaugeMetricFamily(
                "civicsense_scheduler_job_last_success_timestamp_seconds",
                "Unix time of the job's last successful run in this process (0: none yet)",
                labels=["job"],
            ),
        }
        for job, counters in sorted(jobs.items()):
            for key, family in families.items():
                family.add_metric([job], counters[key])
        yield from families.values()


REGISTRY.register(SchedulerCollector())


# --- HTTP -------------------------------------------------------------------------------

HTTP_LATENCY = Histogram(
    "civicsense_http_request_duration_seconds",
    "HTTP requests of the web app, by method, route template and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """ASGI middleware timing each request under its route's template (`/api/v1/devices/
    {dev_eui}`), never its raw path, so that the labels stay few whatever clients send."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._templates: dict[int, str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = self._template(scope)
            HTTP_LATENCY.labels(method, route, str(status)).observe(time.perf_counter() - started)

    def _template(self, scope: Scope) -> str:
        """The full template of the route that answered. The router leaves the route (an
        API route) or its endpoint (a plain route, a mount's app) in the scope; their own
        path lacks the prefixes they were included under, so both are looked up here."""
        if self._templates is None:  # every route exists once the app serves
            self._templates = {}
            for context in iter_route_contexts(scope["app"].routes):
                route, template = context.original_route, context.path_format or ""
                target = getattr(route, "endpoint", None) or getattr(route, "app", None)
                self._templates[id(route)] = template
                self._templates.setdefault(id(target), template)
        for key in ("route", "endpoint"):
            if key in scope and (found := self._templates.get(id(scope[key]))):
                return found
        return "unmatched"


# --- exposition -------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, authorization: Annotated[str | None, Header()] = None) -> Response:
    """The process's metrics in Prometheus' text format, for the bearer of `metrics_token`;
    404 when no token is configured (the endpoint is off)."""
    token = request.app.state.settings.metrics_token
    if token is None or not token.get_secret_value():
        raise HTTPException(404, "Not Found")
    expected = f"Bearer {token.get_secret_value()}".encode()
    if not hmac.compare_digest((authorization or "").encode(), expected):
        raise HTTPException(401, "metrics token required", {"WWW-Authenticate": "Bearer"})
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def start_exporter(settings: Settings) -> WSGIServer | None:
    """Serve the metrics on `metrics_host:metrics_port` in a thread, when a port is set;
    the server (to shut down), or None."""
    if settings.metrics_port is None:
        return None
    server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_host)
    log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return server
