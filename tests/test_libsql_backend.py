"""What only the libSQL backend has: the event loop stays free, lock handling across processes,
Mastra's on-disk format, migrations, shared connections, retention."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import apsw
import pytest

from mastra_storage import (
    AgentsStorage,
    BackendError,
    MastraStorage,
    MemoryStorage,
    ObservabilityStorage,
    ScoresStorage,
    ValidationError,
    WorkflowsStorage,
)
from mastra_storage.core.codec import iso, utc_now
from mastra_storage.libsql import (
    AgentsLibSQL,
    LibSQLStore,
    MemoryLibSQL,
    ObservabilityLibSQL,
    ScoresLibSQL,
    WorkflowsLibSQL,
)
from mastra_storage.libsql.checkpointer import BOUND_FRAMES, RESTART_FRAMES
from mastra_storage.libsql.local import LocalConnection
from mastra_storage.testing.samples import sample_message, sample_span, sample_thread, timed_messages

from .loop_ticker import ticker
from .standins.hrana import HranaStandIn


def _raw(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` on the file through apsw, the SQLite the store runs on (two SQLite libraries on one
    file in one process would break each other's POSIX locks)."""
    conn = apsw.Connection(str(path))
    try:
        return [tuple(row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def test_domain_classes_satisfy_the_protocols(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'p.db'}"
    memory: MemoryStorage = MemoryLibSQL(url=url)
    workflows: WorkflowsStorage = WorkflowsLibSQL(url=url)
    scores: ScoresStorage = ScoresLibSQL(url=url)
    observability: ObservabilityStorage = ObservabilityLibSQL(url=url)
    agents: AgentsStorage = AgentsLibSQL(url=url)
    for store, protocol in (
        (memory, MemoryStorage),
        (workflows, WorkflowsStorage),
        (scores, ScoresStorage),
        (observability, ObservabilityStorage),
        (agents, AgentsStorage),
    ):
        assert isinstance(store, protocol)


async def test_event_loop_stays_responsive_while_writing(tmp_path: Path) -> None:
    """A ticker asks for 1 ms sleeps while 1,000 messages are written one by one; none may be held up long."""
    async with LibSQLStore(id="loop", url=f"file:{tmp_path / 'loop.db'}") as store:
        memory = store.memory
        thread = await memory.save_thread(thread=sample_thread())
        async with ticker() as delays:
            for message in timed_messages(thread, 1000):
                await memory.save_messages(messages=[message])
        assert (await memory.list_messages(thread_id=thread.id, per_page=1)).total == 1000
        assert len(delays) > 20
        assert max(delays) < 0.03, f"the loop was blocked for {max(delays) * 1000:.1f} ms"


_WRITER = """
import asyncio, sys
from datetime import timedelta
from mastra_storage.core.codec import utc_now
from mastra_storage.libsql import MemoryLibSQL
from mastra_storage.libsql.local import LocalConnection
from mastra_storage.testing.samples import sample_thread, timed_messages

async def main(url, thread_id, resource_id, n):
    memory = MemoryLibSQL(url=url, busy_timeout_ms=50, initial_backoff_ms=20, max_retries=10)
    thread = sample_thread(id=thread_id, resource_id=resource_id)
    await memory.save_thread(thread=thread)
    for i in range(40):
        await memory.save_messages(messages=timed_messages(thread, 5, start=utc_now() + timedelta(hours=n, minutes=i)))
    await memory.close()

asyncio.run(main(*sys.argv[1:4], int(sys.argv[4])))
"""


async def test_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    """Three processes (each with its own connection) write to one file at once: lock waits are
    retried with backoff, nothing surfaces as ``database is locked``, nothing is lost."""
    url = f"file:{tmp_path / 'shared.db'}"
    async with LibSQLStore(id="main", url=url) as store:
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", _WRITER, url, "thread-shared", "res", str(n), stderr=subprocess.PIPE
            )
            for n in range(3)
        ]
        results = await asyncio.gather(*(p.communicate() for p in procs))
        for proc, (_, err) in zip(procs, results, strict=True):
            assert proc.returncode == 0, err.decode()
        assert (await store.memory.list_messages(thread_id="thread-shared", per_page=1)).total == 600


