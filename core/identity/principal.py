"""Who is calling, what they may do, and the tenant-scoped connection they work through.

A request authenticates with a user's access token (JWT) or an API key, both as
`Authorization: Bearer`, or with the browser session cookie (plus the CSRF header on
writes). `scoped(permission...)` checks the permissions and hands the route a
connection running as the application role with the tenant set for the transaction:
row-level security keeps every other tenant's rows out of reach.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    APIKeyCookie,
    HTTPAuthorizationCredentials,
    HTTPBearer,
    OAuth2PasswordBearer,
)

from .. import tenants
from ..audit import Actor
from ..settings import Settings
from . import repository, tokens
from .permissions import level_of, permissions_of

API_PREFIX = "/api/v1"
SESSION_COOKIE = "civicsense_session"
CSRF_COOKIE = "civicsense_csrf"
CSRF_HEADER = "X-CSRF-Token"
TENANT_HEADER = "X-Tenant"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_user_token = OAuth2PasswordBearer(
    tokenUrl=f"{API_PREFIX}/auth/token",
    scheme_name="userToken",
    description="A user's access token from POST /auth/token",
    auto_error=False,
)
_api_key = HTTPBearer(
    scheme_name="apiKey", description="An integration's API key (csk_...)", auto_error=False
)
_session = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="sessionCookie",
    description="Browser session from POST /auth/session; writes also need X-CSRF-Token",
    auto_error=False,
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    kind: Literal["user", "api_key"]
    id: int
    label: str
    tenant_id: int | None  # None: the operator level
    permissions: frozenset[str]
    roles: frozenset[str] = frozenset()
    scope: str = tokens.SCOPE_FULL
    source: str | None = None

    @property
    def level(self) -> int:
        """The highest role level (-1 for API keys, which manage nobody)."""
        return level_of(self.roles)

    def actor(self, tenant_id: int | None = None) -> Actor:
        """This caller as the audit trail names it, acting for `tenant_id`."""
        acting = tenant_id if tenant_id is not None else self.tenant_id
        return Actor(self.kind, self.label, self.id, acting, self.source)


def client_address(request: Request) -> str | None:
    """The caller's address (behind a proxy, uvicorn's --forwarded-allow-ips sets it)."""
    return request.client.host if request.client else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def user_principal(
    user: dict[str, Any], *, scope: str = tokens.SCOPE_FULL, source: str | None = None
) -> Principal:
    """A user row (with roles and grants) as a principal."""
    roles = frozenset(user["roles"])
    return Principal(
        kind="user",
        id=user["id"],
        label=user["email"],
        tenant_id=user["tenant_id"],
        permissions=permissions_of(roles, user["grants"]),
        roles=roles,
        scope=scope,
        source=source,
    )


def _from_api_key(conn: psycopg.Connection, key: str, source: str | None) -> Principal:
    prefix = tokens.api_key_prefix(key)
    row = repository.api_key_by_prefix(conn, prefix) if prefix else None
    if (
        row is None
        or row["revoked_at"] is not None
        or not hmac.compare_digest(bytes(row["secret_hash"]), tokens.secret_hash(key))
    ):
        raise _unauthorized("invalid or revoked API key")
    repository.touch_api_key(conn, row["id"])
    return Principal(
        kind="api_key",
        id=row["id"],
        label=f"api-key:{row['name']} ({row['prefix']})",
        tenant_id=row["tenant_id"],
        permissions=frozenset(row["permissions"]),
        source=source,
    )


def _live_user(conn: psycopg.Connection, user_id: int) -> dict[str, Any]:
    user = repository.user_by_id(conn, user_id)
    if user is None or not user["active"]:
        raise _unauthorized("this account no longer exists or is deactivated")
    return user


def _from_access_token(
    request: Request, conn: psycopg.Connection, token: str, source: str | None
) -> Principal:
    try:
        claims = tokens.verify_access(request.app.state.settings, token)
    except tokens.InvalidToken:
        raise _unauthorized("invalid or expired access token") from None
    user = _live_user(conn, claims.user_id)
    if claims.password_stamp != tokens.password_stamp(user["password_changed_at"]):
        raise _unauthorized("the password changed since this token was issued: log in again")
    return user_principal(user, scope=claims.scope, source=source)


def _from_session(
    request: Request, conn: psycopg.Connection, cookie: str, source: str | None
) -> Principal:
    session = repository.session_by_hash(conn, "cookie", tokens.secret_hash(cookie))
    if session is None or session["revoked_at"] is not None or not session["live"]:
        raise _unauthorized("session expired: log in again")
    if request.method not in _SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        expected = bytes(session["csrf_hash"] or b"")
        if not given or not hmac.compare_digest(tokens.secret_hash(given), expected):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing or wrong {CSRF_HEADER}")
    return user_principal(_live_user(conn, session["user_id"]), source=source)


def session_principal(request: Request) -> Principal:
    """The user of the request's browser session, or 401 (no live session) / 403 (a write
    without the CSRF header): for pages and their own endpoints outside the API's
    dependencies (the control map, the dashboards' Dash app)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise _unauthorized("log in first: no browser session")
    with request.app.state.privileged_pool.connection() as conn:
        return _from_session(request, conn, cookie, client_address(request))


def authenticate(
    request: Request,
    _token: Annotated[str | None, Depends(_user_token)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_api_key)],
    cookie: Annotated[str | None, Depends(_session)],
) -> Principal:
    """Dependency: the caller, or 401."""
    source = client_address(request)
    with request.app.state.privileged_pool.connection() as conn:
        if bearer is not None:
            if bearer.credentials.startswith(tokens.API_KEY_PREFIX):
                return _from_api_key(conn, bearer.credentials, source)
            return _from_access_token(request, conn, bearer.credentials, source)
        if cookie:
            return _from_session(request, conn, cookie, source)
    raise _unauthorized("authentication required: a bearer token or a session cookie")


