"""The catalogue shipped as data (`data/catalogue.json`) and its loader.

Loading is idempotent: a missing domain is added; a missing solution is created and taken
along the planned lifecycle path to the status the file gives; a solution whose content
differs from its current version gets a new version; an identical one is left alone. The
status of a solution that already exists is never changed by a file: lifecycle decisions
are the operator's, each with its own reason, through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from pydantic import BaseModel, ConfigDict

from core.audit import Actor
from core.settings import Settings

from . import lifecycle, solutions
from .lifecycle import Status
from .models import DomainCreate, SolutionCreate, SolutionUpdate, Transition

SHIPPED = Path(__file__).parent / "data" / "catalogue.json"
_DEMO_ACTOR = Actor("system", "demo")


class SolutionSeed(SolutionCreate):
    """A solution of a catalogue file, with the status it should reach when created."""

    status: Status = "available"


class CatalogueFile(BaseModel):
    """A catalogue file: domains and solutions; `about` explains its prices and VAT rates."""

    model_config = ConfigDict(extra="forbid")

    about: str = ""
    domains: list[DomainCreate] = []
    solutions: list[SolutionSeed]


@dataclass
class LoadReport:
    """What a load did, by solution slug (and domain code)."""

    domains_added: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


def read_file(path: Path) -> CatalogueFile:
    """Parse and check a catalogue file; pydantic's ValidationError says what is wrong."""
    return CatalogueFile.model_validate_json(path.read_bytes())


def load(
    conn: psycopg.Connection, actor: Actor, catalogue: CatalogueFile, *, source: str
) -> LoadReport:
    """Bring the database's catalogue up to `catalogue` (see the module's docstring);
    `source` names the file in the reasons of the versions and transitions it makes."""
    report = LoadReport()
    known = {row["code"] for row in solutions.domains(conn)}
    for domain in catalogue.domains:
        if domain.code not in known:
            solutions.create_domain(conn, actor, domain)
            report.domains_added.append(domain.code)
    for seed in catalogue.solutions:
        try:
            before = solutions.solution(conn, seed.slug)["current_version"]
        except solutions.NotFound:
            _create(conn, actor, seed, source)
            report.created.append(seed.slug)
            continue
        change = SolutionUpdate.model_validate(
            {
                **seed.model_dump(exclude={"slug", "status"}),
                "change_reason": f"mise à jour depuis {source}",
            }
        )
        after = solutions.update(conn, actor, seed.slug, change)["current_version"]
        (report.updated if after != before else report.unchanged).append(seed.slug)
    return report


def _create(conn: psycopg.Connection, actor: Actor, seed: SolutionSeed, source: str) -> None:
    solutions.create(
        conn, actor, SolutionCreate.model_validate(seed.model_dump(exclude={"status"}))
    )
    for status in lifecycle.planned_path(seed.status):
        step = Transition(to=status, reason=f"statut donné par {source}")
        solutions.transition(conn, actor, seed.slug, step)


def demo_seed(conn: psycopg.Connection, settings: Settings, *, devices: int) -> None:
    """`civicsense seed demo`: the shipped catalogue (idempotent)."""
    load(conn, _DEMO_ACTOR, read_file(SHIPPED), source=SHIPPED.name)