async def test_two_processes_can_init_one_file_at_once(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'init.db'}"
    script = (
        "import asyncio, sys\nfrom mastra_storage.libsql import LibSQLStore\n"
        "async def main():\n    async with LibSQLStore(id='p', url=sys.argv[1]):\n        pass\nasyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    tables = {r[0] for r in _raw(tmp_path / "init.db", "SELECT name FROM sqlite_master")}
    assert {"mastra_threads", "mastra_messages", "mastra_ai_spans", "mastra_agents"} <= tables


async def test_domain_stores_of_one_file_share_one_connection(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'shared-conn.db'}"
    memory, workflows = MemoryLibSQL(url=url), WorkflowsLibSQL(url=url)
    await memory.init()
    await workflows.init()
    assert isinstance(memory.db, LocalConnection) and isinstance(workflows.db, LocalConnection)
    engine = memory.db.engine
    assert workflows.db.engine is engine and engine.users == 2
    await memory.close()
    await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"status": "running"})
    await workflows.close()
    assert engine.users == 0
    other = MemoryLibSQL(url=":memory:")
    await other.init()
    assert isinstance(other.db, LocalConnection) and other.db.engine is not engine
    await other.close()


_BIG_SNAPSHOT = {"status": "suspended", "context": {f"step-{k}": {"output": "x" * 1000} for k in range(20)}}  # 21 KB
_FRAME = 4096 + 24  # a log frame: a page and its header


async def _persist_many(workflows: WorkflowsStorage, runs: range, wal: Path) -> int:
    """Persists a big snapshot per run id with 16 callers; the largest size the log file reached."""
    largest = 0

    async def writer(k: int) -> None:
        nonlocal largest
        for i in runs[k::16]:
            await workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"r{i}", snapshot=_BIG_SNAPSHOT)
            largest = max(largest, wal.stat().st_size)  # noqa: ASYNC240  # sampled right after each write, on purpose

    await asyncio.gather(*(writer(k) for k in range(16)))
    return largest


async def test_checkpoints_run_beside_the_writer_and_the_log_stays_bounded(tmp_path: Path) -> None:
    """The writer does not checkpoint on commit; a thread of the engine does, while writes go on. Under
    writes that never pause, with readers on the log, the log stays within its bound (a PASSIVE
    checkpoint alone never restarts it: it grew past 280 MB for 165 MB of rows when tried; the
    thread alone let it double its bound when a sync was slow), and
    every acknowledged write is in the file after close and reopen."""
    path, n = tmp_path / "wal.db", 3500
    assert n * len(json.dumps(_BIG_SNAPSHOT)) > 2 * BOUND_FRAMES * _FRAME  # enough to pass the bound twice over
    async with LibSQLStore(id="wal", url=f"file:{path}") as store:
        workflows = store.workflows
        assert isinstance(workflows.db, LocalConnection)
        engine = workflows.db.engine

        async def reader() -> None:
            for _ in range(100):
                await workflows.list_workflow_runs(workflow_name="wf", page=0, per_page=5)

        largest, *_ = await asyncio.gather(
            _persist_many(workflows, range(n), tmp_path / "wal.db-wal"), reader(), reader()
        )
        assert await engine.write(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchall()) == [(0,)]
        assert engine.checkpointer is not None and engine.checkpointer.runs > 0
    assert largest <= 1.1 * BOUND_FRAMES * _FRAME
    assert _raw(path, "PRAGMA integrity_check") == [("ok",)]
    assert _raw(path, "SELECT COUNT(*) FROM mastra_workflow_snapshot") == [(n,)]


async def test_a_reader_holding_the_log_does_not_stop_writes(tmp_path: Path) -> None:
    """A long read (another connection's open transaction) keeps the log from restarting: writes go
    on past the bound instead of waiting for it, and once the reader is done the log restarts
    (its file stops growing)."""
    path, wal, n = tmp_path / "pinned.db", tmp_path / "pinned.db-wal", 1000
    async with LibSQLStore(id="pinned", url=f"file:{path}") as store:
        await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="first", snapshot={})
        reader = apsw.Connection(str(path))
        reader.execute("BEGIN")
        assert reader.execute("SELECT COUNT(*) FROM mastra_workflow_snapshot").fetchall() == [(1,)]
        pinned = await _persist_many(store.workflows, range(n), wal)
        assert pinned > 1.25 * RESTART_FRAMES * _FRAME  # held past the bound, every write acknowledged
        reader.execute("COMMIT")
        reader.close()
        after = await _persist_many(store.workflows, range(n, 3 * n), wal)
        assert after <= pinned + 1.25 * RESTART_FRAMES * _FRAME  # restarted within one more bound's worth
        assert (await store.workflows.list_workflow_runs(workflow_name="wf", page=0, per_page=1)).total == 3 * n + 1


async def test_without_the_checkpoint_thread_the_writer_bounds_the_log(tmp_path: Path) -> None:
    """Should the checkpoint thread die, the writer checkpoints the log itself past BOUND_FRAMES."""
    path, n = tmp_path / "backstop.db", 2500
    assert n * len(json.dumps(_BIG_SNAPSHOT)) > 1.5 * BOUND_FRAMES * _FRAME
    async with LibSQLStore(id="backstop", url=f"file:{path}") as store:
        workflows = store.workflows
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="first", snapshot={})
        assert isinstance(workflows.db, LocalConnection) and workflows.db.engine.checkpointer is not None
        await asyncio.to_thread(workflows.db.engine.checkpointer.stop)
        largest = await _persist_many(workflows, range(n), tmp_path / "backstop.db-wal")
    assert largest <= 1.25 * BOUND_FRAMES * _FRAME
    assert _raw(path, "SELECT COUNT(*) FROM mastra_workflow_snapshot") == [(n + 1,)]


