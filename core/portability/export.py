"""`civicsense export`: a tenant's complete data, as one archive of CSV files.

Runs on the owner's connection (row-level security does not apply to it), so every query
names the tenant. One REPEATABLE READ transaction gives every file the same snapshot;
rows stream from PostgreSQL's COPY to disk, so readings never sit in memory.

Referenced rows (a catalogue version a quote names, an operator who created an API key)
are found by following foreign keys until nothing new turns up, in temporary key tables.
A reference into another tenant's rows stops the export: it would leak them.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .. import audit
from . import archive, readme
from .tables import DERIVED_TABLES, Column, Table, tenant_tables, unreviewed_columns

_TEMPORAL = {"timestamptz": "datetime", "timestamp": "datetime", "date": "date", "time": "time"}


class ExportError(RuntimeError):
    """The export cannot be made as asked."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    tenant: str
    path: Path
    sha256: str
    rows: dict[str, int]


def export_tenant(
    conn: psycopg.Connection, slug: str, output: Path, actor: audit.Actor
) -> ExportSummary:
    """Write tenant `slug`'s archive to `output`; audited once written. `conn` is the
    owner's, in autocommit."""
    with conn.transaction(), tempfile.TemporaryDirectory(prefix="civicsense-export-") as tmp:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot
        conn.execute("SET LOCAL TimeZone = 'UTC'")
        conn.execute("SET LOCAL extra_float_digits = 1")  # shortest exact floats
        tenant = conn.execute(
            "SELECT id, slug, name FROM tenants WHERE slug = %s", (slug,)
        ).fetchone()
        if tenant is None:
            raise ExportError(f"no tenant {slug!r}")
        tables = tenant_tables(conn)
        if unreviewed := unreviewed_columns(tables):
            raise ExportError(
                "columns that look secret have not been reviewed for export: "
                + ", ".join(unreviewed)
                + " (classify them in core/portability/tables.py)"
            )
        manifest = archive.Manifest(
            civicsense_version=importlib.metadata.version("civicsense"),
            tenant={"id": tenant[0], "slug": tenant[1], "name": tenant[2]},
            exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
            excluded_columns={t.name: t.excluded for t in tables if t.excluded},
            excluded_tables=dict(DERIVED_TABLES),
        )
        folder = Path(tmp)
        selection = _collect_references(conn, tables, tenant[0])
        (folder / "data").mkdir()
        (folder / "schema").mkdir()
        for table in tables:
            manifest.files.extend(_write_table(conn, table, selection, folder))
        (folder / "README.md").write_text(readme.TEXT, encoding="utf-8")
        manifest.files.append(_entry(folder, "README.md"))
        archive.write(folder, manifest, output)
    rows = {entry.table: entry.rows or 0 for entry in manifest.data_files if entry.table}
    digest = archive.file_sha256(output)
    with conn.transaction():
        audit.record(
            conn, actor, "tenant.export", target=slug, tenant_id=tenant[0],
            details={"archive_sha256": digest, "rows": sum(rows.values()), "files": len(rows)},
        )  # fmt: skip
    return ExportSummary(slug, output, digest, rows)


def _keys_table(table_name: str) -> sql.Identifier:
    """The temporary table of the referenced rows' primary keys of `table_name`."""
    return sql.Identifier(f"portability_keys_{table_name}")


def _names(columns: tuple[str, ...] | list[str], alias: str | None = None) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.Identifier(alias, c) if alias else sql.Identifier(c) for c in columns
    )


@dataclass(frozen=True)
class _Selection:
    """Which rows of each table the export holds: the tenant's own and referenced ones."""

    tenant_id: int
    referenced: frozenset[str]  # tables that have a key table

    def owned(self, table: Table, alias: str, *, negate: bool = False) -> sql.Composable:
        """The tenant's own rows (none for a table without tenant column); with `negate`,
        every other row, those of no tenant included."""
        if table.tenant_column is None:
            return sql.SQL("true" if negate else "false")
        return sql.SQL("{} IS DISTINCT FROM {}" if negate else "{} = {}").format(
            sql.Identifier(alias, table.tenant_column), sql.Literal(self.tenant_id)
        )

    def rows(self, table: Table, alias: str) -> sql.Composable:
        """Owned or referenced."""
        if table.name not in self.referenced:
            return self.owned(table, alias)
        return sql.SQL("({} OR ({}) IN (SELECT * FROM {}))").format(
            self.owned(table, alias), _names(table.primary_key, alias), _keys_table(table.name)
        )


