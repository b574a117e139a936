"""The demo town gets the shipped default alert rules (leak, classroom CO2, battery, silence,
gateway), so that the simulated fleet's leaks and stuffy classrooms become alerts and
incidents."""

from __future__ import annotations

import contextlib

import psycopg

from core import tenants
from core.audit import Actor
from core.settings import Settings

from .rule_service import install_templates

_ACTOR = Actor("system", "demo")


def seed(conn: psycopg.Connection, settings: Settings, *, devices: int) -> None:
    """Install the default rules in the demo tenant (idempotent)."""
    install_templates(conn, _ACTOR, tenants.get_or_create(conn, tenants.DEMO_TENANT))


def services(
    settings: Settings, stack: contextlib.ExitStack, *, devices: int, rate: float
) -> list[str]:
    """Nothing to start (the rule engine runs in ingest, delivery in the web app); the API
    paths worth trying."""
    return ["/alerts?state=open", "/incidents", "/catalog/solutions"]