async def test_a_snapshot_is_stored_as_the_json_its_check_encoded(tmp_path: Path) -> None:
    """The text the value contract encoded goes to the column as it is: a tuple as an array, key
    order kept, nothing encoded twice."""
    path = tmp_path / "snapshot-text.db"
    snapshot = {"status": "running", "path": ("a", "b"), "context": {"z": 1, "a": [1.5, None, "é"]}}
    async with LibSQLStore(id="s", url=f"file:{path}") as store:
        await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot=snapshot)
        loaded = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="r")
    assert loaded == {**snapshot, "path": ["a", "b"]}
    db = apsw.Connection(str(path))
    ((stored,),) = db.execute("SELECT snapshot FROM mastra_workflow_snapshot").fetchall()
    db.close()
    assert stored == '{"status":"running","path":["a","b"],"context":{"z":1,"a":[1.5,null,"é"]}}'


async def test_reads_rows_written_by_mastra(tmp_path: Path) -> None:
    """Mastra's @mastra/libsql writes JSON columns as SQLite binary JSON (``jsonb(?)``)."""
    path = tmp_path / "mastra-written.db"
    async with LibSQLStore(id="m", url=f"file:{path}") as store:
        pass
    now = iso(utc_now())
    db = apsw.Connection(str(path))
    db.execute(
        "INSERT INTO mastra_threads (id, resourceId, title, metadata, createdAt, updatedAt) "
        "VALUES (?, ?, ?, jsonb(?), ?, ?)",
        ("t-ts", "r-ts", "From TypeScript", json.dumps({"origin": "ts", "n": 1}), now, now),
    )
    db.execute(
        "INSERT INTO mastra_messages (id, thread_id, content, role, type, createdAt, resourceId) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("m-legacy", "t-ts", json.dumps("plain legacy text"), "user", "v2", now, "r-ts"),
    )
    db.execute(
        "INSERT INTO mastra_workflow_snapshot (workflow_name, run_id, snapshot, createdAt, updatedAt) "
        "VALUES (?, ?, jsonb(?), ?, ?)",
        ("wf", "run-ts", json.dumps({"status": "suspended", "context": {}}), now, now),
    )
    db.close()
    async with LibSQLStore(id="m", url=f"file:{path}") as store:
        thread = await store.memory.get_thread_by_id(thread_id="t-ts")
        assert thread is not None and thread.metadata == {"origin": "ts", "n": 1}
        assert [t.id for t in (await store.memory.list_threads(metadata={"n": 1})).threads] == ["t-ts"]
        (message,) = (await store.memory.list_messages(thread_id="t-ts")).messages
        assert message.content["parts"] == [{"type": "text", "text": "plain legacy text"}]
        # A page mixing such a row with rows this SDK wrote decodes every row of it.
        await store.memory.save_messages(messages=[sample_message(thread, text="new", created_at=utc_now())])
        listed = (await store.memory.list_messages(thread_id="t-ts")).messages
        assert [m.content["parts"][0]["text"] for m in listed] == ["plain legacy text", "new"]
        snapshot = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="run-ts")
        assert snapshot == {"status": "suspended", "context": {}}
        context = await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="run-ts", step_id="s", result={"status": "success"}, request_context={}
        )
        assert context == {"s": {"status": "success"}}


async def test_init_migrates_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _raw(
        path,
        "CREATE TABLE mastra_messages (id TEXT NOT NULL PRIMARY KEY, thread_id TEXT NOT NULL, content TEXT NOT NULL, "
        'role TEXT NOT NULL, type TEXT NOT NULL, "createdAt" TEXT NOT NULL)',
    )
    _raw(path, "CREATE TABLE mastra_scorers (id TEXT NOT NULL PRIMARY KEY, scorerId TEXT, createdAt TEXT)")
    async with LibSQLStore(id="old", url=f"file:{path}") as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await store.memory.save_messages(messages=[sample_message(thread)])
        assert (await store.memory.list_messages(thread_id=thread.id, resource_id=thread.resource_id)).total == 1
    columns = {r[1] for r in _raw(path, "PRAGMA table_info(mastra_scorers)")}
    assert {"spanId", "organizationId", "datasetItemId"} <= columns
    indexes = {r[1] for r in _raw(path, "PRAGMA index_list(mastra_messages)")}
    assert "idx_messages_thread_created_at" in indexes


