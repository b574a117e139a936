"""The `civicsense` command: core's commands plus every installed package's."""

from __future__ import annotations

import warnings

import click

from . import logs
from .registry import modules, resolve
from .settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="CIVICSENSE_DATABASE_URL", help="PostgreSQL URL.")
@click.option("--mqtt-url", envvar="CIVICSENSE_MQTT_URL", help="mqtt://user:pass@host:port")
@click.option("--log-level", envvar="CIVICSENSE_LOG_LEVEL", default="INFO", show_default=True)
@click.pass_context
def cli(ctx: click.Context, database_url: str | None, mqtt_url: str | None, log_level: str) -> None:
    """civicsense: LoRaWAN sensors of a town, from ChirpStack to PostgreSQL and beyond."""
    warnings.filterwarnings("ignore", module="platformdirs")
    overrides = {k: v for k, v in (("database_url", database_url), ("mqtt_url", mqtt_url)) if v}
    ctx.obj = Settings(**overrides)  # type: ignore[arg-type]
    logs.configure(log_level, ctx.obj.log_format)


def require_database(settings: Settings) -> str:
    """The database URL, or a clear usage error."""
    if not settings.database_url:
        raise click.UsageError(
            "no database: set CIVICSENSE_DATABASE_URL or --database-url "
            "(`civicsense demo` starts an embedded one)"
        )
    return settings.database_url


def _install_commands() -> None:
    for module in modules():
        for target in module.cli:
            cli.add_command(resolve(target))


_install_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="civicsense")
