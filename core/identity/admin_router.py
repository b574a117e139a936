"""Tenant administration: users, API keys, payment providers' secrets, the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status

from .. import audit
from ..audit import AuditEntry
from . import repository, service
from .models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ProviderCreate,
    ProviderCreated,
    ProviderRead,
    UserCreate,
    UserRead,
    UserUpdate,
)
from .principal import Scope, scoped

router = APIRouter()

UsersRead = Annotated[Scope, Depends(scoped("users:read"))]
UsersManage = Annotated[Scope, Depends(scoped("users:manage"))]
KeysManage = Annotated[Scope, Depends(scoped("apikeys:manage"))]
ProvidersManage = Annotated[Scope, Depends(scoped("providers:manage"))]
AuditRead = Annotated[Scope, Depends(scoped("audit:read"))]


@router.get("/users", response_model=list[UserRead], tags=["users"])
def list_users(scope: UsersRead) -> list[dict[str, object]]:
    """The tenant's users."""
    return [service.user_view(u) for u in repository.users(scope.conn)]


@router.post("/users", response_model=UserRead, status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(scope: UsersManage, body: UserCreate) -> dict[str, object]:
    """Add a user to the tenant, with roles at or below the caller's level."""
    return service.create_user(
        scope.conn, scope.actor, tenant_id=scope.tenant_id, data=body, principal=scope.principal
    )


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"])
def get_user(scope: UsersRead, user_id: int) -> dict[str, object]:
    """One user of the tenant."""
    return service.user_view(service.get_user(scope.conn, user_id))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"])
def update_user(scope: UsersManage, user_id: int, body: UserUpdate) -> dict[str, object]:
    """Change a user's name, roles, grants, or deactivate it."""
    return service.update_user(scope.conn, scope.principal, scope.actor, user_id, body)


@router.get("/api-keys", response_model=list[ApiKeyRead], tags=["api keys"])
def list_api_keys(scope: KeysManage) -> list[dict[str, object]]:
    """The tenant's API keys (never the keys themselves)."""
    return repository.api_keys(scope.conn)


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["api keys"],
)
def create_api_key(scope: KeysManage, body: ApiKeyCreate) -> dict[str, object]:
    """A key for an integration; the key is in this response only: store it now."""
    return service.create_api_key(
        scope.conn, scope.principal, scope.actor, tenant_id=scope.tenant_id, data=body
    )


@router.delete("/api-keys/{key_id}", response_model=ApiKeyRead, tags=["api keys"])
def revoke_api_key(scope: KeysManage, key_id: int) -> dict[str, object]:
    """Revoke a key: it stops working at once."""
    return service.revoke_api_key(scope.conn, scope.actor, key_id)


@router.get("/payment-providers", response_model=list[ProviderRead], tags=["payment providers"])
def list_providers(scope: ProvidersManage) -> list[dict[str, object]]:
    """Payment providers allowed to push sessions for the tenant."""
    return repository.providers(scope.conn)


@router.post(
    "/payment-providers",
    response_model=ProviderCreated,
    status_code=status.HTTP_201_CREATED,
    tags=["payment providers"],
)
def create_provider(
    request: Request, scope: ProvidersManage, body: ProviderCreate
) -> dict[str, object]:
    """Register a provider; its webhook signing secret is in this response only."""
    return service.create_provider(
        scope.conn, request.app.state.settings, scope.principal, scope.actor,
        tenant_id=scope.tenant_id, data=body,
    )  # fmt: skip


@router.delete(
    "/payment-providers/{provider_id}", response_model=ProviderRead, tags=["payment providers"]
)
def revoke_provider(scope: ProvidersManage, provider_id: int) -> dict[str, object]:
    """Revoke a provider's secret: its webhooks are refused from now on."""
    return service.revoke_provider(scope.conn, scope.actor, provider_id)


@router.get("/audit", response_model=list[AuditEntry], tags=["audit"])
def audit_trail(
    scope: AuditRead,
    action: Annotated[
        str | None,
        Query(max_length=100, pattern=r"^[^\x00]*$", description="e.g. auth or user.create"),
    ] = None,
    actor: Annotated[str | None, Query(max_length=300, pattern=r"^[^\x00]*$")] = None,
    outcome: Annotated[str | None, Query(pattern="^(success|failure|denied)$")] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="page: ids below this one")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, object]]:
    """The tenant's audit trail, newest first."""
    return audit.search(
        scope.conn, action=action, actor=actor, outcome=outcome, since=since, until=until,
        before_id=before_id, limit=limit,
    )  # fmt: skip
