"""Catalogue routes (under /catalog): search and read for every role, writes for the operator.

The catalogue is shared by every tenant, so these routes do not use `scoped` (which needs
a tenant): readers hold catalog:read and read through the application role's pool, which
may only SELECT the catalogue tables; writers hold catalog:manage at the operator level
(no tenant) and write through the owner's connection. A buyer sees the solutions on sale
(`lifecycle.BUYER_VISIBLE`); the operator sees every status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from core.audit import Actor
from core.identity.principal import Acting, Caller, Principal, acting, check

from . import deployment, lifecycle, solutions
from .lifecycle import Status
from .models import (
    DomainCreate,
    DomainRead,
    SolutionCreate,
    SolutionRead,
    SolutionSummary,
    SolutionUpdate,
    SolutionVersionRead,
    Transition,
    VersionSummary,
)

router = APIRouter(prefix="/catalog", tags=["catalogue"])


def _is_operator(principal: Principal) -> bool:
    """The platform operator: catalog:manage, acting at the operator level (no tenant)."""
    return "catalog:manage" in principal.permissions and principal.tenant_id is None


@dataclass(frozen=True)
class Reader:
    """A catalogue reader's connection and the statuses it may see."""

    conn: psycopg.Connection
    statuses: frozenset[Status]


@dataclass(frozen=True)
class Operator:
    """The operator's connection (the owner's) and its name in the audit trail."""

    conn: psycopg.Connection
    actor: Actor


def reader(request: Request, principal: Caller) -> Iterator[Reader]:
    """Dependency: a caller holding catalog:read."""
    check(principal, ("catalog:read",))
    statuses = solutions.ALL_STATUSES if _is_operator(principal) else lifecycle.BUYER_VISIBLE
    with request.app.state.pool.connection() as conn:
        yield Reader(conn, statuses)


def operator(request: Request, principal: Caller) -> Iterator[Operator]:
    """Dependency: the operator, holding catalog:manage without a tenant."""
    check(principal, ("catalog:manage",))
    if principal.tenant_id is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "the catalogue is changed at the operator level only"
        )
    with request.app.state.privileged_pool.connection() as conn:
        yield Operator(conn, principal.actor())


Read = Annotated[Reader, Depends(reader)]
Manage = Annotated[Operator, Depends(operator)]
SolutionSlug = Annotated[str, Path(description="the solution's slug", max_length=80)]


@contextlib.contextmanager
def catalogue_errors() -> Iterator[None]:
    """Answer the service's errors: NotFound 404, Conflict 409, invalid content 422."""
    try:
        yield
    except solutions.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except solutions.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except solutions.Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    except ValidationError as exc:  # a change whose merged content is not valid
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None


@router.get("/domains", response_model=list[DomainRead])
def list_domains(read: Read) -> list[dict[str, Any]]:
    """The use-case domains solutions belong to."""
    return solutions.domains(read.conn)


@router.post("/domains", response_model=DomainRead, status_code=201)
def create_domain(manage: Manage, body: DomainCreate) -> dict[str, Any]:
    """Add a use-case domain (operator)."""
    with catalogue_errors():
        return solutions.create_domain(manage.conn, manage.actor, body)


@router.get("/solutions", response_model=list[SolutionSummary])
def search_solutions(
    read: Read,
    domain: str | None = None,
    device_model: Annotated[str | None, Query(description="uses this model id")] = None,
    quantity: Annotated[
        str | None, Query(description="uses a model reporting this quantity, e.g. co2")
    ] = None,
    vendor: Annotated[str | None, Query(description="uses a model of this vendor")] = None,
    min_price: Annotated[Decimal | None, Query(ge=0, description="typical total excl. tax")] = None,
    max_price: Annotated[Decimal | None, Query(ge=0, description="typical total excl. tax")] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    q: Annotated[str | None, Query(max_length=200, description="words, FR or EN")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """Search the catalogue; every filter given narrows the result (see
    `catalog.solutions.search` for what each one matches). Buyers see solutions on sale."""
    statuses = read.statuses & {status_} if status_ else read.statuses
    return solutions.search(
        read.conn, statuses=frozenset(statuses), domain=domain, device_model=device_model,
        quantity=quantity, vendor=vendor, min_price=min_price, max_price=max_price, text=q,
        limit=limit, offset=offset,
    )  # fmt: skip


@router.post("/solutions", response_model=SolutionRead, status_code=201)
def create_solution(manage: Manage, body: SolutionCreate) -> dict[str, Any]:
    """Propose a new solution: status proposed, version 1 with its price lines (operator)."""
    with catalogue_errors():
        return solutions.create(manage.conn, manage.actor, body)


@router.post("/solutions/from-town", response_model=SolutionRead, status_code=201)
def promote_town_configuration(
    manage: Manage,
    town: Annotated[Acting, Depends(acting("catalog:manage"))],
    body: deployment.TownSolution,
) -> dict[str, Any]:
    """Propose a new solution made of the configuration of the town named by X-Tenant:
    its device models with the count of its devices, its enabled alert rules (operator).
    A one-off project becomes a catalogue item; price it and certify it as any other."""
    with catalogue_errors():
        return deployment.promote(manage.conn, manage.actor, tenant_id=town.tenant_id, body=body)


@router.get("/solutions/{solution}", response_model=SolutionRead)
def get_solution(read: Read, solution: SolutionSlug) -> dict[str, Any]:
    """A solution's current version with its price lines and lifecycle history."""
    with catalogue_errors():
        return solutions.solution(read.conn, solution, statuses=read.statuses)


@router.patch("/solutions/{solution}", response_model=SolutionRead)
def update_solution(manage: Manage, solution: SolutionSlug, body: SolutionUpdate) -> dict[str, Any]:
    """Change a solution's content or prices: the next version, with the reason given;
    earlier versions stay as they were (operator)."""
    with catalogue_errors():
        return solutions.update(manage.conn, manage.actor, solution, body)


@router.get("/solutions/{solution}/versions", response_model=list[VersionSummary])
def list_versions(read: Read, solution: SolutionSlug) -> list[dict[str, Any]]:
    """A solution's versions, oldest first, with why each was made."""
    with catalogue_errors():
        return solutions.versions(read.conn, solution, statuses=read.statuses)


@router.get("/solutions/{solution}/versions/{version}", response_model=SolutionVersionRead)
def get_version(
    read: Read, solution: SolutionSlug, version: Annotated[int, Path(ge=1)]
) -> dict[str, Any]:
    """One version of a solution as it was written (what a quote made on it offered)."""
    with catalogue_errors():
        return solutions.version(read.conn, solution, version, statuses=read.statuses)


@router.post("/solutions/{solution}/transitions", response_model=SolutionRead)
def transition_solution(manage: Manage, solution: SolutionSlug, body: Transition) -> dict[str, Any]:
    """Move a solution along its lifecycle with a reason (operator); 409 for a step the
    lifecycle does not allow (see `catalog.lifecycle`)."""
    with catalogue_errors():
        return solutions.transition(manage.conn, manage.actor, solution, body)
