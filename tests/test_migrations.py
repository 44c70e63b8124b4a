"""Versioned schema migrations on real engines (a SQLite file, the PostgreSQL server): the ledger,
dry runs that change nothing, adopting a database laid out by Mastra or an earlier version, refusing
a newer one, and processes migrating one database at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import asyncpg
import pytest

from mastra_storage import SchemaVersionError, StorageInitError, connect
from mastra_storage.backend import BackendStore
from mastra_storage.core.migrations import LEDGER_TABLE
from mastra_storage.pg import PostgresStore
from mastra_storage.testing.cancel import cancel_after_turns

from .pg_server import PG_URL, drop_schema, new_schema

DOMAINS = ("agents", "memory", "observability", "scores", "workflows")
# every (domain, version) a new database records: 1 tables, 2 list indexes, workflows 3 a partial index
VERSIONS = sorted([(d, v) for d in DOMAINS for v in (1, 2)] + [("workflows", 3)])


@dataclass
class Db:
    """A database reached two ways: through ``connect(url)`` and through its raw driver."""

    kind: str
    url: str
    target: str  # the SQLite path, or the PostgreSQL schema

    async def sql(self, statement: str) -> list[tuple[Any, ...]]:
        if self.kind == "libsql":
            # apsw, the SQLite the store runs on: two SQLite libraries on one file in one process
            # would break each other's POSIX locks (SQLite's "multiple copies" warning).
            conn = apsw.Connection(self.target)
            try:
                return [tuple(row) for row in conn.execute(statement).fetchall()]
            finally:
                conn.close()
        conn = await asyncpg.connect(PG_URL, server_settings={"search_path": self.target})
        try:
            return [tuple(row) for row in await conn.fetch(statement)]
        finally:
            await conn.close()

    async def tables(self) -> set[str]:
        if self.kind == "libsql":
            rows = await self.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            rows = await self.sql(
                f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{self.target}'"
            )
        return {str(name) for (name,) in rows}

    async def ledger(self) -> list[tuple[str, int]]:
        if LEDGER_TABLE not in await self.tables():
            return []
        rows = await self.sql(f"SELECT domain, version FROM {LEDGER_TABLE} ORDER BY domain, version")
        return [(str(domain), int(version)) for domain, version in rows]


@pytest.fixture(params=["libsql", "pg"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    if request.param == "libsql":
        path = tmp_path / "mastra.db"
        yield Db("libsql", f"file:{path}", str(path))
        return
    schema = new_schema()
    yield Db("pg", f"{PG_URL}?schema={schema}", schema)
    await drop_schema(schema)


async def _migrate(url: str, *, dry_run: bool = False) -> list[Any]:
    store = connect(url)
    try:
        return await store.migrate(dry_run=dry_run)
    finally:
        await store.close()


async def test_a_new_database_is_migrated_once_and_recorded(db: Db) -> None:
    steps = await _migrate(db.url)
    assert {(s.domain, s.version) for s in steps} == set(VERSIONS)
    assert all(s.applied and s.statements for s in steps)
    assert await db.ledger() == VERSIONS
    assert await _migrate(db.url) == []  # up to date: nothing runs again
    async with connect(db.url) as store:  # init() on it works and writes nothing new
        assert isinstance(store, BackendStore)
    assert len(await db.ledger()) == len(VERSIONS)


async def test_migration_3_redefines_the_runs_by_resource_index_as_partial(db: Db) -> None:
    if db.kind == "libsql":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mastra_workflow_snapshot'"
    else:
        query = f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{db.target}'"
    await _migrate(db.url)
    defs = {str(name): str(sql) for name, sql in await db.sql(query) if "snapshot_resource" in str(name)}
    (definition,) = defs.values()
    assert 'WHERE ("resourceId" IS NOT NULL)' in definition or 'WHERE "resourceId" IS NOT NULL' in definition
    await db.sql(f"DELETE FROM {LEDGER_TABLE} WHERE domain = 'workflows' AND version = 3")
    steps = await _migrate(db.url)  # a database left at version 2 by an earlier release: 3 runs, idempotent
    assert [(s.domain, s.version) for s in steps] == [("workflows", 3)]
    assert any("DROP INDEX" in statement for statement in steps[0].statements)
    assert {str(n): str(s) for n, s in await db.sql(query) if "snapshot_resource" in str(n)} == defs


async def test_a_dry_run_lists_the_ddl_and_changes_nothing(db: Db) -> None:
    steps = await _migrate(db.url, dry_run=True)
    assert [(s.domain, s.version) for s in steps if s.domain == "memory"] == [("memory", 1), ("memory", 2)]
    assert not any(s.applied for s in steps)
    memory_tables = next(s for s in steps if (s.domain, s.version) == ("memory", 1))
    assert sum("CREATE TABLE" in statement for statement in memory_tables.statements) == 3
    assert all("INDEX" in statement for s in steps if s.version == 2 for statement in s.statements)
    assert await db.tables() == set()


async def test_an_earlier_layout_without_a_ledger_is_adopted(db: Db) -> None:
    # A threads table as an earlier release laid it out: no metadata column, no ledger, one row.
    if db.kind == "pg":
        await db.sql(f'CREATE SCHEMA "{db.target}"')
    await db.sql(
        'CREATE TABLE mastra_threads (id TEXT PRIMARY KEY, "resourceId" TEXT NOT NULL, title TEXT NOT NULL, '
        '"createdAt" TIMESTAMP NOT NULL, "updatedAt" TIMESTAMP NOT NULL)'
    )
    await db.sql(
        'INSERT INTO mastra_threads (id, "resourceId", title, "createdAt", "updatedAt") '
        "VALUES ('t1', 'r1', 'old', '2026-01-02T03:04:05.000Z', '2026-01-02T03:04:05.000Z')"
    )
    planned = await _migrate(db.url, dry_run=True)
    memory_tables = next(s for s in planned if (s.domain, s.version) == ("memory", 1))
    assert any("ADD COLUMN" in s and '"metadata"' in s for s in memory_tables.statements)
    assert not any("mastra_threads (" in s and "CREATE TABLE" in s for s in memory_tables.statements)
    async with connect(db.url) as store:
        memory = await store.get_store("memory")
        assert memory is not None
        thread = await memory.get_thread_by_id(thread_id="t1")
        assert thread is not None and thread.title == "old" and thread.resource_id == "r1"
    assert ("memory", 2) in await db.ledger()


async def test_a_database_migrated_by_a_newer_release_is_refused_and_left_alone(db: Db) -> None:
    await _migrate(db.url)
    await db.sql(
        f"INSERT INTO {LEDGER_TABLE} (domain, version, name, checksum, applied_at) "
        "VALUES ('memory', 3, 'from the future', 'x', '2030-01-01T00:00:00Z')"
    )
    before = await db.tables()
    with pytest.raises(SchemaVersionError, match="newer than this package"):
        await _migrate(db.url, dry_run=True)
    store = connect(db.url)
    with pytest.raises(StorageInitError) as caught:
        await store.init()
    await store.close()
    assert isinstance(caught.value.failures["memory"], SchemaVersionError)
    assert await db.tables() == before
    assert ("memory", 3) in await db.ledger()


_INIT = """
import asyncio, sys
from mastra_storage import connect