async def test_list_queries_use_indexes(tmp_path: Path) -> None:
    path = tmp_path / "plans.db"
    async with LibSQLStore(id="plans", url=f"file:{path}"):
        pass
    db = apsw.Connection(str(path))
    queries = {
        "SELECT * FROM mastra_messages WHERE thread_id IN (?) ORDER BY createdAt": ("x",),
        "SELECT * FROM mastra_threads WHERE resourceId = ? ORDER BY createdAt DESC": ("x",),
        "SELECT * FROM mastra_workflow_snapshot WHERE workflow_name = ? ORDER BY createdAt DESC": ("x",),
        "SELECT * FROM mastra_scorers WHERE scorerId = ? ORDER BY createdAt DESC": ("x",),
        'SELECT * FROM mastra_ai_spans WHERE "parentSpanId" IS NULL ORDER BY "startedAt" DESC': (),
        "SELECT * FROM mastra_ai_spans WHERE traceId = ? ORDER BY startedAt": ("x",),
        "SELECT * FROM mastra_agent_versions WHERE agentId = ? ORDER BY versionNumber DESC": ("x",),
        # the tiebreaks the list queries add are in the indexes too (no sort of a page's rows)
        'SELECT * FROM mastra_messages WHERE thread_id = ? ORDER BY "createdAt" DESC, id DESC': ("x",),
        'SELECT * FROM mastra_threads WHERE "resourceId" = ? ORDER BY "updatedAt" ASC, id ASC': ("x",),
        'SELECT * FROM mastra_ai_spans WHERE "traceId" = ? ORDER BY "startedAt", "spanId"': ("x",),
    }
    for sql, args in queries.items():
        plan = " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        assert "USING" in plan and "TEMP B-TREE" not in plan, (sql, plan)


async def test_remote_batches_are_one_request(hrana: HranaStandIn) -> None:
    async with LibSQLStore(id="remote", url=hrana.url(f"db-{uuid.uuid4().hex}")) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        before = hrana.requests
        await store.memory.save_messages(messages=timed_messages(thread, 10))
        assert hrana.requests - before == 1
        before = hrana.requests
        await store.observability.batch_create_spans(spans=[sample_span() for _ in range(50)])
        assert hrana.requests - before == 1


async def test_driver_errors_are_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    async with LibSQLStore(id="b", url=f"file:{path}") as store:
        _raw(path, "DROP TABLE mastra_threads")
        with pytest.raises(BackendError) as err:
            await store.memory.get_thread_by_id(thread_id="t")
        assert err.value.id == "MASTRA_STORAGE_LIBSQL_GET_THREAD_BY_ID_FAILED"
        assert err.value.category == "THIRD_PARTY" and isinstance(err.value.__cause__, apsw.Error)


async def test_bad_configuration() -> None:
    with pytest.raises(ValidationError):
        LibSQLStore(id="x", url="postgres://nope")
    with pytest.raises(ValidationError):
        LibSQLStore(id=" ", url=":memory:")
    with pytest.raises(ValidationError):
        MemoryLibSQL()


async def test_prune_deletes_old_rows_in_batches(tmp_path: Path) -> None:
    async with LibSQLStore(id="prune", url=f"file:{tmp_path / 'prune.db'}") as store:
        storage = MastraStorage(id="c", default=store)
        thread = await store.memory.save_thread(thread=sample_thread())
        old = timed_messages(thread, 25, start=utc_now() - timedelta(days=40))
        new = timed_messages(thread, 5)
        await store.memory.save_messages(messages=old + new)
        await store.observability.batch_create_spans(
            spans=[sample_span(started_at=utc_now() - timedelta(days=10)), sample_span()]
        )
        results = await storage.prune(
            retention={"memory": {"messages": {"max_age": "30d", "batch_size": 10}}, "observability": {"spans": "7d"}}
        )
        assert [(r.domain, r.table, r.deleted, r.done) for r in results] == [
            ("memory", "messages", 25, True),
            ("observability", "spans", 1, True),
        ]
        remaining = (await store.memory.list_messages(thread_id=thread.id)).messages
        assert [m.id for m in remaining] == [m.id for m in new]
        with pytest.raises(ValidationError):
            await storage.prune(retention={"memory": {"messages": "forever"}})
        with pytest.raises(ValidationError):
            await storage.prune(retention={"memory": {"sessions": "1d"}})


async def test_env_var_disables_automatic_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MASTRA_DISABLE_STORAGE_INIT", "true")
    store = LibSQLStore(id="env", url=f"file:{tmp_path / 'env.db'}")
    with pytest.raises(BackendError):  # no tables: nothing initialized them
        await store.memory.get_thread_by_id(thread_id="t")
    await store.init()  # an explicit init still runs
    assert await store.memory.get_thread_by_id(thread_id="t") is None
    await store.close()
