"""SQLite DDL rendered from Mastra's table schemas, and the versioned migrations that apply it."""

from __future__ import annotations

from collections.abc import Sequence

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
from ..core.codec import iso, utc_now
from ..core.migrations import LEDGER_TABLE, MigrationStep, pending
from .connection import Connection, Tx

_SQLITE_TYPES = {
    "text": "TEXT",
    "uuid": "TEXT",
    "timestamp": "TEXT",
    "jsonb": "TEXT",
    "integer": "INTEGER",
    "bigint": "INTEGER",
    "float": "REAL",
    "boolean": "INTEGER",
}
# What ALTER TABLE ADD COLUMN gives a NOT NULL column on existing rows (Mastra's defaults).
_NOT_NULL_DEFAULTS = {"TEXT": "''", "INTEGER": "0", "REAL": "0"}


def _column_sql(col: Column) -> str:
    sql = f'"{col.name}" {_SQLITE_TYPES[col.type]}'
    if col.nullable is False:
        sql += " NOT NULL"
    if col.primary_key:
        sql += " PRIMARY KEY"
    return sql


def create_table_sql(table: Table) -> str:
    parts = [_column_sql(col) for col in table.columns]
    parts += ["UNIQUE (" + ", ".join(f'"{c}"' for c in cols) + ")" for cols in table.unique]
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(parts)})'


def _add_column_sql(table: Table, col: Column) -> str:
    type_sql = _SQLITE_TYPES[col.type]
    default = _NOT_NULL_DEFAULTS[type_sql] if col.nullable is False else "NULL"
    not_null = " NOT NULL" if col.nullable is False else ""
    return f'ALTER TABLE "{table.name}" ADD COLUMN "{col.name}" {type_sql}{not_null} DEFAULT {default}'


def index_sql(index: Index) -> str:
    unique = "UNIQUE " if index.unique else ""
    where = f" WHERE {index.where}" if index.where else ""
    return f'CREATE {unique}INDEX IF NOT EXISTS "{index.name}" ON "{index.table}" ({index.columns}){where}'


_LEDGER_DDL = (
    f'CREATE TABLE IF NOT EXISTS "{LEDGER_TABLE}" (domain TEXT NOT NULL, version INTEGER NOT NULL, '
    "name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (domain, version))"
)


def applied(tx: Tx, domain: str) -> dict[int, str]:
    """The ledger of ``domain``: version -> checksum (empty without a ledger)."""
    return _applied(tx, domain)


def _applied(tx: Tx, domain: str) -> dict[int, str]:
    if not tx.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (LEDGER_TABLE,)):
        return {}
    rows = tx.query(f'SELECT version, checksum FROM "{LEDGER_TABLE}" WHERE domain = ?', (domain,))
    return {int(version): str(checksum) for version, checksum in rows}


def _statements(tx: Tx, migration: Migration, planned: set[str]) -> list[str]:
    """The DDL ``migration`` runs on this database: a missing table is created, an existing one
    (Mastra's, or an earlier layout) gets the columns it lacks. ``planned`` holds the tables a dry
    run has already planned to create."""
    statements: list[str] = []
    for table in migration.tables:
        existing = {str(row[1]).lower() for row in tx.query(f'PRAGMA table_info("{table.name}")')}
        if not existing and table.name not in planned:
            statements.append(create_table_sql(table))
            planned.add(table.name)
        elif existing:
            statements += [_add_column_sql(table, col) for col in table.columns if col.name.lower() not in existing]
    statements += [f'DROP INDEX IF EXISTS "{name}"' for name in migration.drops]
    return statements + [index_sql(index) for index in migration.indexes]


def _apply_next(tx: Tx, domain: str, migrations: Sequence[Migration]) -> MigrationStep | None:
    tx.execute(_LEDGER_DDL)
    todo = pending(domain, migrations, _applied(tx, domain))
    if not todo:
        return None
    migration = todo[0]
    statements = _statements(tx, migration, set())
    for statement in statements:
        tx.execute(statement)
    tx.execute(
        f'INSERT INTO "{LEDGER_TABLE}" (domain, version, name, checksum, applied_at) VALUES (?, ?, ?, ?, ?)',
        (domain, migration.version, migration.name, migration.checksum, iso(utc_now())),
    )
    return MigrationStep(domain, migration.version, migration.name, tuple(statements), applied=True)