Caller = Annotated[Principal, Depends(authenticate)]


def check(principal: Principal, permissions: tuple[str, ...]) -> None:
    """403 unless the principal holds every permission (and a full-scope token)."""
    if principal.scope != tokens.SCOPE_FULL:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "enrol a TOTP second factor first (POST /auth/totp/enrol), then log in again",
        )
    missing = [p for p in permissions if p not in principal.permissions]
    if missing:
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing permission: {', '.join(missing)}")


def _acting_tenant(request: Request, principal: Principal) -> int:
    """The caller's tenant; the operator level chooses one with the X-Tenant header."""
    chosen = request.headers.get(TENANT_HEADER)
    if principal.tenant_id is not None:
        if chosen:
            with request.app.state.privileged_pool.connection() as conn:
                own = conn.execute(
                    "SELECT slug FROM tenants WHERE id = %s", (principal.tenant_id,)
                ).fetchone()
            if own is None or own[0] != chosen:
                raise HTTPException(status.HTTP_403_FORBIDDEN, "you act for your own tenant only")
        return principal.tenant_id
    if not chosen:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"operator accounts choose a tenant with the {TENANT_HEADER} header (its slug)",
        )
    with request.app.state.privileged_pool.connection() as conn:
        try:
            return tenants.id_for_slug(conn, chosen)
        except tenants.TenantNotFound:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no tenant {chosen!r}") from None


@dataclass
class Scope:
    """A permitted caller, the tenant it acts for, and a connection confined to it."""

    principal: Principal
    tenant_id: int
    conn: psycopg.Connection
    settings: Settings
    actor: Actor = field(init=False)

    def __post_init__(self) -> None:
        self.actor = self.principal.actor(self.tenant_id)

    def commit(self) -> None:
        """Commit what is done so far (others see it now); the tenant stays set."""
        self.conn.commit()
        self.conn.execute(
            "SELECT set_config('civicsense.tenant_id', %s, true)", (str(self.tenant_id),)
        )


@contextlib.contextmanager
def tenant_connection(request: Request, tenant_id: int) -> Iterator[psycopg.Connection]:
    """A pooled connection as the application role, tenant set for its one transaction;
    committed when the request succeeds, rolled back otherwise."""
    with request.app.state.pool.connection() as conn:
        conn.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id),))
        yield conn


def scoped(*permissions: str) -> Callable[..., Iterator[Scope]]:
    """Dependency factory: the caller holds `permissions`; a Scope for its tenant."""

    def dependency(request: Request, principal: Caller) -> Iterator[Scope]:
        check(principal, permissions)
        tenant_id = _acting_tenant(request, principal)
        with tenant_connection(request, tenant_id) as conn:
            yield Scope(principal, tenant_id, conn, request.app.state.settings)

    return dependency


@dataclass(frozen=True)
class Acting:
    """A permitted caller and its tenant, without a connection (long-lived streams)."""

    principal: Principal
    tenant_id: int


def acting(*permissions: str) -> Callable[..., Acting]:
    """Dependency factory like `scoped`, for routes that must not hold a connection."""

    def dependency(request: Request, principal: Caller) -> Acting:
        check(principal, permissions)
        return Acting(principal, _acting_tenant(request, principal))

    return dependency


def privileged_connection(request: Request) -> Iterator[psycopg.Connection]:
    """The owner's connection: logins, operator tasks. Never for tenant data on behalf
    of a tenant user."""
    with request.app.state.privileged_pool.connection() as conn:
        yield conn


PrivilegedConn = Annotated[psycopg.Connection, Depends(privileged_connection)]
