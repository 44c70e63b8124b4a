"""PostgreSQL DDL in Mastra's ``@mastra/pg`` form, and the versioned migrations that apply it.

As in Mastra, a column is NOT NULL unless it is explicitly nullable, and every ``timestamp`` column
``c`` has a ``"cZ" TIMESTAMPTZ`` companion that readers prefer (it carries no time-zone ambiguity).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from .._sql.schema import (
    AGENT_VERSIONS,
    AGENTS,
    AI_SPANS,
    MESSAGES,
    RESOURCES,
    SCORERS,
    THREADS,
    WORKFLOW_SNAPSHOT,
    Column,
    Index,
    Migration,
    Table,
    runs_by_resource,
    schema_migrations,
)
from .._sql.traces import ROOT_SPAN
from ..core.migrations import LEDGER_TABLE, MigrationStep, pending

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


def index_sql(schema: str, prefix: str, index: Index) -> str:
    unique = "UNIQUE " if index.unique else ""
    using = f" USING {index.using}" if index.using else ""
    where = f" WHERE {index.where}" if index.where else ""
    name = object_name(prefix, index.name)
    return f'CREATE {unique}INDEX IF NOT EXISTS "{name}" ON "{schema}".{index.table}{using} ({index.columns}){where}'


def _ledger_ddl(schema: str) -> str:
    return (
        f'CREATE TABLE IF NOT EXISTS "{schema}".{LEDGER_TABLE} (domain TEXT NOT NULL, version INTEGER NOT NULL, '
        "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), "
        "PRIMARY KEY (domain, version))"
    )


async def applied(conn: Any, schema: str, domain: str) -> dict[int, str] | None:
    """The ledger of ``domain`` (version -> checksum), or None when there is no ledger yet."""
    ledgers = await all_applied(conn, schema)
    return None if ledgers is None else ledgers.get(domain, {})


async def all_applied(conn: Any, schema: str) -> dict[str, dict[int, str]] | None:
    """Every domain's ledger in one query (the table holds a row per domain and version), or None
    when there is no ledger yet."""
    try:
        rows = await conn.fetch(f'SELECT domain, version, checksum FROM "{schema}".{LEDGER_TABLE}')
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return None
    ledgers: dict[str, dict[int, str]] = {}
    for r in rows:
        ledgers.setdefault(str(r["domain"]), {})[int(r["version"])] = str(r["checksum"])
    return ledgers


async def _statements(conn: Any, schema: str, prefix: str, migration: Migration, planned: set[str]) -> list[str]:
    """The DDL ``migration`` runs on this database: a missing table is created, an existing one
    (Mastra's, or an earlier layout) gets the columns it lacks."""
    rows = await conn.fetch(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1",
        schema,
    )
    existing = {(r["table_name"], r["column_name"]) for r in rows}
    statements: list[str] = []
    for table in migration.tables:
        if not any(name == table.name for name, _ in existing):
            if table.name not in planned:
                statements.append(create_table_sql(schema, table, prefix))
                planned.add(table.name)
            continue
        for col in table.columns:
            if (table.name, col.name) not in existing or (
                col.type == "timestamp" and (table.name, f"{col.name}Z") not in existing
            ):
                statements += add_column_sql(schema, table, col)
    statements += [f'DROP INDEX IF EXISTS "{schema}"."{object_name(prefix, name)}"' for name in migration.drops]
    return statements + [index_sql(schema, prefix, index) for index in migration.indexes]


async def plan(
    conn: Any, schema: str, prefix: str, domain: str, migrations: Sequence[Migration], recorded: dict[int, str]
) -> list[MigrationStep]:
    """The pending migrations of ``domain`` with the DDL each would run here; writes nothing."""
    planned: set[str] = set()
    return [
        MigrationStep(domain, m.version, m.name, tuple(await _statements(conn, schema, prefix, m, planned)), False)
        for m in pending(domain, migrations, recorded)
    ]


async def apply_next(
    conn: Any, schema: str, prefix: str, domain: str, migrations: Sequence[Migration]
) -> MigrationStep | None:
    """Inside the caller's transaction: takes the schema's advisory lock (processes migrating one
    schema take turns), re-reads the ledger under it and applies the next pending migration with
    its ledger row; None when nothing is pending."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(f"mastra-storage:{schema}".encode()))
    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await conn.execute(_ledger_ddl(schema))
    todo = pending(domain, migrations, await applied(conn, schema, domain) or {})
    if not todo:
        return None
    migration = todo[0]
    statements = await _statements(conn, schema, prefix, migration, set())
    for statement in statements:
        await conn.execute(statement)
    await conn.execute(
        f'INSERT INTO "{schema}".{LEDGER_TABLE} (domain, version, name, checksum) VALUES ($1, $2, $3, $4)',
        domain,
        migration.version,
        migration.name,
        migration.checksum,
    )
    return MigrationStep(domain, migration.version, migration.name, tuple(statements), applied=True)


_RUNS_BY_RESOURCE = Index(
    "mastra_workflow_snapshot_resourceid_createdat_idx", "mastra_workflow_snapshot", '"resourceId", "createdAt" DESC'
)

# Every domain's schema, version by version: what migrate() applies (see docs/migrations.md).
MIGRATIONS: dict[str, tuple[Migration, ...]] = {
    "memory": schema_migrations(
        "memory",
        (THREADS, MESSAGES, RESOURCES),
        indexes=(
            Index("mastra_threads_resourceid_createdat_idx", "mastra_threads", '"resourceId", "createdAt" DESC'),
            Index("mastra_threads_resourceid_updatedat_idx", "mastra_threads", '"resourceId", "updatedAt" DESC'),
            Index("mastra_messages_thread_id_createdat_idx", "mastra_messages", 'thread_id, "createdAt" DESC'),
            Index("mastra_messages_resourceid_createdat_idx", "mastra_messages", '"resourceId", "createdAt" DESC'),
        ),
    ),
    "workflows": (
        *schema_migrations(
            "workflows",
            (WORKFLOW_SNAPSHOT,),
            indexes=(
                Index(
                    "mastra_workflow_snapshot_name_createdat_idx",
                    "mastra_workflow_snapshot",
                    'workflow_name, "createdAt" DESC',
                ),
                _RUNS_BY_RESOURCE,
                Index("mastra_workflow_snapshot_createdat_idx", "mastra_workflow_snapshot", '"createdAt" DESC'),
                Index("mastra_workflow_snapshot_run_id_idx", "mastra_workflow_snapshot", "run_id"),
            ),
        ),
        runs_by_resource(_RUNS_BY_RESOURCE),
    ),
    "scores": schema_migrations(
        "scores",
        (SCORERS,),
        indexes=(
            Index(
                "mastra_scores_trace_id_span_id_created_at_idx",
                "mastra_scorers",
                '"traceId", "spanId", "createdAt" DESC',
            ),
            Index("mastra_scores_scorer_id_created_at_idx", "mastra_scorers", '"scorerId", "createdAt" DESC'),
            Index("mastra_scores_run_id_created_at_idx", "mastra_scorers", '"runId", "createdAt" DESC'),
            Index(
                "mastra_scores_entity_created_at_idx", "mastra_scorers", '"entityId", "entityType", "createdAt" DESC'
            ),
        ),
    ),
    "observability": schema_migrations(
        "observability",
        (AI_SPANS,),
        indexes=(
            Index("mastra_ai_spans_traceid_startedat_idx", "mastra_ai_spans", '"traceId", "startedAt"'),
            Index("mastra_ai_spans_root_spans_idx", "mastra_ai_spans", '"startedAt" DESC', ROOT_SPAN),
            Index("mastra_ai_spans_root_endedat_idx", "mastra_ai_spans", '"endedAt" DESC NULLS FIRST', ROOT_SPAN),
            Index("mastra_ai_spans_entitytype_entityid_idx", "mastra_ai_spans", '"entityType", "entityId"'),
            Index("mastra_ai_spans_metadata_gin_idx", "mastra_ai_spans", "metadata", using="gin"),
            Index("mastra_ai_spans_tags_gin_idx", "mastra_ai_spans", "tags", using="gin"),
        ),
    ),
    "agents": schema_migrations(
        "agents",
        (AGENTS, AGENT_VERSIONS),
        unique=(
            Index(
                "mastra_agent_versions_agent_number_idx",
                "mastra_agent_versions",
                '"agentId", "versionNumber"',
                unique=True,
            ),
        ),
        indexes=(
            Index("mastra_agents_createdat_idx", "mastra_agents", '"createdAt" DESC'),
            Index("mastra_agents_status_createdat_idx", "mastra_agents", 'status, "createdAt" DESC'),
        ),
    ),
}
