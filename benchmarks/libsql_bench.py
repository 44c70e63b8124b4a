"""The common workload on the embedded libSQL backend, next to raw SQLite doing the same work.

The floor runs the same SQL on the same engine (apsw's SQLite on a dedicated thread, WAL, the
same pragmas), encodes parameters and decodes JSON columns itself, and skips what the SDK adds:
validation, records, locking, retries. ``ratio`` = floor ops/s / our ops/s (target <= 1.5).

    python -m benchmarks.libsql_bench [--quick] [--markdown FILE]
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import apsw

from mastra_storage.core.codec import dumps, iso, loads, utc_now
from mastra_storage.libsql import LibSQLStore
from mastra_storage.libsql.observability import SPAN
from mastra_storage.libsql.scores import SCORE
from mastra_storage.types import SpanRecord

from .harness import Result, arguments, publish, table
from .workload import Data, Operations, include_target, make_data, operations, ours, run_pairs, score_fields

TARGET = 1.5
_MESSAGE_COLUMNS = 'id, role, content, "createdAt", thread_id, "resourceId", type'


class RawSQLite:
    """The floor: one apsw connection on its own thread, driven with plain SQL."""

    def __init__(self, path: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1)
        self.path = path
        self.db: Any = None

    async def open(self) -> None:
        def connect() -> None:
            self.db = apsw.Connection(self.path)
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

    def rows(self, sql: str, args: Any) -> list[Any]:
        rows: list[Any] = self.db.execute(sql, args).fetchall()
        return rows

    async def close(self) -> None:
        await self.run(self.db.close)
        self._executor.shutdown()


def floor(raw: RawSQLite, d: Data) -> Operations:
    """The same workload as plain SQLite statements."""
    thread_sql = (
        'INSERT INTO mastra_threads (id, "resourceId", title, metadata, "createdAt", "updatedAt") '
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
        'metadata = excluded.metadata, "updatedAt" = excluded."updatedAt"'
    )
    upsert = (
        f"INSERT INTO mastra_messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE "
        "SET thread_id = excluded.thread_id, content = excluded.content, role = excluded.role, type = excluded.type, "
        '"resourceId" = excluded."resourceId"'
    )
    bump = 'UPDATE mastra_threads SET "updatedAt" = ? WHERE id IN (?)'
    page_sql = (
        f"SELECT {_MESSAGE_COLUMNS} FROM mastra_messages WHERE thread_id IN (?) "
        'ORDER BY "createdAt" DESC, id DESC LIMIT 20 OFFSET 0'
    )
    count_sql = "SELECT COUNT(*) FROM mastra_messages WHERE thread_id IN (?)"
    window_sql = (
        f"SELECT * FROM (SELECT {_MESSAGE_COLUMNS} FROM mastra_messages WHERE thread_id = "
        '(SELECT thread_id FROM mastra_messages WHERE id = ?) AND "createdAt" <= '
        '(SELECT "createdAt" FROM mastra_messages WHERE id = ?) ORDER BY "createdAt" DESC, id DESC LIMIT 3) '
        f"UNION ALL SELECT * FROM (SELECT {_MESSAGE_COLUMNS} FROM mastra_messages WHERE thread_id = "
        '(SELECT thread_id FROM mastra_messages WHERE id = ?) AND "createdAt" > '
        '(SELECT "createdAt" FROM mastra_messages WHERE id = ?) ORDER BY "createdAt" ASC, id ASC LIMIT 2)'
    )
    snap_sql = (
        'INSERT INTO mastra_workflow_snapshot (workflow_name, run_id, snapshot, "createdAt", "updatedAt", '
        '"resourceId") VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (workflow_name, run_id) DO UPDATE SET '
        'snapshot = excluded.snapshot, "updatedAt" = excluded."updatedAt", '
        '"resourceId" = COALESCE(excluded."resourceId", "resourceId")'
    )
    load_sql = "SELECT json(snapshot) FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?"
    score_sql = f"INSERT OR REPLACE INTO mastra_scorers ({SCORE.columns}) VALUES ({SCORE.placeholders()})"
    json_score_fields = {attr for attr, _, _, kind in SCORE.fields if kind == "json"}
    score_columns = ", ".join(f'json("{c}")' if kind == "json" else f'"{c}"' for _, _, c, kind in SCORE.fields)
    list_scores_sql = (
        f'SELECT {score_columns} FROM mastra_scorers WHERE "scorerId" = ? ORDER BY "createdAt" DESC, rowid DESC '
        "LIMIT 20 OFFSET 0"
    )
    count_scores_sql = 'SELECT COUNT(*) FROM mastra_scorers WHERE "scorerId" = ?'
    span_sql = (
        f"INSERT INTO mastra_ai_spans ({SPAN.columns}) VALUES ({SPAN.placeholders()}) "
        'ON CONFLICT ("spanId", "traceId") DO UPDATE SET name = excluded.name'
    )
    span_kinds = {attr: kind for attr, _, _, kind in SPAN.fields}
    span_columns = ", ".join(f'json("{c}")' if kind == "json" else f'"{c}"' for _, _, c, kind in SPAN.fields)
    trace_sql = f'SELECT {span_columns} FROM mastra_ai_spans WHERE "traceId" = ? ORDER BY "startedAt", "spanId"'
    fields = score_fields(d)

    def json_columns(rows: list[Any], kinds: list[str]) -> None:
        for row in rows:
            [loads(v) if kind == "json" and v is not None else v for v, kind in zip(row, kinds, strict=False)]

    def message_rows(i: int) -> list[tuple[Any, ...]]:
        return [
            (m["id"], m["role"], dumps(m["content"]), iso(m["created_at"]), m["thread_id"], m["resource_id"], "v2")
            for m in d.batches[i]
        ]

    def page_and_count() -> list[Any]:
        rows = raw.rows(page_sql, ("t0",))
        raw.rows(count_sql, ("t0",))
        return rows

    def span_row(s: SpanRecord, now: str) -> tuple[Any, ...]:
        out: list[Any] = []
        for attr, kind in span_kinds.items():
            v = now if attr in ("created_at", "updated_at") else getattr(s, attr)
            if v is not None and kind == "json":
                v = dumps(v)
            elif v is not None and kind == "timestamp" and not isinstance(v, str):
                v = iso(v)
            elif kind == "boolean":
                v = int(v)
            out.append(v)
        return tuple(out)

    async def save_thread(i: int) -> None:
        now = iso(utc_now())
        row = (f"t{i}", "r", "t", dumps({"i": i}), now, now)
        await raw.run(lambda: raw.db.execute(thread_sql, row))

    async def save_messages(i: int) -> None:
        rows = message_rows(i)
        await raw.run(lambda: raw.transaction([(upsert, rows, True), (bump, (iso(utc_now()), "t0"), False)]))

    async def last20(i: int) -> None:
        json_columns(await raw.run(page_and_count), ["plain", "plain", "json"])

    async def with_include(i: int) -> None:
        t = include_target(i)
        json_columns(await raw.run(lambda: raw.rows(window_sql, (t, t, t, t)) + page_and_count()), ["", "", "json"])

    async def persist(i: int) -> None:
        now = iso(utc_now())
        row = ("wf", f"run-{i % 100}", dumps(d.snapshot), now, now, None)
        await raw.run(lambda: raw.db.execute(snap_sql, row))

    async def load(i: int) -> None:
        loads((await raw.run(lambda: raw.rows(load_sql, ("wf", f"run-{i % 100}"))))[0][0])

    async def save_score(i: int) -> None:
        now = iso(utc_now())
        values = {**fields, "id": str(uuid.uuid4()), "created_at": now, "updated_at": now}
        row = tuple(
            dumps(values[a]) if a in json_score_fields and values[a] is not None else values[a]
            for a, *_ in SCORE.fields
        )
        await raw.run(lambda: raw.db.execute(score_sql, row))

    async def list_scores(i: int) -> None:
        def work() -> list[Any]:
            rows = raw.rows(list_scores_sql, ("relevancy",))
            raw.rows(count_scores_sql, ("relevancy",))
            return rows

        json_columns(await raw.run(work), [kind for *_, kind in SCORE.fields])

    async def create_spans(i: int) -> None:
        now = iso(utc_now())
        rows = [span_row(s, now) for s in d.span_batches[i]]
        await raw.run(lambda: raw.transaction([(span_sql, rows, True)]))

    async def get_trace(i: int) -> None:
        rows = await raw.run(lambda: raw.rows(trace_sql, (f"trace-{i % d.spans_n}",)))
        json_columns(rows, list(span_kinds.values()))

    return operations(
        save_thread, save_messages, last20, with_include, persist, load, save_score, list_scores, create_spans,
        get_trace, d,
    )  # fmt: skip


async def run(quick: bool) -> list[Result]:
    d = make_data(200 if quick else 1000)
    workdir = Path(tempfile.mkdtemp(prefix="mastra-bench-"))
    store = LibSQLStore(id="bench", url=f"file:{workdir / 'ours.db'}")
    await store.init()
    async with LibSQLStore(id="schema", url=f"file:{workdir / 'raw.db'}"):  # the same schema and indexes
        pass
    raw = RawSQLite(str(workdir / "raw.db"))
    await raw.open()
    try:
        return await run_pairs(ours(store, d), floor(raw, d))
    finally:
        await store.close()
        await raw.close()


def main() -> None:
    args = arguments("libSQL workload vs raw SQLite")
    results = asyncio.run(run(args.quick))
    publish(table(f"libSQL (local file, WAL) vs raw SQLite - target <= {TARGET}x", results, TARGET), args.markdown)


if __name__ == "__main__":
    main()
