"""`civicsense ingest` (the bridge worker) and `civicsense simulate` (a fleet's events, and
its drivers' payments)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from click.core import ParameterSource

from core import metrics
from core.cli import require_database
from core.settings import Settings

from .simulator import (
    DEFAULT_SHARES,
    DriverShares,
    FleetSimulator,
    PublishStats,
    demo_fleet,
    publish,
    replay_clock,
    wall_clock,
)
from .simulator.events import Clock
from .simulator.sensors import PARIS
from .worker import Worker, start_worker

if TYPE_CHECKING:
    from .simulator.payments import WebhookTarget

F = TypeVar("F", bound=Callable[..., object])


def require_broker(settings: Settings) -> str:
    """The broker URL, or a clear usage error."""
    if not settings.mqtt_url:
        raise click.UsageError(
            "no broker: set CIVICSENSE_MQTT_URL or --mqtt-url (`civicsense demo` starts one)"
        )
    return settings.mqtt_url


@click.command()
@click.option(
    "--shared-group",
    envvar="CIVICSENSE_MQTT_SHARED_GROUP",
    default="",
    help="MQTT 5 shared subscription group: workers of one group split the load.",
)
@click.option(
    "--client-id",
    envvar="CIVICSENSE_MQTT_CLIENT_ID",
    default="",
    help="Stable client id (the broker keeps this worker's session under it).",
)
@click.option(
    "--protobuf",
    "event_format",
    flag_value="protobuf",
    help="Events are binary protobuf (ChirpStack marshaler 'protobuf').",
)
@click.option("--json", "event_format", flag_value="json", help="Events are JSON.")
@click.option("--batch-size", type=click.IntRange(1, 100000), default=None)
@click.pass_obj
def ingest(
    settings: Settings,
    shared_group: str,
    client_id: str,
    event_format: str | None,
    batch_size: int | None,
) -> None:
    """Bridge ChirpStack's MQTT integration into the database until stopped."""
    require_database(settings)
    require_broker(settings)
    updates: dict[str, object] = {"mqtt_shared_group": shared_group}
    if event_format:
        updates["event_format"] = event_format
    if batch_size:
        updates["batch_size"] = batch_size
    settings = settings.model_copy(update=updates)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    metrics.start_exporter(settings)
    worker = start_worker(settings, client_id=client_id or None)
    click.echo(f"ingesting from {worker.source.topic} as {worker.source.client_id}", err=True)
    while not stop.wait(30):
        click.echo(_stats_line(worker), err=True)
    worker.stop()
    click.echo(f"ingest stopped: {_stats_line(worker)}", err=True)


def _stats_line(worker: Worker) -> str:
    stats = worker.pipeline.stats
    return (
        f"uplinks={stats.uplinks} events={stats.events} readings={stats.readings} "
        f"duplicates={stats.duplicates} rejects={dict(stats.rejects)}"
    )


def _town_time(text: str) -> datetime:
    """An ISO 8601 date and time; without an offset, the town's (Paris) time."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=PARIS)


def _clock(start: datetime | None, step: float | None) -> Clock:
    """The simulated town's clock: real time, shifted to `start`, or replayed `step` s a turn."""
    if step is not None:
        return replay_clock(start or wall_clock(), step)
    if start is None:
        return wall_clock
    offset = start - wall_clock()
    return lambda: wall_clock() + offset


_PAYMENT_OPTIONS = ("provider", "tenant", "provider_secret_file", "paying_share", "by_bay_share",
                    "late_share", "overstay_share")  # fmt: skip


def _payment_target(
    payments_url: str | None, provider: str | None, tenant: str | None, secret_file: Path | None
) -> WebhookTarget | None:
    """Where the drivers' payments go, or None; the secret is never taken from the command
    line (it would stay in the shell's history)."""
    context = click.get_current_context()
    if not payments_url:
        given = [name for name in _PAYMENT_OPTIONS
                 if context.get_parameter_source(name) is not ParameterSource.DEFAULT]  # fmt: skip
        if given:
            options = ", ".join("--" + name.replace("_", "-") for name in given)
            raise click.UsageError(f"{options}: only with --payments-url")
        return None
    from .simulator.payments import SECRET_ENV, WebhookTarget  # httpx: only when paying

    if not provider or not tenant:
        raise click.UsageError("--payments-url needs --provider and --tenant")
    secret = (secret_file.read_text() if secret_file else os.environ.get(SECRET_ENV, "")).strip()
    if not secret:
        raise click.UsageError(
            f"no signing secret for {provider}: set {SECRET_ENV} or --provider-secret-file"
        )
    return WebhookTarget(api_url=payments_url, provider=provider, tenant=tenant, secret=secret)


