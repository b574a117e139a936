"""Daily digests: a user who chose `digest` gets one e-mail a local day with what happened.

Once the user's digest hour has passed in the tenant's timezone, `send_digests` gathers their
`digest` rows queued before that hour today into one message. The day is claimed by a row
unique on (user, day) in the same transaction as the send and the marking of the rows, so a
failed send leaves nothing (retried at the next run) and a second process, run or clock
finds the day claimed, or the rows already sent (they are locked first), and sends nothing.
As with the parking reports, a crash between the SMTP answer and the commit can send a
digest twice, never zero times.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from core.mail import text_message
from core.settings import Settings

from .delivery import configured_smtp

__all__ = ["DEFAULT_DIGEST_HOUR", "digest_job", "send_digests"]

log = logging.getLogger("civicsense.alerts.digest")

DEFAULT_DIGEST_HOUR = 7

_WAITING = """
SELECT DISTINCT n.user_id, n.tenant_id, u.email, t.timezone,
       coalesce(p.digest_hour, %s) AS digest_hour
FROM notifications n
JOIN users u ON u.id = n.user_id
JOIN tenants t ON t.id = n.tenant_id
LEFT JOIN notification_preferences p ON p.user_id = n.user_id
WHERE n.status = 'digest' AND u.active
ORDER BY n.user_id
"""

_ROWS = """
SELECT id, subject, created_at, payload ->> 'link' AS link FROM notifications
WHERE user_id = %s AND status = 'digest' AND created_at < %s
ORDER BY created_at, id
FOR UPDATE
"""

_CLAIM = """
INSERT INTO notification_digests (tenant_id, user_id, day, target, items, message_id)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, day) DO NOTHING RETURNING id
"""

_MARK = """
UPDATE notifications SET status = 'sent', sent_at = clock_timestamp(), digest_id = %s
WHERE id = ANY (%s)
"""


def send_digests(settings: Settings, now: datetime | None = None) -> int:
    """Send the digests due at `now`; how many were sent. Each user in a transaction of
    its own: one bad address does not hold back the others."""
    smtp = configured_smtp(settings)
    if smtp is None:
        return 0
    now = now or datetime.now(UTC)
    sent = 0
    with psycopg.connect(settings.database_url) as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            waiting = cur.execute(_WAITING, (DEFAULT_DIGEST_HOUR,)).fetchall()
        conn.commit()
        for user in waiting:
            zone = ZoneInfo(user["timezone"])
            local = now.astimezone(zone)
            if local.hour < user["digest_hour"]:
                continue
            cutoff = datetime.combine(local.date(), time(user["digest_hour"]), zone)
            try:
                with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                    rows = cur.execute(_ROWS, (user["user_id"], cutoff)).fetchall()
                    if not rows:
                        continue
                    message = text_message(
                        sender=settings.smtp_from,
                        to=user["email"],
                        subject=_subject(local, len(rows)),
                        body=_body(rows, zone),
                    )
                    claim = (user["tenant_id"], user["user_id"], local.date(), user["email"],
                             len(rows), str(message["Message-ID"]))  # fmt: skip
                    claimed = cur.execute(_CLAIM, claim).fetchone()
                    if claimed is None:
                        continue
                    smtp.send(message)
                    cur.execute(_MARK, (claimed["id"], [row["id"] for row in rows]))
                sent += 1
            except (OSError, psycopg.Error):  # smtplib's errors are OSErrors
                log.exception(
                    "digest of user %s not sent; retried at the next run", user["user_id"]
                )
    return sent


def digest_job(settings: Settings) -> None:
    """Scheduled: the digests due now."""
    send_digests(settings)


def _subject(local: datetime, count: int) -> str:
    day = local.strftime("%d/%m/%Y")
    return f"[civicsense] Résumé du {day} : {count} notification(s) — daily digest"


def _body(rows: list[dict[str, Any]], zone: ZoneInfo) -> str:
    """One line per notification, with its incident's link; French first, then English."""
    items = [
        f"- {row['created_at'].astimezone(zone):%d/%m %H:%M} {row['subject']}\n  {row['link']}"
        for row in rows
    ]
    return "\n".join(
        [
            f"Bonjour, voici les {len(rows)} notification(s) d'incidents depuis votre dernier"
            f" résumé (heure de {zone.key}).",
            f"Hello, here are the {len(rows)} incident notification(s) since your last digest"
            f" ({zone.key} time).",
            "",
            *items,
            "",
            "Message automatique de civicsense / automatic message from civicsense.",
        ]
    )
