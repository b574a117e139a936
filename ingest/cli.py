"""`civicsense ingest` (the bridge worker) and `civicsense simulate` (a fleet's events)."""

from __future__ import annotations

import signal
import threading

import click

from core.cli import require_database
from core.settings import Settings

from .worker import start_worker


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
    worker = start_worker(settings, client_id=client_id or None)
    click.echo(f"ingesting from {worker.source.topic} as {worker.source.client_id}", err=True)
    while not stop.wait(30):
        stats = worker.pipeline.stats
        click.echo(
            f"uplinks={stats.uplinks} events={stats.events} readings={stats.readings} "
            f"duplicates={stats.duplicates} rejects={dict(stats.rejects)}",
            err=True,
        )
    worker.stop()
    click.echo("ingest stopped", err=True)


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
@click.pass_obj
def simulate(
    settings: Settings,
    devices: int,
    rate: float,
    duration: float | None,
    count: int | None,
    protobuf: bool,
    seed: int,
) -> None:
    """Publish a simulated town's ChirpStack events to the broker."""
    from .simulator import FleetSimulator, demo_fleet, publish

    url = require_broker(settings)
    simulator = FleetSimulator(demo_fleet(devices, seed=seed), protobuf=protobuf, seed=seed)

    def progress(stats: object) -> None:
        click.echo(f"\rpublished {stats.published}", nl=False, err=True)  # type: ignore[attr-defined]

    stats = publish(url, simulator, rate=rate, duration=duration, count=count, progress=progress)
    click.echo("", err=True)
    by_event = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.by_event.items()))
    click.echo(
        f"published {stats.published} events ({by_event}) in {stats.elapsed:.1f}s; "
        f"{stats.malformed} malformed, {stats.duplicates} second-gateway copies, "
        f"{stats.unacked} unacknowledged"
    )
    if stats.unacked or stats.refused:
        raise SystemExit(1)