def _plan(tx: Tx, domain: str, migrations: Sequence[Migration]) -> list[MigrationStep]:
    planned: set[str] = set()
    return [
        MigrationStep(domain, m.version, m.name, tuple(_statements(tx, m, planned)), applied=False)
        for m in pending(domain, migrations, _applied(tx, domain))
    ]


async def migrate(
    conn: Connection, domain: str, migrations: Sequence[Migration], *, dry_run: bool = False
) -> list[MigrationStep]:
    """Applies the pending migrations of ``domain``, each in its own write transaction (``BEGIN
    IMMEDIATE``: two processes migrating one file take turns, and each re-reads the ledger inside its
    transaction); ``dry_run`` only plans them and writes nothing. Up to date, it is one transaction
    that reads the ledger."""
    if dry_run:
        return await conn.transaction(lambda tx: _plan(tx, domain, migrations))
    steps: list[MigrationStep] = []
    while (step := await conn.transaction(lambda tx: _apply_next(tx, domain, migrations))) is not None:
        steps.append(step)
    return steps


# Every domain's schema, version by version: what migrate() applies (see docs/migrations.md).
_RUNS_BY_RESOURCE = Index(
    "idx_workflow_snapshot_resource_created_at", "mastra_workflow_snapshot", '"resourceId", "createdAt"'
)

MIGRATIONS: dict[str, tuple[Migration, ...]] = {
    "memory": schema_migrations(
        "memory",
        (THREADS, MESSAGES, RESOURCES),
        indexes=(
            Index("idx_messages_thread_created_at", "mastra_messages", 'thread_id, "createdAt", id'),
            Index(
                "idx_messages_thread_resource_created_at", "mastra_messages", 'thread_id, "resourceId", "createdAt", id'
            ),
            Index("idx_messages_resource_created_at", "mastra_messages", '"resourceId", "createdAt", id'),
            Index("idx_threads_resource_created_at", "mastra_threads", '"resourceId", "createdAt", id'),
            Index("idx_threads_resource_updated_at", "mastra_threads", '"resourceId", "updatedAt", id'),
        ),
    ),
    "workflows": (
        *schema_migrations(
            "workflows",
            (WORKFLOW_SNAPSHOT,),
            indexes=(
                Index(
                    "idx_workflow_snapshot_name_created_at", "mastra_workflow_snapshot", 'workflow_name, "createdAt"'
                ),
                Index("idx_workflow_snapshot_created_at", "mastra_workflow_snapshot", '"createdAt"'),
                _RUNS_BY_RESOURCE,
                Index("idx_workflow_snapshot_run_id", "mastra_workflow_snapshot", "run_id"),
            ),
        ),
        runs_by_resource(_RUNS_BY_RESOURCE),
    ),
    "scores": schema_migrations(
        "scores",
        (SCORERS,),
        indexes=(
            Index("idx_scorers_scorer_created_at", "mastra_scorers", '"scorerId", "createdAt"'),
            Index("idx_scorers_run_created_at", "mastra_scorers", '"runId", "createdAt"'),
            Index("idx_scorers_entity_created_at", "mastra_scorers", '"entityId", "entityType", "createdAt"'),
            Index("idx_scorers_span_created_at", "mastra_scorers", '"traceId", "spanId", "createdAt"'),
        ),
    ),
    "observability": schema_migrations(
        "observability",
        (AI_SPANS,),
        unique=(Index("mastra_ai_spans_spanid_traceid_idx", "mastra_ai_spans", '"spanId", "traceId"', unique=True),),
        indexes=(
            Index("mastra_ai_spans_roots_started_at_idx", "mastra_ai_spans", '"startedAt" DESC', ROOT_SPAN),
            Index("mastra_ai_spans_trace_started_at_idx", "mastra_ai_spans", '"traceId", "startedAt", "spanId"'),
            Index("mastra_ai_spans_roots_ended_at_idx", "mastra_ai_spans", '"endedAt"', ROOT_SPAN),
        ),
    ),
    "agents": schema_migrations(
        "agents",
        (AGENTS, AGENT_VERSIONS),
        unique=(
            Index(
                "idx_agent_versions_agent_number", "mastra_agent_versions", '"agentId", "versionNumber"', unique=True
            ),
        ),
        indexes=(
            Index("idx_agents_created_at", "mastra_agents", '"createdAt"'),
            Index("idx_agents_status_created_at", "mastra_agents", 'status, "createdAt"'),
        ),
    ),
}