def _collect_references(
    conn: psycopg.Connection, tables: list[Table], tenant_id: int
) -> _Selection:
    """Fill a temporary key table per referenced table with the primary keys of the rows
    outside the tenant that exported rows reference, until nothing new turns up."""
    by_name = {t.name: t for t in tables}
    selection = _Selection(
        tenant_id, frozenset(k.ref_table for t in tables for k in t.foreign_keys)
    )
    for name in sorted(selection.referenced):
        table = by_name[name]
        if not table.primary_key:
            raise ExportError(f"{name} is referenced but has no primary key")
        conn.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                _keys_table(name), _names(table.primary_key), sql.Identifier(name)
            )
        )
    found = True
    while found:
        found = False
        for table in tables:
            for key in table.foreign_keys:
                target = by_name[key.ref_table]
                query = sql.SQL(
                    "INSERT INTO {keys} SELECT {pk} FROM {ref} r WHERE ({ref_cols}) IN"
                    " (SELECT {cols} FROM {src} s WHERE {rows}) AND {other}"
                    " EXCEPT SELECT * FROM {keys}"
                ).format(
                    keys=_keys_table(target.name),
                    pk=_names(target.primary_key, "r"),
                    ref=sql.Identifier(target.name),
                    ref_cols=_names(key.ref_columns, "r"),
                    cols=_names(key.columns, "s"),
                    src=sql.Identifier(table.name),
                    rows=selection.rows(table, "s"),
                    other=selection.owned(target, "r", negate=True),
                )
                found |= conn.execute(query).rowcount > 0
    for name in sorted(selection.referenced):
        _refuse_other_tenants(conn, by_name[name], tenant_id)
    return selection


def _refuse_other_tenants(conn: psycopg.Connection, table: Table, tenant_id: int) -> None:
    """Referenced rows may be shared (no tenant) but never another tenant's."""
    if table.tenant_column is None:
        return
    query = sql.SQL(
        "SELECT count(*) FROM {t} r WHERE ({pk}) IN (SELECT * FROM {keys}) AND {tc} IS NOT NULL"
    ).format(
        t=sql.Identifier(table.name),
        pk=_names(table.primary_key, "r"),
        keys=_keys_table(table.name),
        tc=sql.Identifier("r", table.tenant_column),
    )
    row = conn.execute(query).fetchone()
    if row and row[0]:
        raise ExportError(
            f"{row[0]} row(s) of {table.name} of another tenant are referenced by tenant"
            f" {tenant_id}'s rows: the export would leak them"
        )


def _write_table(
    conn: psycopg.Connection, table: Table, selection: _Selection, folder: Path
) -> list[archive.FileEntry]:
    """Stream the table's rows to data/<table>.csv and describe it in schema/<table>.json;
    their manifest entries."""
    data, schema = f"data/{table.name}.csv", f"schema/{table.name}.json"
    order = (
        sql.SQL(" ORDER BY {}").format(_names(table.primary_key))
        if table.primary_key
        else sql.SQL("")
    )
    query = sql.SQL(
        "COPY (SELECT {exprs} FROM {t} s WHERE {rows}{order}) TO STDOUT (FORMAT csv, HEADER)"
    ).format(
        exprs=sql.SQL(", ").join(c.export_sql() for c in table.exported),
        t=sql.Identifier(table.name),
        rows=selection.rows(table, "s"),
        order=order,
    )
    with conn.cursor() as cur, (folder / data).open("wb") as out:
        with cur.copy(query) as copy:
            for chunk in copy:
                out.write(chunk)
        rows = cur.rowcount
    description = _describe(table, data, rows)
    (folder / schema).write_text(
        json.dumps(description, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    columns = [c.name for c in table.exported]
    return [
        _entry(folder, data, table=table.name, columns=columns, rows=rows, schema=schema),
        _entry(folder, schema),
    ]


def _entry(folder: Path, path: str, **fields: Any) -> archive.FileEntry:
    target = folder / path
    return archive.FileEntry(
        path=path, sha256=archive.file_sha256(target), bytes=target.stat().st_size, **fields
    )


def _field_type(column: Column) -> dict[str, str]:
    """The Frictionless Table Schema type (and format) of a column."""
    if column.encoding == "base64":
        return {"type": "string", "format": "binary"}
    if column.encoding == "json":
        return {"type": "any", "format": "json"}
    if column.encoding == "json-array":
        return {"type": "array"}
    if column.encoding == "boolean":
        return {"type": "boolean"}
    if column.encoding == "iso8601":
        return {"type": _TEMPORAL.get(column.type_name, "string")}
    if column.type_name in {"int2", "int4", "int8"}:
        return {"type": "integer"}
    if column.category == "N":
        return {"type": "number"}
    if column.type_name == "uuid":
        return {"type": "string", "format": "uuid"}
    return {"type": "string"}


def _describe(table: Table, path: str, rows: int) -> dict[str, Any]:
    """The file's description: a Frictionless tabular data resource, plus PostgreSQL's types."""
    fields = [
        {
            "name": c.name,
            **_field_type(c),
            "pgType": c.pg_type,
            "encoding": c.encoding,
            "constraints": {"required": c.not_null},
        }
        for c in table.exported
    ]
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    if table.primary_key:
        schema["primaryKey"] = list(table.primary_key)
    schema["foreignKeys"] = [
        {
            "fields": list(k.columns),
            "reference": {"resource": k.ref_table, "fields": list(k.ref_columns)},
        }
        for k in table.foreign_keys
    ]
    return {
        "profile": "tabular-data-resource",
        "name": table.name,
        "path": path,
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "dialect": {
            "delimiter": ",",
            "quoteChar": '"',
            "doubleQuote": True,
            "header": True,
            "lineTerminator": "\n",
        },
        "rows": rows,
        "tenantColumn": table.tenant_column,
        "excludedColumns": table.excluded,
        "schema": schema,
    }
