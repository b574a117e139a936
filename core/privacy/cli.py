"""`civicsense privacy`: the register of processing activities and data-subject requests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from core.audit import cli_actor
from core.cli import require_database
from core.db import connect
from core.settings import Settings

from . import requests
from .register import register, to_markdown


@click.group()
def privacy() -> None:
    """Data protection: register of processings, data-subject requests."""


@privacy.command("register")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="markdown",
              show_default=True)  # fmt: skip
@click.pass_obj
def register_command(settings: Settings, fmt: str) -> None:
    """Print the register of processing activities, with the retention periods configured."""
    entries = register(settings)
    click.echo(json.dumps(entries, indent=2, ensure_ascii=False) if fmt == "json"
               else to_markdown(entries))  # fmt: skip


def _subject_options(command: Any) -> Any:
    command = click.option("--user", "email", help="A person, by e-mail.")(command)
    command = click.option("--plate", help="A licence plate, as typed.")(command)
    return click.option("--tenant", "slug", required=True, help="The town's slug.")(command)


def _run(settings: Settings, slug: str, plate: str | None, email: str | None, what: str,
         work: Any) -> Any:  # fmt: skip
    """Resolve the subject, do `work(conn, ctx, subject)`, audit the request, commit."""
    if (plate is None) == (email is None):
        raise click.UsageError("give either --plate or --user")
    with connect(require_database(settings)) as conn:
        try:
            ctx = requests.context(conn, settings, slug, datetime.now(UTC))
            subject = requests.subject(conn, ctx, "plate" if plate else "user",
                                       plate or email or "")  # fmt: skip
        except requests.RequestError as exc:
            raise click.UsageError(str(exc)) from None
        result, details = work(conn, ctx, subject)
        requests.record(conn, cli_actor(), ctx, subject, what, details)
        conn.commit()
    return result


@privacy.command("find")
@_subject_options
@click.pass_obj
def find(settings: Settings, slug: str, plate: str | None, email: str | None) -> None:
    """List where a plate or a person appears in the town: table, rows, first and last."""

    def work(conn: Any, ctx: Any, subject: Any) -> Any:
        found = requests.find(conn, ctx, subject)
        return found, {"tables": {f.table: f.rows for f in found}}

    found = _run(settings, slug, plate, email, "find", work)
    if not found:
        click.echo("nothing found")
    for item in found:
        click.echo(f"{item.table}\t{item.rows}\t{_day(item.first)}\t{_day(item.last)}")


def _day(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else "-"


@privacy.command("export")
@_subject_options
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The JSON file to write.")  # fmt: skip
@click.pass_obj
def export(settings: Settings, slug: str, plate: str | None, email: str | None,
           output: Path) -> None:  # fmt: skip
    """Write everything concerning a plate or a person in the town to a JSON file."""

    def work(conn: Any, ctx: Any, subject: Any) -> Any:
        rows = requests.export(conn, ctx, subject)
        return rows, {"tables": {table: len(found) for table, found in rows.items()}}

    rows = _run(settings, slug, plate, email, "export", work)
    document = {"tenant": slug, "exported_at": datetime.now(UTC), "data": rows}
    output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str))
    click.echo(f"wrote {sum(len(r) for r in rows.values())} row(s) to {output}")


@privacy.command("erase")
@_subject_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def erase(settings: Settings, slug: str, plate: str | None, email: str | None,
          yes: bool) -> None:  # fmt: skip
    """Pseudonymise a plate now, or anonymise a person's account (references are kept)."""
    if not yes:
        click.confirm(f"erase this {'plate' if plate else 'person'} in {slug}?", abort=True)

    def work(conn: Any, ctx: Any, subject: Any) -> Any:
        counts = requests.erase(conn, ctx, subject)
        return counts, {"changed": counts}

    counts = _run(settings, slug, plate, email, "erase", work)
    for table, rows in counts.items():
        click.echo(f"{table}\t{rows}")
