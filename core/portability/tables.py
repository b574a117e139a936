"""Which tables and columns make up a tenant's data, read from PostgreSQL's catalogue.

A tenant's tables are found, not listed: every table of the application's schema with a
`tenant_id` column (partitions aside, their parent stands for them), plus `tenants`
itself, plus every table their foreign keys reach (the catalogue's solution versions a
quote names, an operator who created an API key): those rows are exported as
*referenced* rows. A new table is therefore exported without anyone remembering to.

What is never exported is listed here instead, and reviewed: the secret columns (with
what an import writes in their place) and the derived tables. `unreviewed_columns` finds
the columns whose name looks secret and that nobody has classified yet; the export
refuses to run while there is one, and so does a test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

#: Never exported; on import, the SQL expression written in their place (it may name the
#: row's other columns). Users come back without password or second factor (they reset
#: it), API keys and webhook secrets come back unusable (they are issued again), devices
#: without their root keys (ChirpStack keeps them).
SECRET_COLUMNS: dict[str, dict[str, str]] = {
    "users": {
        "password_hash": "'!reset-required'",  # not an Argon2 hash: no password matches
        "totp_secret": "NULL",
        "totp_pending": "NULL",
        "totp_last_step": "NULL",
        "recovery_codes": "'{}'",
    },
    "api_keys": {"secret_hash": "sha256(gen_random_uuid()::text::bytea)"},  # matches no key
    "payment_providers": {"secret_encrypted": "'\\x'::bytea"},  # decrypts to nothing
    "notification_routes": {
        "secret_encrypted": "CASE WHEN channel = 'webhook' THEN '\\x'::bytea END"
    },
    "devices": {"app_key_encrypted": "NULL"},
}

#: Columns whose name looks secret but whose content is not, and why they are exported.
ALLOWED_COLUMNS: dict[tuple[str, str], str] = {
    ("users", "password_changed_at"): "when the password changed, not the password",
    ("api_keys", "prefix"): "the public, displayed part of a key; the secret part is hashed",
    ("parking_sessions", "plate_key"): "the plate normalised for matching: the town's data",
    ("enforcement_actions", "plate_key"): "the plate normalised for matching: the town's data",
    ("device_events", "event_key"): "ChirpStack's idempotency key of the event",
    ("ingest_rejects", "fingerprint"): "a digest of the rejected event, for idempotence",
    ("parking_provider_events", "signature_hash"): (
        "a digest of a request's signature (replay detection); reveals nothing of the secret"
    ),
}

#: Tenant tables left out because they are rebuilt from exported ones.
DERIVED_TABLES: dict[str, str] = {
    "readings_hourly": "hourly rollups of readings, recomputed after an import",
}

#: Referenced rows compared without these columns when the target already holds them:
#: they differ between instances without the row being another one.
INSTANCE_COLUMNS: dict[str, frozenset[str]] = {
    "catalog_domains": frozenset({"created_at"}),  # seeded by a migration on each instance
    "catalog_solutions": frozenset({"status", "current_version", "updated_at"}),  # lifecycle
}

_LOOKS_SECRET = re.compile(
    r"pass|secret|key|token|hash|encrypt|totp|otp|recovery|salt|credential|signature|"
    r"fingerprint|private|nonce|cipher",
    re.IGNORECASE,
)
TENANT_COLUMN = "tenant_id"


@dataclass(frozen=True)
class Column:
    """One column as stored, and how it is written to CSV."""

    name: str
    pg_type: str  # format_type(), e.g. numeric(10,2), text[]
    category: str  # pg_type.typcategory: A array, B boolean, D date/time, U user...
    type_name: str  # pg_type.typname, e.g. bytea, jsonb, _text
    not_null: bool
    identity_always: bool
    generated: bool
    sequence: str | None  # the identity or serial sequence

    @property
    def encoding(self) -> str:
        """How a value is written: base64, json, json-array, iso8601, boolean or text."""
        if self.type_name == "bytea":
            return "base64"
        if self.type_name in {"json", "jsonb"}:
            return "json"
        if self.category == "A":
            return "json-array"
        if self.category == "D":
            return "iso8601"
        if self.category == "B":
            return "boolean"
        return "text"

    def export_sql(self) -> sql.Composable:
        """The SELECT expression that writes the value in its CSV form."""
        name = sql.Identifier(self.name)
        expression = {
            "base64": "translate(encode({}, 'base64'), E'\\n', '')",
            "json": "{}::text",
            "json-array": "to_json({})::text",
            "iso8601": "to_json({}) #>> '{{}}'",
            "boolean": "to_json({})::text",
            "text": "{}::text",
        }[self.encoding]
        return sql.SQL(expression + " AS {}").format(name, name)

    def import_sql(self) -> sql.Composable:
        """The SELECT expression that reads the CSV text (staged as text) back."""
        name = sql.Identifier(self.name)
        pg_type = sql.SQL(self.pg_type)
        if self.encoding == "base64":
            return sql.SQL("decode({}, 'base64') AS {}").format(name, name)
        if self.encoding == "json-array":
            return sql.SQL(
                "CASE WHEN {n} IS NOT NULL THEN"
                " ARRAY(SELECT jsonb_array_elements_text({n}::jsonb))::{t} END AS {n}"
            ).format(n=name, t=pg_type)
        return sql.SQL("{}::{} AS {}").format(name, pg_type, name)


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key between two tables of the schema."""

    name: str
    table: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    deferrable: bool


