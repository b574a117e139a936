"""Who may see the dashboards, and the tenant-confined connection their callbacks read through.

Dash runs on Flask, mounted as a WSGI app: FastAPI's dependencies do not reach it. So an ASGI
gate stands in front of it and checks every request (the page, Dash's layout and dependency
requests, every callback, component bundles and assets) with the browser session, as the
control map does (`core.identity.principal.session_principal`). Callbacks are POSTs, so that
check includes the session's CSRF token: Dash 4.4's renderer copies the `civicsense_csrf`
cookie into the `X-CSRF-Token` header (see `dashboard.app`).

A request let through carries its `Viewer` in the ASGI scope, which a2wsgi hands to Flask as
`environ["asgi.scope"]`. Data is read only through `tenant_data()`: the application role's pool
with the viewer's tenant set for the transaction, so row-level security hides every other
town's rows whatever a callback payload names. The owner's connection is never used here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import flask
import psycopg
from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from core.identity.principal import Principal, check, session_principal, tenant_connection

#: Every role holds it: what a dashboard shows is readings and what was made of them.
PERMISSION = "readings:read"
PREFIX = "/dashboard"
LOGIN_PATH = f"{PREFIX}/login"
_VIEWER = "civicsense.dashboard.viewer"
#: Paths under the prefix that Dash's renderer fetches; every other path is a page.
_DASH_RESOURCES = ("/_dash-", "/assets/", "/_favicon")


@dataclass(frozen=True)
class Viewer:
    """A user admitted to the dashboards, and the town they see."""

    principal: Principal
    tenant_id: int


def admit(principal: Principal) -> Viewer:
    """The principal as a dashboard viewer, or 403: it needs `PERMISSION` and a town (an
    operator account has none to show; it uses the API with X-Tenant)."""
    check(principal, (PERMISSION,))
    if principal.tenant_id is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "dashboards show one town: log in as its user"
        )
    return Viewer(principal, principal.tenant_id)


def session_viewer(request: Request) -> Viewer:
    """The viewer of the request's browser session, or 401 / 403."""
    return admit(session_principal(request))


class Gate:
    """ASGI middleware: a request reaches the Dash app only with a session admitted to it.

    A page request without one is redirected to the login page; anything else (callbacks,
    layout, bundles) gets the JSON error, 401 or 403, that the API would give.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            viewer = await run_in_threadpool(session_viewer, request)
        except HTTPException as refused:
            await _refusal(request, refused)(scope, receive, send)
            return
        scope[_VIEWER] = viewer
        await self.app(scope, receive, send)


def _refusal(request: Request, refused: HTTPException) -> JSONResponse | RedirectResponse:
    path = request.url.path.removeprefix(PREFIX)
    if request.method == "GET" and not path.startswith(_DASH_RESOURCES):
        query = {"next": request.url.path, "lang": request.query_params.get("lang", "fr")}
        return RedirectResponse(f"{LOGIN_PATH}?{urlencode(query)}", status.HTTP_303_SEE_OTHER)
    return JSONResponse(
        {"detail": refused.detail}, refused.status_code, headers=dict(refused.headers or {})
    )


@contextlib.contextmanager
def tenant_data() -> Iterator[psycopg.Connection]:
    """A connection of the application role confined to the current viewer's town."""
    scope = flask.request.environ["asgi.scope"]
    with tenant_connection(Request(scope), scope[_VIEWER].tenant_id) as conn:
        yield conn