async def main() -> None:
    async with connect(sys.argv[1]) as store:
        memory = await store.get_store("memory")
        await memory.get_thread_by_id(thread_id="x")

asyncio.run(main())
"""


async def test_processes_migrating_one_database_at_once_take_turns(db: Db) -> None:
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _INIT, db.url, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [await proc.communicate() for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err.decode()[-2000:] for _, err in results]
    assert await db.ledger() == VERSIONS


async def test_import_checks_every_record_before_writing(db: Db) -> None:
    from mastra_storage import ValidationError
    from mastra_storage.testing.samples import sample_message, sample_thread

    thread = sample_thread()
    good = sample_message(thread)
    bad = sample_message(thread)
    bad.role = 7  # type: ignore[assignment]  # a Struct is not checked when built
    store = connect(db.url)
    try:
        memory: Any = await store.get_store("memory")
        with pytest.raises(ValidationError, match=r"messages\[1\]"):
            await memory.import_records(kind="messages", records=[good, bad])
        with pytest.raises(ValidationError):
            await memory.import_records(kind="messages", records=[thread])
        assert await memory.count_records(kind="messages") == 0
        await memory.import_records(kind="messages", records=[good, good])
        assert await memory.count_records(kind="messages") == 1
    finally:
        await store.close()


async def test_a_cancelled_migration_leaves_whole_versions_and_the_next_run_finishes(db: Db) -> None:
    """Cancelled after 0, 1, 2, … turns of the event loop (every await a cancellation point): what is
    recorded is whole, nothing is half-applied, and the next migrate() completes the rest."""
    # PostgreSQL on a pool made beforehand, so the cancels land in the migrations, not in connecting.
    pool = await asyncpg.create_pool(PG_URL, min_size=2, max_size=2) if db.kind == "pg" else None
    # Turns to reach every stage: a SQLite migration is a few writer hops, a PostgreSQL one many round trips.
    for turns in range(0, 3000, 97) if db.kind == "libsql" else range(0, 16000, 797):
        store = PostgresStore(id="c", pool=pool, schema_name=db.target) if pool is not None else connect(db.url)
        await cancel_after_turns(store.migrate(), turns)
        await store.close()
        recorded = await db.ledger()
        assert len(recorded) == len(set(recorded))
        if ("memory", 1) in recorded:
            assert {"mastra_threads", "mastra_messages", "mastra_resources"} <= await db.tables()
    if pool is not None:
        await pool.close()
    finish = connect(db.url)
    try:
        await finish.migrate()
        assert await finish.migrate(dry_run=True) == []
    finally:
        await finish.close()
    assert await db.ledger() == VERSIONS
    if db.kind == "libsql":
        assert await db.sql("PRAGMA integrity_check") == [("ok",)]


async def test_the_ledger_reads_back_and_doctor_notes_a_changed_definition(db: Db) -> None:
    store = connect(db.url)
    try:
        memory: Any = await store.get_store("memory")
        assert await memory.schema_ledger() == {}  # no ledger yet: nothing recorded, nothing made
        await store.migrate()
        recorded = await memory.schema_ledger()
        assert recorded == {m.version: m.checksum for m in memory.migrations}
        await db.sql(f"UPDATE {LEDGER_TABLE} SET checksum = 'other' WHERE domain = 'memory' AND version = 2")
        checks = {c.name: c for c in await store.diagnose()}
        assert (
            checks["memory schema"].ok
            and "version(s) [2] were recorded with a different" in checks["memory schema"].detail
        )
        assert "note" not in checks["scores schema"].detail
    finally:
        await store.close()