def _share(name: str, default: float, who: str) -> Callable[[F], F]:
    return click.option(
        f"--{name}-share", type=click.FloatRange(0, 1), default=default, show_default=True,
        help=f"Share of {who}.",
    )  # fmt: skip


@click.command()
@click.option(
    "--devices",
    default=60,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Fleet size (the same DevEUIs as `civicsense seed demo --devices N`).",
)
@click.option(
    "--rate",
    default=20.0,
    show_default=True,
    type=click.FloatRange(0.01, 100000),
    help="Events per second.",
)
@click.option(
    "--duration",
    type=click.FloatRange(0.1),
    default=None,
    help="Seconds to run [default: until Ctrl-C].",
)
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many events.")
@click.option("--protobuf", is_flag=True, help="Binary protobuf instead of JSON.")
@click.option("--seed", default=0, show_default=True, help="Fleet and randomness seed.")
@click.option(
    "--start",
    type=_town_time,
    default=None,
    metavar="DATETIME",
    help="The simulated town's time at the start (ISO 8601, Paris time without an offset) "
    "[default: now].",
)
@click.option(
    "--step",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Simulated seconds between two devices' turns: replays the town faster than real "
    "time [default: real time].",
)
@click.option(
    "--payments-url",
    default=None,
    metavar="URL",
    help="civicsense API base (http://HOST:PORT/api/v1): the drivers parking in the simulated "
    "bays pay through its payment-operator webhook.",
)
@click.option(
    "--provider",
    default=None,
    help="The payment operator's name there; its signing secret is read from "
    "$CIVICSENSE_PROVIDER_SECRET or --provider-secret-file.",
)
@click.option(
    "--provider-secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="A file holding the payment operator's signing secret.",
)
@click.option(
    "--tenant",
    default=None,
    help="Slug of the town paid for; its zones and bays are the demo's (`civicsense seed demo`).",
)
@_share("paying", DEFAULT_SHARES.paying, "drivers who pay")
@_share("by-bay", DEFAULT_SHARES.by_bay, "paying drivers who name their bay (others: the zone)")
@_share("late", DEFAULT_SHARES.late, "paying drivers who start after the grace minutes")
@_share("overstay", DEFAULT_SHARES.overstay, "paying drivers who never extend their session")
@click.pass_obj
def simulate(
    settings: Settings,
    devices: int,
    rate: float,
    duration: float | None,
    count: int | None,
    protobuf: bool,
    seed: int,
    start: datetime | None,
    step: float | None,
    payments_url: str | None,
    provider: str | None,
    provider_secret_file: Path | None,
    tenant: str | None,
    paying_share: float,
    by_bay_share: float,
    late_share: float,
    overstay_share: float,
) -> None:
    """Publish a simulated town's ChirpStack events to the broker; with --payments-url, its
    drivers pay for their stays through civicsense's payment webhook."""
    url = require_broker(settings)
    target = _payment_target(payments_url, provider, tenant, provider_secret_file)
    fleet = demo_fleet(devices, seed=seed)
    simulator = FleetSimulator(fleet, protobuf=protobuf, seed=seed)

    def progress(stats: PublishStats) -> None:
        click.echo(f"\rpublished {stats.published}", nl=False, err=True)

    with contextlib.ExitStack() as stack:
        drivers = None
        if target is not None:
            from .simulator.payments import SimulatedDrivers, WebhookSender

            sender = WebhookSender(target)
            stack.callback(sender.close)
            shares = DriverShares(paying_share, by_bay_share, late_share, overstay_share)
            drivers = SimulatedDrivers(fleet, sender.send, shares=shares, seed=seed)
        stats = publish(
            url, simulator, rate=rate, duration=duration, count=count, progress=progress,
            clock=_clock(start, step), observe=drivers.observe if drivers else None,
        )  # fmt: skip
    click.echo("", err=True)
    by_event = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_event.items()))
    summary = (
        f"published {stats.published} events ({by_event}) in {stats.elapsed:.1f}s; "
        f"{stats.malformed} malformed, {stats.duplicates} second-gateway copies, "
        f"{stats.unacked} unacknowledged"
    )
    if drivers is not None:
        summary += f"; {drivers.stats.summary()}"
    click.echo(summary)
    payments_lost = drivers is not None and (drivers.stats.refused or drivers.stats.failed)
    if stats.unacked or stats.refused or payments_lost:
        raise SystemExit(1)
