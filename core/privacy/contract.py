"""What a package declares about the personal data it holds (`Module.privacy`).

core knows no package's tables: each package names its processings (for the register)
and brings its part of retention and of data-subject requests. Text columns that name a
user by e-mail (who did what: agents, authors) are declared as `UserColumn`s and handled
by core alone; anything else (plates, contacts in JSON) is the package's callables' work.
Every callable runs on the owner's connection, which bypasses row-level security: it
must filter on `ctx.tenant_id` itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

from core.registry import modules, resolve
from core.settings import Settings


@dataclass(frozen=True)
class Processing:
    """One entry of the register of processing activities (GDPR art. 30).

    `retention` pairs what is kept with the settings field (in days) that bounds it, so
    that the register shows the values configured, not the ones written here."""

    name: str
    purpose: str
    legal_basis: str
    data_subjects: tuple[str, ...]
    data_categories: tuple[str, ...]
    recipients: tuple[str, ...]
    retention: tuple[tuple[str, str], ...]
    security: tuple[str, ...]


@dataclass(frozen=True)
class Subject:
    """Whom a request concerns: a plate (by its matching key) or a person (by e-mail)."""

    kind: Literal["plate", "user"]
    value: str  # plate key (A-Z0-9) or lower-case e-mail
    user_id: int | None = None  # the account of that e-mail in the tenant, if any

    @property
    def replacement(self) -> str:
        """What a person's e-mail becomes once erased (still an e-mail shape: checks)."""
        return f"erased-user-{self.user_id or 0}@erased.invalid"


@dataclass(frozen=True)
class Found:
    """Where a subject appears: a table, how many rows, first and last dates."""

    table: str
    rows: int
    first: datetime | None
    last: datetime | None


@dataclass(frozen=True)
class Context:
    """One tenant's run: its id, the settings, the instant taken as now, and its plate
    pseudonyms (`pseudonym(plate_key)`: the same plate gives the same one in a tenant)."""

    tenant_id: int
    settings: Settings
    now: datetime
    pseudonym: Callable[[str], str]


@dataclass(frozen=True)
class UserColumn:
    """A text column naming a user by e-mail, with the column dating its rows."""

    table: str
    column: str
    time_column: str


Rows = dict[str, list[dict[str, Any]]]
Finder = Callable[[psycopg.Connection, Context, Subject], list[Found]]
Exporter = Callable[[psycopg.Connection, Context, Subject], Rows]
Eraser = Callable[[psycopg.Connection, Context, Subject], dict[str, int]]
Retainer = Callable[[psycopg.Connection, Context], dict[str, int]]


@dataclass(frozen=True)
class Privacy:
    """A package's processings and its part of retention and data-subject requests."""

    processings: tuple[Processing, ...] = ()
    user_columns: tuple[UserColumn, ...] = ()
    find: Finder | None = None
    export: Exporter | None = None
    erase: Eraser | None = None
    retain: Retainer | None = None
    plate_key: Callable[[str], str] | None = None  # how a typed plate is matched (parking)


def parts() -> Iterator[tuple[str, Privacy]]:
    """Every installed package's declaration, as (package, Privacy)."""
    for module in modules():
        if module.privacy is not None:
            yield module.name, resolve(module.privacy)