@dataclass
class Table:
    """A table of the export: its exported columns and what is kept out of it."""

    name: str
    columns: list[Column]  # every column, in table order
    primary_key: tuple[str, ...]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    #: columns loaded empty and set once every table is in (a cycle of foreign keys)
    patched_columns: tuple[str, ...] = ()

    @property
    def tenant_column(self) -> str | None:
        """The column naming the tenant of a row (`id` for `tenants`), if any."""
        if self.name == "tenants":
            return "id"
        return TENANT_COLUMN if any(c.name == TENANT_COLUMN for c in self.columns) else None

    @property
    def secret_columns(self) -> dict[str, str]:
        """Secret columns of this table that exist, with their replacement on import."""
        names = {c.name for c in self.columns}
        return {k: v for k, v in SECRET_COLUMNS.get(self.name, {}).items() if k in names}

    @property
    def exported(self) -> list[Column]:
        """The columns written: neither secret nor generated."""
        secrets = SECRET_COLUMNS.get(self.name, {})
        return [c for c in self.columns if c.name not in secrets and not c.generated]

    @property
    def excluded(self) -> list[str]:
        """The columns not written, secret or generated (computed from the others)."""
        exported = {c.name for c in self.exported}
        return [c.name for c in self.columns if c.name not in exported]


_COLUMNS = """
SELECT c.relname, a.attname::text, format_type(a.atttypid, a.atttypmod), t.typcategory::text,
       t.typname::text, a.attnotnull, a.attidentity = 'a', a.attgenerated <> '',
       pg_get_serial_sequence(format('%I', c.relname), a.attname)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = current_schema()
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""

_CONSTRAINTS = """
SELECT k.conname::text, k.contype::text, src.relname::text, ref.relname::text, k.condeferrable,
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(num, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i),
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY u(num, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num ORDER BY u.i)
FROM pg_constraint k
JOIN pg_class src ON src.oid = k.conrelid AND NOT src.relispartition
JOIN pg_namespace n ON n.oid = src.relnamespace AND n.nspname = current_schema()
LEFT JOIN pg_class ref ON ref.oid = k.confrelid
WHERE k.contype IN ('p', 'f') AND k.conparentid = 0
"""


def schema_tables(conn: psycopg.Connection) -> dict[str, Table]:
    """Every table of the application's schema (partitions aside), from the catalogue."""
    tables: dict[str, Table] = {}
    for row in conn.execute(_COLUMNS):
        table = tables.setdefault(row[0], Table(row[0], [], ()))
        table.columns.append(Column(*row[1:]))
    for name, kind, source, ref, deferrable, columns, ref_columns in conn.execute(_CONSTRAINTS):
        if source not in tables:
            continue
        if kind == "p":
            tables[source].primary_key = tuple(columns)
        elif ref in tables:
            tables[source].foreign_keys.append(
                ForeignKey(name, source, tuple(columns), ref, tuple(ref_columns), deferrable)
            )
    return tables


def tenant_tables(conn: psycopg.Connection) -> list[Table]:
    """The tables of a tenant's export, in loading order (referenced tables first)."""
    tables = schema_tables(conn)
    chosen = {
        name
        for name, table in tables.items()
        if table.tenant_column is not None and name not in DERIVED_TABLES
    }
    reached = list(chosen)
    while reached:
        for key in tables[reached.pop()].foreign_keys:
            if key.ref_table not in chosen:
                chosen.add(key.ref_table)
                reached.append(key.ref_table)
    return load_order([tables[name] for name in chosen])


def load_order(tables: list[Table]) -> list[Table]:
    """`tables` ordered so that a row's references are loaded before it.

    Deferrable keys are checked at commit and do not order. A cycle (alerts name their
    incident, incidents their alert) is broken on a nullable key: that table is loaded
    with those columns empty and they are set once every table is in.
    """
    by_name = {t.name: t for t in tables}
    waiting = {
        t.name: {
            k.ref_table
            for k in t.foreign_keys
            if not k.deferrable and k.ref_table != t.name and k.ref_table in by_name
        }
        for t in tables
    }
    ordered: list[Table] = []
    while waiting:
        ready = sorted(name for name, needs in waiting.items() if not needs)
        if not ready:
            _break_cycle(by_name, waiting)
            continue
        for name in ready:
            ordered.append(by_name[name])
            del waiting[name]
        for needs in waiting.values():
            needs.difference_update(ready)
    return ordered


def _break_cycle(by_name: dict[str, Table], waiting: dict[str, set[str]]) -> None:
    for name in sorted(waiting):
        table = by_name[name]
        not_null = {c.name for c in table.columns if c.not_null}
        for ref in sorted(waiting[name]):
            keys = [k for k in table.foreign_keys if k.ref_table == ref and not k.deferrable]
            if all(not_null.isdisjoint(k.columns) for k in keys):
                table.patched_columns += tuple(c for k in keys for c in k.columns)
                waiting[name].discard(ref)
                return
    raise RuntimeError(f"foreign keys form a cycle with no nullable column: {sorted(waiting)}")


def unreviewed_columns(tables: list[Table]) -> list[str]:
    """Exported columns whose name looks secret and that are neither excluded nor allowed."""
    return [
        f"{table.name}.{column.name}"
        for table in tables
        for column in table.exported
        if _LOOKS_SECRET.search(column.name) and (table.name, column.name) not in ALLOWED_COLUMNS
    ]
