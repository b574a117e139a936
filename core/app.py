"""The ASGI application: every installed package's routers under /api/v1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from . import metrics
from .db import open_pool
from .identity.service import IdentityError
from .logs import RequestIdMiddleware
from .registry import modules, resolve
from .settings import Settings, get_settings

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the pool and package services start in its lifespan."""
    settings = settings or get_settings()
    installed = list(modules())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # tenant data through the application role; logins and operator tasks privileged
        app.state.pool = open_pool(
            settings.app_database_url or settings.database_url, app_role=True
        )
        app.state.privileged_pool = open_pool(settings.database_url, max_size=5)
        async with contextlib.AsyncExitStack() as stack:
            for module in installed:
                for target in module.lifespans:
                    await stack.enter_async_context(resolve(target)(app))
            yield
        app.state.pool.close()
        app.state.privileged_pool.close()

    app = FastAPI(
        title="civicsense",
        version="0.1.0",
        description="IoT platform for municipalities: LoRaWAN sensors through ChirpStack v4.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(metrics.HttpMetrics)
    app.add_middleware(RequestIdMiddleware)  # outermost: the id covers the whole request
    app.include_router(metrics.router)  # /metrics: Prometheus' convention, outside /api/v1
    for module in installed:
        for target in module.routers:
            app.include_router(resolve(target), prefix=API_PREFIX)
        for target in module.pages:
            app.include_router(resolve(target))
    # after every route: a mounted sub-application answers every path under its prefix
    for module in installed:
        for target in module.mounts:
            resolve(target)(app)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(psycopg.DataError)
    async def _data_error(_request: Request, exc: psycopg.DataError) -> JSONResponse:
        """A value the database cannot hold (NUL in text, out-of-range number): the
        caller's input, not a server fault."""
        return JSONResponse({"detail": f"invalid value: {exc.diag.message_primary}"}, 422)

    @app.exception_handler(IdentityError)
    async def _identity_error(_request: Request, exc: IdentityError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=headers)

    return app
