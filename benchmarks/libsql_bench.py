"""The common workload on the embedded libSQL backend, next to raw SQLite doing the same work.

The floor runs the same SQL on the same engine (sqlean's SQLite on a dedicated thread, WAL, the
same pragmas), encodes parameters and decodes JSON columns itself, and skips what the SDK adds:
validation, records, locking, retries. ``ratio`` = floor ops/s / our ops/s (target <= 1.5).

    python -m benchmarks.libsql_bench [--quick] [--markdown FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import sqlean

from mastra_storage._codec import dumps, iso, loads, utc_now
from mastra_storage.libsql import LibSQLStore
from mastra_storage.libsql.memory import MESSAGE, THREAD
from mastra_storage.libsql.observability import SPAN
from mastra_storage.libsql.scores import SCORE
from mastra_storage.types import Message, ScorePayload, SpanRecord, StorageThread

from .harness import Result, ops_per_second, table

TARGET = 1.5


class RawSQLite:
    """The floor: one sqlean connection on its own thread, driven with plain SQL."""

    def __init__(self, path: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1)
        self.path = path
        self.db: Any = None

    async def open(self) -> None:
        def connect() -> None:
            self.db = sqlean.connect(self.path, isolation_level=None)
            for pragma in ("journal_mode = WAL", "busy_timeout = 5000", "synchronous = NORMAL", "temp_store = MEMORY"):
                self.db.execute(f"PRAGMA {pragma}")

        await self.run(connect)

    async def run(self, fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def transaction(self, statements: list[tuple[str, Any, bool]]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        for sql, params, many in statements:
            (self.db.executemany if many else self.db.execute)(sql, params)
        self.db.execute("COMMIT")

    async def close(self) -> None:
        await self.run(self.db.close)
        self._executor.shutdown()


def _message_row(m: dict[str, Any]) -> tuple[Any, ...]:
    return (m["id"], m["role"], dumps(m["content"]), iso(m["created_at"]), m["thread_id"], m["resource_id"], "v2")


async def run(quick: bool) -> list[Result]:
    n = 200 if quick else 1000
    workdir = Path(tempfile.mkdtemp(prefix="mastra-bench-"))
    store = LibSQLStore(id="bench", url=f"file:{workdir / 'ours.db'}")
    await store.init()
    raw_store = LibSQLStore(id="schema", url=f"file:{workdir / 'raw.db'}")  # same schema and indexes for the floor
    await raw_store.init()
    await raw_store.close()
    raw = RawSQLite(str(workdir / "raw.db"))
    await raw.open()
    memory, workflows, scores, observability = store.memory, store.workflows, store.scores, store.observability
    results: list[Result] = []
    base = utc_now()

    # --- threads
    async def ours_thread(i: int) -> None:
        await memory.save_thread(thread=StorageThread(id=f"t{i}", resource_id="r", title="t", metadata={"i": i}))

    thread_sql = (
        f"INSERT INTO mastra_threads ({THREAD.columns}) VALUES ({THREAD.placeholders}) ON CONFLICT (id) DO UPDATE SET "
        'title = excluded.title, metadata = excluded.metadata, "updatedAt" = excluded."updatedAt"'
    )

    async def raw_thread(i: int) -> None:
        now = iso(utc_now())
        row = (f"t{i}", "r", "t", dumps({"i": i}), now, now)
        await raw.run(lambda: raw.db.execute(thread_sql, row))

    results.append(Result("save thread", await ops_per_second(ours_thread, n), await ops_per_second(raw_thread, n)))

    # --- messages, 10 at a time, into one thread
    def batch(i: int) -> list[dict[str, Any]]:
        return [
            {
                "id": f"m{i}-{k}",
                "role": "user",
                "thread_id": "t0",
                "resource_id": "r",
                "content": {"format": 2, "parts": [{"type": "text", "text": f"message {i}-{k} " * 8}]},
                "created_at": base + timedelta(milliseconds=i * 10 + k),
            }
            for k in range(10)
        ]

    batches = [batch(i) for i in range(3 * n)]
    structs = [[Message(**m) for m in b] for b in batches]
    upsert = (
        f"INSERT INTO mastra_messages ({MESSAGE.columns}) VALUES ({MESSAGE.placeholders}) ON CONFLICT (id) DO UPDATE "
        "SET thread_id = excluded.thread_id, content = excluded.content, role = excluded.role, type = excluded.type, "
        '"resourceId" = excluded."resourceId"'
    )
    bump = 'UPDATE mastra_threads SET "updatedAt" = ? WHERE id IN (?)'

    async def ours_messages(i: int) -> None:
        await memory.save_messages(messages=structs[i])

    async def raw_messages(i: int) -> None:
        rows = [_message_row(m) for m in batches[i]]
        await raw.run(lambda: raw.transaction([(upsert, rows, True), (bump, (iso(utc_now()), "t0"), False)]))

    results.append(
        Result("save 10 messages", await ops_per_second(ours_messages, n), await ops_per_second(raw_messages, n))
    )

    # --- list the last 20 messages
    page_sql = (
        'SELECT id, role, content, "createdAt", thread_id, "resourceId", type FROM mastra_messages '
        'WHERE thread_id IN (?) ORDER BY "createdAt" DESC, id DESC LIMIT 20 OFFSET 0'
    )
    count_sql = "SELECT COUNT(*) FROM mastra_messages WHERE thread_id IN (?)"

    def page_and_count(thread_id: str) -> list[Any]:
        rows: list[Any] = raw.db.execute(page_sql, (thread_id,)).fetchall()
        raw.db.execute(count_sql, (thread_id,)).fetchall()
        return rows

    def decode_messages(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        return [
            {"id": r[0], "role": r[1], "content": loads(r[2]), "createdAt": r[3], "threadId": r[4], "resourceId": r[5]}
            for r in rows
        ]

    async def ours_last20(i: int) -> None:
        await memory.list_messages(thread_id="t0", per_page=20, direction="DESC")

    async def raw_last20(i: int) -> None:
        decode_messages(await raw.run(lambda: page_and_count("t0")))

    results.append(
        Result("list last 20 messages", await ops_per_second(ours_last20, n), await ops_per_second(raw_last20, n))
    )

    # --- the last 20 plus an include window around an older message
    window_sql = (
        'SELECT * FROM (SELECT id, role, content, "createdAt", thread_id, "resourceId", type '
        "FROM mastra_messages WHERE thread_id = "
        '(SELECT thread_id FROM mastra_messages WHERE id = ?) AND "createdAt" <= '
        '(SELECT "createdAt" FROM mastra_messages WHERE id = ?) ORDER BY "createdAt" DESC, id DESC LIMIT 3) '
        'UNION ALL SELECT * FROM (SELECT id, role, content, "createdAt", thread_id, "resourceId", type '
        "FROM mastra_messages WHERE thread_id = "
        '(SELECT thread_id FROM mastra_messages WHERE id = ?) AND "createdAt" > '
        '(SELECT "createdAt" FROM mastra_messages WHERE id = ?) ORDER BY "createdAt" ASC, id ASC LIMIT 2)'
    )

    async def ours_include(i: int) -> None:
        target = f"m{i % 100}-5"
        await memory.list_messages(
            thread_id="t0",
            per_page=20,
            direction="DESC",
            include=[{"id": target, "with_previous_messages": 2, "with_next_messages": 2}],
        )

    async def raw_include(i: int) -> None:
        target = f"m{i % 100}-5"

        def work() -> list[Any]:
            window: list[Any] = raw.db.execute(window_sql, (target, target, target, target)).fetchall()
            return window + page_and_count("t0")

        decode_messages(await raw.run(work))

    results.append(
        Result("list with include context", await ops_per_second(ours_include, n), await ops_per_second(raw_include, n))
    )

    # --- workflow snapshots
    snapshot = {
        "status": "suspended",
        "context": {f"step-{k}": {"status": "success", "output": {"value": k, "text": "x" * 200}} for k in range(20)},
        "suspendedPaths": {"step-19": [19]},
        "activePaths": [],
    }
    snap_sql = (
        'INSERT INTO mastra_workflow_snapshot (workflow_name, run_id, snapshot, "createdAt", "updatedAt", '
        '"resourceId") VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_name, run_id) DO UPDATE SET '
        'snapshot = excluded.snapshot, "updatedAt" = excluded."updatedAt", '
        '"resourceId" = COALESCE(excluded."resourceId", "resourceId")'
    )

    async def ours_persist(i: int) -> None:
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"run-{i % 100}", snapshot=snapshot)

    async def raw_persist(i: int) -> None:
        now = iso(utc_now())
        row = ("wf", f"run-{i % 100}", dumps(snapshot), now, now, None)
        await raw.run(lambda: raw.db.execute(snap_sql, row))

    results.append(
        Result("persist snapshot", await ops_per_second(ours_persist, n), await ops_per_second(raw_persist, n))
    )
    load_sql = "SELECT json(snapshot) FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?"

    async def ours_load(i: int) -> None:
        await workflows.load_workflow_snapshot(workflow_name="wf", run_id=f"run-{i % 100}")

    async def raw_load(i: int) -> None:
        rows = await raw.run(lambda: raw.db.execute(load_sql, ("wf", f"run-{i % 100}")).fetchall())
        loads(rows[0][0])

    results.append(Result("load snapshot", await ops_per_second(ours_load, n), await ops_per_second(raw_load, n)))

    # --- scores
    payload = ScorePayload(
        scorer_id="relevancy",
        entity_id="agent",
        entity_type="AGENT",
        run_id="run",
        score=0.9,
        scorer={"id": "relevancy"},
        entity={"id": "agent"},
        source="LIVE",
        input={"q": "hi"},
        output={"a": "hello"},
    )
    score_fields = msgspec.structs.asdict(payload)
    score_sql = f"INSERT OR REPLACE INTO mastra_scorers ({SCORE.columns}) VALUES ({SCORE.placeholders})"
    json_kinds = {attr for attr, _, _, kind in SCORE.fields if kind == "json"}

    async def ours_score(i: int) -> None:
        await scores.save_score(score=payload)

    async def raw_score(i: int) -> None:
        now = iso(utc_now())
        values = {**score_fields, "id": str(uuid.uuid4()), "created_at": now, "updated_at": now}
        row = tuple(
            dumps(values[a]) if a in json_kinds and values[a] is not None else values[a] for a, *_ in SCORE.fields
        )
        await raw.run(lambda: raw.db.execute(score_sql, row))

    results.append(Result("save score", await ops_per_second(ours_score, n), await ops_per_second(raw_score, n)))
    score_columns = ", ".join(f'json("{c}")' if kind == "json" else f'"{c}"' for _, _, c, kind in SCORE.fields)
    list_scores_sql = (
        f'SELECT {score_columns} FROM mastra_scorers WHERE "scorerId" = ? '
        'ORDER BY "createdAt" DESC, rowid DESC LIMIT 20 OFFSET 0'
    )
    count_scores_sql = 'SELECT COUNT(*) FROM mastra_scorers WHERE "scorerId" = ?'

    def scores_page() -> list[Any]:
        rows: list[Any] = raw.db.execute(list_scores_sql, ("relevancy",)).fetchall()
        raw.db.execute(count_scores_sql, ("relevancy",)).fetchall()
        return rows

    json_positions = [k for k, (_, _, _, kind) in enumerate(SCORE.fields) if kind == "json"]

    async def ours_list_scores(i: int) -> None:
        await scores.list_scores_by_scorer_id(scorer_id="relevancy", per_page=20)

    async def raw_list_scores(i: int) -> None:
        rows = await raw.run(scores_page)
        [[loads(r[k]) if r[k] is not None else None for k in json_positions] for r in rows]

    results.append(
        Result("list scores (20)", await ops_per_second(ours_list_scores, n), await ops_per_second(raw_list_scores, n))
    )

    # --- spans: batches of 50, then whole traces
    def spans(i: int) -> list[SpanRecord]:
        start = base + timedelta(seconds=i)
        return [
            SpanRecord(
                trace_id=f"trace-{i}",
                span_id=f"s{k}",
                parent_span_id=None if k == 0 else "s0",
                name=f"span {k}",
                span_type="tool_call",
                started_at=start + timedelta(milliseconds=k),
                ended_at=start + timedelta(seconds=1),
                attributes={"k": k},
                input={"args": [k]},
                output={"ok": True},
                metadata={"tenant": "t"},
            )
            for k in range(50)
        ]

    span_batches = [spans(i) for i in range(3 * (n // 10))]
    span_sql = (
        f"INSERT INTO mastra_ai_spans ({SPAN.columns}) VALUES ({SPAN.placeholders}) "
        'ON CONFLICT ("spanId", "traceId") DO UPDATE SET name = excluded.name'
    )
    span_json = {attr for attr, _, _, kind in SPAN.fields if kind == "json"}
    span_ts = {attr for attr, _, _, kind in SPAN.fields if kind == "timestamp"}

    def span_row(s: SpanRecord, now: str) -> tuple[Any, ...]:
        out: list[Any] = []
        for attr, *_ in SPAN.fields:
            v = getattr(s, attr)
            if attr in ("created_at", "updated_at"):
                v = now
            elif v is not None and attr in span_json:
                v = dumps(v)
            elif v is not None and attr in span_ts:
                v = iso(v)
            elif attr == "is_event":
                v = int(v)
            out.append(v)
        return tuple(out)

    async def ours_spans(i: int) -> None:
        await observability.batch_create_spans(spans=span_batches[i])

    async def raw_spans(i: int) -> None:
        now = iso(utc_now())
        rows = [span_row(s, now) for s in span_batches[i]]
        await raw.run(lambda: raw.transaction([(span_sql, rows, True)]))

    m = n // 10
    results.append(
        Result("batch-create 50 spans", await ops_per_second(ours_spans, m), await ops_per_second(raw_spans, m))
    )
    span_columns = ", ".join(f'json("{c}")' if kind == "json" else f'"{c}"' for _, _, c, kind in SPAN.fields)
    trace_sql = f'SELECT {span_columns} FROM mastra_ai_spans WHERE "traceId" = ? ORDER BY "startedAt", "spanId"'
    span_json_positions = [k for k, (_, _, _, kind) in enumerate(SPAN.fields) if kind == "json"]

    async def ours_trace(i: int) -> None:
        await observability.get_trace(trace_id=f"trace-{i % m}")

    async def raw_trace(i: int) -> None:
        rows = await raw.run(lambda: raw.db.execute(trace_sql, (f"trace-{i % m}",)).fetchall())
        [[loads(r[k]) if r[k] is not None else None for k in span_json_positions] for r in rows]

    results.append(
        Result("get trace (50 spans)", await ops_per_second(ours_trace, m), await ops_per_second(raw_trace, m))
    )

    await store.close()
    await raw.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="libSQL workload vs raw SQLite")
    parser.add_argument("--quick", action="store_true", help="fewer operations (a smoke run)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    results = asyncio.run(run(args.quick))
    text = table(f"libSQL (local file, WAL) vs raw SQLite — target <= {TARGET}x", results, TARGET)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")


if __name__ == "__main__":
    main()
