"""The ChirpStack HTTP integration: `POST /api/v1/ingest/chirpstack?event=up|join|...`.

Requests go through the same pipeline as MQTT messages; the response is sent
after the batch holding the event committed, so a 200 means stored (or rejected
with its reason, which is also stored). ChirpStack sends the configured headers
with every request: set `Authorization: Bearer <CIVICSENSE_HTTP_INGEST_TOKEN>` there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request

from core.auth import require_ingest_token
from core.events import bus

from .batch import Inbound
from .pipeline import Pipeline

MAX_BODY = 256 * 1024
COMMIT_TIMEOUT = 30.0
EVENT_PATTERN = r"^[a-z]{2,16}$"

router = APIRouter(prefix="/ingest", tags=["ingest"])


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run a pipeline for HTTP events while the app runs."""
    pipeline = Pipeline.from_settings(app.state.settings, bus)
    pipeline.start()
    app.state.ingest_pipeline = pipeline
    try:
        yield
    finally:
        await asyncio.to_thread(pipeline.stop)


@router.post("/chirpstack", dependencies=[Depends(require_ingest_token)])
async def chirpstack_event(
    request: Request,
    event: Annotated[str, Query(pattern=EVENT_PATTERN, description="up, join, status, log...")],
) -> dict[str, str]:
    """Take one ChirpStack event (JSON or protobuf body); answers once it is committed."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise HTTPException(413, f"event larger than {MAX_BODY} bytes")
    loop = asyncio.get_running_loop()
    committed = loop.create_future()

    def settle() -> None:
        if not committed.done():
            committed.set_result(None)

    def ack() -> None:
        loop.call_soon_threadsafe(settle)

    request.app.state.ingest_pipeline.submit(Inbound("http", event, body, ack=ack))
    try:
        await asyncio.wait_for(committed, COMMIT_TIMEOUT)
    except TimeoutError:
        detail = "event not stored yet: the database is unreachable (it stays queued here)"
        raise HTTPException(503, detail) from None
    return {"status": "accepted"}
