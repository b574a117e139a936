"""What quotes and orders share: their refusals and their document numbers."""

from __future__ import annotations

import psycopg

_NEXT_NUMBER = """
INSERT INTO catalog_document_numbers AS n (prefix, year, last_number) VALUES (%s, %s, 1)
ON CONFLICT (prefix, year) DO UPDATE SET last_number = n.last_number + 1
RETURNING last_number
"""


class CommerceError(Exception):
    """A request a quote or an order cannot take; `status` is its HTTP answer."""

    status = 422


class NotFound(CommerceError):
    """No such quote or order for this caller."""

    status = 404


class Conflict(CommerceError):
    """The document's state (or the catalogue's) does not allow it."""

    status = 409


def next_number(conn: psycopg.Connection, prefix: str, year: int) -> str:
    """The next `PREFIX-YEAR-NNNNNN` number.

    The counter row is updated in the caller's transaction: concurrent documents wait on
    its lock, and a rolled-back document gives its number back, so numbers have no gaps
    (what French accounting expects of invoices, kept for quotes and orders alike)."""
    row = conn.execute(_NEXT_NUMBER, (prefix, year)).fetchone()
    assert row is not None
    return f"{prefix}-{year}-{row[0]:06d}"
