"""Mastra's core tables (reference §4.2), the single source both SQL backends render DDL from.

Column names and types are Mastra's, so Mastra's own ``@mastra/libsql`` and ``@mastra/pg`` read
what this package writes. ``nullable=None`` is Mastra's "nullable unset" (nullable in SQLite,
NOT NULL in PostgreSQL).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["text", "timestamp", "uuid", "jsonb", "integer", "float", "bigint", "boolean"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool | None = True
    primary_key: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    unique: tuple[tuple[str, ...], ...] = field(default=())

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(col.name for col in self.columns)


@dataclass(frozen=True)
class Index:
    """An index a list query needs. ``columns`` is the backend's own column list (order, ``DESC``),
    ``where`` a partial index's condition, ``using`` the access method (PostgreSQL ``gin``)."""

    name: str
    table: str
    columns: str
    where: str | None = None
    unique: bool = False
    using: str | None = None


@dataclass(frozen=True)
class Migration:
    """One released step of a domain's schema: tables to create (or, when they exist, to complete
    with the columns they lack — how a database written by Mastra or by an earlier version of this
    package is adopted) and indexes to create. A released migration never changes; a new column or
    index is a new migration with the next version."""

    version: int
    name: str
    tables: tuple[Table, ...] = ()
    indexes: tuple[Index, ...] = ()
    drops: tuple[str, ...] = ()  # indexes dropped first (an index redefined under its own name)

    @property
    def checksum(self) -> str:
        """What the ledger records: a hash of the definition — the tables by name (a table's columns
        grow over releases: a later migration adds them where the table exists), the indexes and
        the indexes it drops."""
        definition: tuple[object, ...] = (self.version, self.name, tuple(t.name for t in self.tables), self.indexes)
        if self.drops:  # left out when empty: the checksums of released migrations stay as they were
            definition += (self.drops,)
        return hashlib.sha256(repr(definition).encode()).hexdigest()[:16]


def schema_migrations(
    domain: str, tables: tuple[Table, ...], *, unique: tuple[Index, ...] = (), indexes: tuple[Index, ...] = ()
) -> tuple[Migration, ...]:
    """A domain's first two migrations: 1 its tables (with the ``unique`` indexes its writes rely
    on), 2 the indexes its lists are served by."""
    return (
        Migration(1, f"{domain} tables", tables=tables, indexes=unique),
        Migration(2, f"{domain} list indexes", indexes=indexes),
    )


def runs_by_resource(index: Index) -> Migration:
    """Workflows migration 3: the by-resource run index covers only runs that have a resource (a run
    without one — most of them — no longer pays an index insert; a list by resource, ``"resourceId"
    = $1``, implies the condition, so it still walks the index)."""
    partial = Index(index.name, index.table, index.columns, where='"resourceId" IS NOT NULL')
    name = "workflows by-resource index over runs with a resource"
    return Migration(3, name, indexes=(partial,), drops=(index.name,))


def _c(spec: str) -> Column:
    """``"name type [NN|unset] [PK]"`` → Column; the compact form keeps the tables readable."""
    name, type_, *flags = spec.split()
    nullable: bool | None = True
    if "NN" in flags:
        nullable = False
    elif "unset" in flags:
        nullable = None
    return Column(name, type_, nullable, "PK" in flags)  # type: ignore[arg-type]


def _table(name: str, specs: str, unique: tuple[tuple[str, ...], ...] = ()) -> Table:
    return Table(name, tuple(_c(s.strip()) for s in specs.split(";") if s.strip()), unique)


THREADS = _table(
    "mastra_threads",
    "id text NN PK; resourceId text NN; title text NN; metadata jsonb; createdAt timestamp NN; updatedAt timestamp NN",
)
MESSAGES = _table(
    "mastra_messages",
    "id text NN PK; thread_id text NN; content text NN; role text NN; type text NN; createdAt timestamp NN;"
    "resourceId text",
)
RESOURCES = _table(
    "mastra_resources",
    "id text NN PK; workingMemory text; metadata jsonb; createdAt timestamp NN; updatedAt timestamp NN",
)
WORKFLOW_SNAPSHOT = _table(
    "mastra_workflow_snapshot",
    "workflow_name text unset; run_id text unset; resourceId text; snapshot jsonb unset;"
    "createdAt timestamp unset; updatedAt timestamp unset",
    unique=(("workflow_name", "run_id"),),
)
SCORERS = _table(
    "mastra_scorers",
    "id text NN PK; scorerId text unset; traceId text; spanId text; runId text unset; scorer jsonb unset;"
    "preprocessStepResult jsonb; extractStepResult jsonb; analyzeStepResult jsonb; score float unset;"
    "reason text; metadata jsonb; preprocessPrompt text; extractPrompt text; generateScorePrompt text;"
    "generateReasonPrompt text; analyzePrompt text; reasonPrompt text; input jsonb unset; output jsonb unset;"
    "additionalContext jsonb; requestContext jsonb; entityType text; entity jsonb; entityId text;"
    "source text unset; resourceId text; threadId text; organizationId text; projectId text; batchId text;"
    "datasetId text; datasetItemId text; createdAt timestamp unset; updatedAt timestamp unset",
)
AI_SPANS = _table(
    "mastra_ai_spans",
    "traceId text NN; spanId text NN; name text NN; spanType text NN; isEvent boolean NN;"
    "startedAt timestamp NN; parentSpanId text; entityType text; entityId text; entityName text;"
    "parentEntityType text; parentEntityId text; parentEntityName text; rootEntityType text; rootEntityId text;"
    "rootEntityName text; userId text; organizationId text; resourceId text; runId text; sessionId text;"
    "threadId text; requestId text; environment text; serviceName text; scope jsonb; entityVersionId text;"
    "parentEntityVersionId text; rootEntityVersionId text; experimentId text; source text; metadata jsonb;"
    "tags jsonb; attributes jsonb; links jsonb; input jsonb; output jsonb; error jsonb; endedAt timestamp;"
    "requestContext jsonb; createdAt timestamp NN; updatedAt timestamp",
    unique=(("spanId", "traceId"),),
)
AGENTS = _table(
    "mastra_agents",
    "id text NN PK; status text NN; activeVersionId text; authorId text; visibility text; metadata jsonb;"
    "favoriteCount integer; createdAt timestamp NN; updatedAt timestamp NN",
)
AGENT_VERSIONS = _table(
    "mastra_agent_versions",
    "id text NN PK; agentId text NN; versionNumber integer NN; name text NN; description text;"
    "instructions text NN; model jsonb NN; tools jsonb; defaultOptions jsonb; workflows jsonb; agents jsonb;"
    "integrationTools jsonb; toolProviders jsonb; inputProcessors jsonb; outputProcessors jsonb; memory jsonb;"
    "scorers jsonb; mcpClients jsonb; requestContextSchema jsonb; workspace jsonb; skills jsonb;"
    "skillsFormat text; durable jsonb; browser jsonb; changedFields jsonb; changeMessage text;"
    "createdAt timestamp NN",
)
