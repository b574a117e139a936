"""Sessions arriving from outside: operators' webhook events and pay stations' batches.

Both are idempotent. An operator event is kept once per event id (the same id again
is answered `duplicate` and changes nothing); the very same signed request twice is a
replay and refused. A batch is kept once per (station, batch id) with the report it
got, which is given again when the batch is re-sent.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb

from core import audit
from core.audit import Actor

from . import sessions
from .session_models import BatchItemResult, BatchReport, ProviderEvent, SessionBatch


class Replayed(ValueError):
    """This exact signed request was received before."""


def apply_provider_event(
    conn: psycopg.Connection,
    tenant_id: int,
    provider: str,
    event: ProviderEvent,
    signature_hash: bytes,
) -> dict[str, Any]:
    """Record and apply one verified operator event; the answer to give the operator."""
    seen = conn.execute(
        "SELECT 1 FROM parking_provider_events WHERE signature_hash = %s", (signature_hash,)
    ).fetchone()
    if seen:
        raise Replayed("this signed request was already received (replay)")
    try:
        with conn.transaction():
            conn.execute(
                "INSERT INTO parking_provider_events (tenant_id, provider, event_id, kind,"
                " occurred_at, signature_hash, body) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (tenant_id, provider, event.event_id, event.type, event.occurred_at,
                 signature_hash, Jsonb(event.model_dump(mode="json"))),
            )  # fmt: skip
    except errors.UniqueViolation as exc:
        if "signature" in (exc.diag.constraint_name or ""):
            raise Replayed("this signed request was already received (replay)") from None
        return {"status": "duplicate", "event_id": event.event_id}
    outcome, session_id = sessions.merge(
        conn, tenant_id=tenant_id, source="provider", provider=provider,
        facts=event.session, occurred_at=event.occurred_at,
    )  # fmt: skip
    conn.execute(
        "UPDATE parking_provider_events SET session_id = %s WHERE tenant_id = %s"
        " AND provider = %s AND event_id = %s",
        (session_id, tenant_id, provider, event.event_id),
    )
    return {"status": outcome, "event_id": event.event_id, "session_id": session_id}


def apply_batch(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, batch: SessionBatch
) -> dict[str, Any]:
    """Apply a pay station's batch once; a re-sent batch gets its first report again."""
    key = (batch.station, batch.batch_id)
    stored = conn.execute(
        "SELECT report FROM parking_batches WHERE tenant_id = %s AND station = %s"
        " AND batch_id = %s",
        (tenant_id, *key),
    ).fetchone()
    if stored is not None:
        return {**stored[0], "replayed": True}
    items = []
    for index, item in enumerate(batch.sessions):
        occurred_at = item.stopped_at or item.ends_at or item.started_at
        try:
            with conn.transaction():
                outcome, session_id = sessions.merge(
                    conn, tenant_id=tenant_id, source="pay_station", provider=batch.station,
                    facts=item, occurred_at=occurred_at,
                )  # fmt: skip
        except sessions.Refused as exc:
            items.append(BatchItemResult(index=index, id=item.id, status="rejected",
                                         reason=str(exc)))  # fmt: skip
            continue
        status = "unchanged" if outcome == "unchanged" else "accepted"
        items.append(BatchItemResult(index=index, id=item.id, status=status,
                                     session_id=session_id))  # fmt: skip
    report = BatchReport(
        station=batch.station, batch_id=batch.batch_id, replayed=False,
        accepted=sum(i.status != "rejected" for i in items),
        rejected=sum(i.status == "rejected" for i in items), items=items,
    ).model_dump(mode="json")  # fmt: skip
    conn.execute(
        "INSERT INTO parking_batches (tenant_id, station, batch_id, report, received_by)"
        " VALUES (%s, %s, %s, %s, %s)",
        (tenant_id, batch.station, batch.batch_id, Jsonb(report), actor.label),
    )
    counts = {"accepted": report["accepted"], "rejected": report["rejected"]}
    audit.record(conn, actor, "parking.batch", target=f"{batch.station}/{batch.batch_id}",
                 details=counts)  # fmt: skip
    return report
