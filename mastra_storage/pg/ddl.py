"""PostgreSQL DDL in Mastra's ``@mastra/pg`` form, with add-missing-column migrations.

As in Mastra, a column is NOT NULL unless it is explicitly nullable, and every ``timestamp`` column
``c`` has a ``"cZ" TIMESTAMPTZ`` companion that readers prefer (it carries no time-zone ambiguity).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from .._sql.schema import Column, Table

_PG_TYPES = {
    "text": "TEXT",
    "uuid": "UUID",
    "timestamp": "TIMESTAMP",
    "jsonb": "JSONB",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
}
# What ADD COLUMN gives existing rows of a NOT NULL column (Mastra's defaults).
_DEFAULTS = {
    "TEXT": "''",
    "UUID": "gen_random_uuid()",
    "TIMESTAMP": "NOW()",
    "JSONB": "'{}'::jsonb",
    "INTEGER": "0",
    "BIGINT": "0",
    "FLOAT": "0",
    "BOOLEAN": "FALSE",
}
# Mastra's key constraints, by table (names get the schema prefix outside ``public``, as Mastra's do).
_CONSTRAINTS = {
    "mastra_workflow_snapshot": ("mastra_workflow_snapshot_workflow_name_run_id_key", "UNIQUE (workflow_name, run_id)"),
    "mastra_ai_spans": ("mastra_ai_spans_traceid_spanid_pk", 'PRIMARY KEY ("traceId", "spanId")'),
}


def object_name(prefix: str, name: str) -> str:
    """A schema's index or constraint name: ``<schema>_<name>``, or — when that would pass PostgreSQL's
    63-byte limit, which silently truncates and makes names collide — a hash of the schema instead."""
    full = prefix + name
    if len(full.encode()) <= 63:
        return full
    return f"{zlib.crc32(prefix.encode()):08x}_{name}"[:63]


def not_null(col: Column) -> bool:
    return col.nullable is not True


def _column_sql(col: Column) -> list[str]:
    sql = f'"{col.name}" {_PG_TYPES[col.type]}'
    if not_null(col):
        sql += " NOT NULL"
    if col.primary_key:
        sql += " PRIMARY KEY"
    parts = [sql]
    if col.type == "timestamp":
        parts.append(f'"{col.name}Z" TIMESTAMPTZ DEFAULT NOW()')
    return parts


def create_table_sql(schema: str, table: Table, prefix: str) -> str:
    parts = [part for col in table.columns for part in _column_sql(col)]
    if table.name in _CONSTRAINTS:
        name, definition = _CONSTRAINTS[table.name]
        parts.append(f'CONSTRAINT "{object_name(prefix, name)}" {definition}')
    return f'CREATE TABLE IF NOT EXISTS "{schema}".{table.name} ({", ".join(parts)})'


def add_column_sql(schema: str, table: Table, col: Column) -> list[str]:
    type_sql = _PG_TYPES[col.type]
    suffix = f" NOT NULL DEFAULT {_DEFAULTS[type_sql]}" if not_null(col) else ""
    statements = [f'ALTER TABLE "{schema}".{table.name} ADD COLUMN IF NOT EXISTS "{col.name}" {type_sql}{suffix}']
    if col.type == "timestamp":
        statements.append(
            f'ALTER TABLE "{schema}".{table.name} ADD COLUMN IF NOT EXISTS "{col.name}Z" TIMESTAMPTZ DEFAULT NOW()'
        )
    return statements


async def ensure_schema(conn: Any, schema: str, tables: Sequence[Table], indexes: Sequence[str], prefix: str) -> None:
    """Creates the schema, tables, missing columns and indexes in one transaction, under an advisory
    lock so processes initializing the same database at once take turns."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(f"mastra-storage:{schema}".encode()))
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        rows = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1", schema
        )
        existing = {(r["table_name"], r["column_name"]) for r in rows}
        for table in tables:
            await conn.execute(create_table_sql(schema, table, prefix))
            if not any(name == table.name for name, _ in existing):
                continue  # just created: nothing to migrate
            for col in table.columns:
                if (table.name, col.name) not in existing or (
                    col.type == "timestamp" and (table.name, f"{col.name}Z") not in existing
                ):
                    for statement in add_column_sql(schema, table, col):
                        await conn.execute(statement)
        for index in indexes:
            await conn.execute(index)
