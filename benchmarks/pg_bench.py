"""The common workload on PostgreSQL, next to raw asyncpg running the same SQL (the floor).

The floor uses its own asyncpg pool of the same size, hand-written statements in the same schema
shape, and decodes the JSON it reads; it skips validation, records, retries. ``ratio`` = floor
ops/s / our ops/s (target <= 1.3). Needs the PostgreSQL of ``make services``.

    python -m benchmarks.pg_bench [--quick] [--markdown FILE] [--url postgresql://...]
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from mastra_storage._sql.schema import AI_SPANS
from mastra_storage.core.codec import dumps, loads, utc_now
from mastra_storage.domains.scores import new_score
from mastra_storage.pg import PostgresStore
from mastra_storage.pg.observability import SPAN
from mastra_storage.pg.scores import _UPDATE_ALL, SCORE

from .harness import Result, arguments, paired_ops_per_second, publish, table
from .workload import Data, Operations, include_target, make_data, operations, ours, run_pairs

TARGET = 1.3
SAME_SQL_TARGET = 1.1  # issue #13: within 1.1x of raw asyncpg sending the same statements
_MESSAGE_COLUMNS = 'id, role, content, "createdAt", thread_id, "resourceId", type'


class NoResetConnection(asyncpg.Connection):  # type: ignore[misc]
    def get_reset_query(self) -> str:
        return ""


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


def floor(pool: Any, schema: str, d: Data) -> Operations:
    """The same workload as plain asyncpg statements."""
    s = f'"{schema}"'
    thread_sql = (
        f'INSERT INTO {s}.mastra_threads (id, "resourceId", title, metadata, "createdAt", "createdAtZ", '
        '"updatedAt", "updatedAtZ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO UPDATE SET '
        'title = EXCLUDED.title, metadata = EXCLUDED.metadata, "updatedAt" = EXCLUDED."updatedAt", '
        '"updatedAtZ" = EXCLUDED."updatedAtZ"'
    )
    # Batches as one JSON document through json_to_recordset, as mastra_storage sends them.
    messages_sql = (
        f'WITH saved AS (INSERT INTO {s}.mastra_messages (id, role, content, "createdAt", "createdAtZ", thread_id, '
        '"resourceId", type) SELECT x.id, x.role, x.content::text, x."createdAt" AT TIME ZONE \'UTC\', '
        'x."createdAt", x.thread_id, x."resourceId", x.type FROM json_to_recordset($1::text::json) AS x(id text, '
        'role text, content json, "createdAt" timestamptz, thread_id text, "resourceId" text, type text) '
        "ON CONFLICT (id) DO UPDATE SET "
        "thread_id = EXCLUDED.thread_id, content = EXCLUDED.content, role = EXCLUDED.role, type = EXCLUDED.type, "
        '"resourceId" = EXCLUDED."resourceId" RETURNING thread_id) '
        f'UPDATE {s}.mastra_threads SET "updatedAt" = $2, "updatedAtZ" = $3 '
        "WHERE id IN (SELECT thread_id FROM saved)"
    )
    page_sql = (
        f"SELECT {_MESSAGE_COLUMNS} FROM {s}.mastra_messages WHERE thread_id = $1 "
        'ORDER BY "createdAt" DESC, id DESC LIMIT 20 OFFSET 0'
    )
    count_sql = f"SELECT COUNT(*) FROM {s}.mastra_messages WHERE thread_id = $1"
    window_sql = (  # each window LATERAL to its target: an index walk from the target's time
        f'SELECT w.* FROM (SELECT thread_id, "createdAt" FROM {s}.mastra_messages WHERE id = $1) t '
        'CROSS JOIN LATERAL ((SELECT m.id, m.role, m.content, m."createdAt" '
        f'FROM {s}.mastra_messages m WHERE m.thread_id = t.thread_id AND m."createdAt" <= t."createdAt" '
        'ORDER BY m."createdAt" DESC, m.id DESC LIMIT 3) UNION ALL '
        f'(SELECT m.id, m.role, m.content, m."createdAt" FROM {s}.mastra_messages m '
        'WHERE m.thread_id = t.thread_id AND m."createdAt" > t."createdAt" ORDER BY m."createdAt", m.id LIMIT 2)) w'
    )
    snap_sql = (
        f'INSERT INTO {s}.mastra_workflow_snapshot (workflow_name, run_id, snapshot, "createdAt", "createdAtZ", '
        '"updatedAt", "updatedAtZ") VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workflow_name, run_id) '
        'DO UPDATE SET snapshot = EXCLUDED.snapshot, "updatedAt" = EXCLUDED."updatedAt", '
        '"updatedAtZ" = EXCLUDED."updatedAtZ"'
    )
    load_sql = f"SELECT snapshot FROM {s}.mastra_workflow_snapshot WHERE workflow_name = $1 AND run_id = $2"
    # The store's own upsert of a score, its 38 columns, with the parameters laid out once.
    score_sql = (
        f"INSERT INTO {s}.mastra_scorers ({SCORE.columns}) VALUES ({SCORE.placeholders()}) "
        f"ON CONFLICT (id) DO UPDATE SET {_UPDATE_ALL}"
    )
    assert d.score is not None
    score_params = SCORE.params(new_score(d.score))
    where = {column: k for k, (_, _, column, _) in enumerate(SCORE.fields)}  # parameter of each field
    list_scores_sql = (
        f'SELECT id, "scorerId", score, scorer, entity, input, output, "createdAtZ" FROM {s}.mastra_scorers '
        'WHERE "scorerId" = $1 ORDER BY "createdAt" DESC, ctid DESC LIMIT 20 OFFSET 0'
    )
    count_scores_sql = f'SELECT COUNT(*) FROM {s}.mastra_scorers WHERE "scorerId" = $1'
    # Spans: every column of the table (as ours writes and reads them), built from Mastra's schema.
    span_columns = [c for c in AI_SPANS.columns]
    insert_names: list[str] = []
    span_fields: list[str] = []
    values: list[str] = []
    for c in span_columns:
        insert_names.append(f'"{c.name}"')
        kind = {"jsonb": "jsonb", "boolean": "bool", "timestamp": "timestamptz"}.get(c.type, "text")
        span_fields.append(f'"{c.name}" {kind}')
        # A span's JSON leaves out fields at their defaults: isEvent's is false.
        values.append(f'COALESCE(x."{c.name}", false)' if c.type == "boolean" else f'x."{c.name}"')
        if c.type == "timestamp":
            insert_names.append(f'"{c.name}Z"')
            values[-1] += " AT TIME ZONE 'UTC'"
            values.append(f'x."{c.name}"')
    spans_sql = (
        f"INSERT INTO {s}.mastra_ai_spans ({', '.join(insert_names)}) SELECT {', '.join(values)} "
        f"FROM json_to_recordset($1::text::json) AS x({', '.join(span_fields)}) "
        'ON CONFLICT ("traceId", "spanId") DO UPDATE SET name = EXCLUDED.name'
    )
    select_names = [f'"{c.name}Z"' if c.type == "timestamp" else f'"{c.name}"' for c in span_columns]
    trace_sql = (
        f'SELECT {", ".join(select_names)} FROM {s}.mastra_ai_spans WHERE "traceId" = $1 ORDER BY "startedAt", "spanId"'
    )
    json_positions = [k for k, c in enumerate(span_columns) if c.type == "jsonb"]

    def decode_json(rows: list[Any], positions: range) -> None:
        for row in rows:
            [loads(row[k]) for k in positions if row[k] is not None]

    async def save_thread(i: int) -> None:
        now = utc_now()
        await pool.execute(thread_sql, f"t{i}", "r", "t", dumps({"i": i}), _naive(now), now, _naive(now), now)

    async def save_messages(i: int) -> None:
        now = utc_now()
        rows = [
            {"id": m["id"], "role": m["role"], "content": m["content"], "createdAt": m["created_at"],
             "thread_id": m["thread_id"], "resourceId": m["resource_id"], "type": "v2"}
            for m in d.batches[i]
        ]  # fmt: skip
        await pool.execute(messages_sql, dumps(rows), _naive(now), now)

    async def last20(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval(count_sql, "t0")
            decode_json(await conn.fetch(page_sql, "t0"), range(2, 3))

    async def with_include(i: int) -> None:
        async with pool.acquire() as conn:
            decode_json(await conn.fetch(window_sql, include_target(i)), range(2, 3))
            await conn.fetchval(count_sql, "t0")
            decode_json(await conn.fetch(page_sql, "t0"), range(2, 3))

    async def persist(i: int) -> None:
        now = utc_now()
        await pool.execute(snap_sql, "wf", f"run-{i % 100}", dumps(d.snapshot), _naive(now), now, _naive(now), now)

    async def load(i: int) -> None:
        loads(await pool.fetchval(load_sql, "wf", f"run-{i % 100}"))

    async def save_score(i: int) -> None:
        now = utc_now()
        args = list(score_params)
        args[where["id"]] = str(uuid.uuid4())
        args[where["createdAt"]] = args[where["updatedAt"]] = now
        await pool.execute(score_sql, *args)

    async def list_scores(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchval(count_scores_sql, "relevancy")
            decode_json(await conn.fetch(list_scores_sql, "relevancy"), range(3, 7))

    async def create_spans(i: int) -> None:
        now = utc_now()
        batch = [msgspec.structs.replace(x, created_at=now, updated_at=now) for x in d.span_batches[i]]
        await pool.execute(spans_sql, dumps(batch))

    async def get_trace(i: int) -> None:
        rows = await pool.fetch(trace_sql, f"trace-{i % d.spans_n}")
        for row in rows:
            [loads(row[k]) for k in json_positions if row[k] is not None]

    return operations(
        save_thread, save_messages, last20, with_include, persist, load, save_score, list_scores, create_spans,
        get_trace, d,
    )  # fmt: skip


Call = list[tuple[str, tuple[Any, ...]]]  # the statements one call sent, with their arguments


async def capture(url: str, d: Data, schema: str, rounds: int = 3) -> dict[str, list[Call]]:
    """Every statement (and its arguments) each call of our workload sends, call by call, on a fresh
    schema, for as many calls as ``run_pairs`` makes (``rounds`` runs of each operation's count):
    what ``replay`` sends through plain asyncpg."""
    log: Call = []

    def record(q: Any) -> None:
        if schema in q.query or (not q.args and q.query.split()[0].upper() in ("BEGIN", "COMMIT", "SAVEPOINT")):
            log.append((q.query, tuple(q.args)))

    async def logged(conn: Any) -> None:
        conn.add_query_logger(record)

    pool = await asyncpg.create_pool(
        url, min_size=4, max_size=4, init=logged, connection_class=NoResetConnection,
        server_settings={"timezone": "UTC"},
    )  # fmt: skip
    captured: dict[str, list[Call]] = {}
    async with PostgresStore(id="capture", pool=pool, schema_name=schema) as store:
        for name, (op, count) in ours(store, d).items():
            captured[name] = []
            for i in range(rounds * count):
                start = len(log)
                await op(i)
                captured[name].append(log[start:])
    await pool.close()
    return captured


class _Json:
    """An argument ours sent as JSON text: the replay encodes it again on every call, as any caller
    of the driver would."""

    __slots__ = ("value",)

    def __init__(self, text: str) -> None:
        self.value = loads(text)


def replay(pool: Any, captured: dict[str, list[Call]], schema: str, into: str) -> Operations:
    """Call ``i`` of each operation as the statements ours sent for it, on one connection: JSON
    arguments encoded and every JSON text read decoded (ours does the same with records)."""
    ops: Operations = {}
    for name, calls in captured.items():
        statements = [
            [(sql.replace(schema, into), [_Json(a) if isinstance(a, str) and a[:1] in "{[" else a for a in args])
             for sql, args in call]
            for call in calls
        ]  # fmt: skip

        async def op(i: int, statements: list[list[tuple[str, list[Any]]]] = statements) -> None:
            async with pool.acquire() as conn:
                for sql, args in statements[i % len(statements)]:
                    if not args:
                        await conn.execute(sql)
                        continue
                    values = [dumps(a.value) if isinstance(a, _Json) else a for a in args]
                    for row in await conn.fetch(sql, *values):
                        [loads(v) for v in row.values() if isinstance(v, str) and v[:1] in ("{", "[")]

        ops[name] = (op, len(calls))  # the count is ours' (run_pairs takes it from the first side)
    return ops


async def run(quick: bool, url: str) -> tuple[list[Result], list[Result]]:
    """Ours against hand-written statements (the engine's floor for the schema), and against the
    very statements ours sent, replayed through plain asyncpg (what the SDK adds per call)."""
    d = make_data(200 if quick else 1000)
    schemas = [f"bench_{uuid.uuid4().hex[:8]}" for _ in range(4)]
    schema_ours, schema_raw, schema_captured, schema_replay = schemas
    store = PostgresStore(id="bench", connection_string=url, schema_name=schema_ours, max_size=4)
    await store.init()
    for schema in (schema_raw, schema_replay):
        async with PostgresStore(id="schema", connection_string=url, schema_name=schema, max_size=1):
            pass  # the same tables and indexes for the floors
    # The floor's pool skips asyncpg's reset-on-release round trip too, as mastra_storage's pools do.
    pool = await asyncpg.create_pool(
        url, min_size=4, max_size=4, connection_class=NoResetConnection, server_settings={"timezone": "UTC"}
    )
    try:
        ours_ops = ours(store, d)
        results = await run_pairs(ours_ops, floor(pool, schema_raw, d))
        # The same trace read as raw asyncpg running our very statement (rows as JSON objects).
        same_sql = (
            f'SELECT {SPAN.select} FROM "{schema_raw}".mastra_ai_spans WHERE "traceId" = $1 '
            'ORDER BY "startedAt", "spanId"'
        )

        async def raw_same_sql(i: int) -> None:
            [loads(row[0]) for row in await pool.fetch(same_sql, f"trace-{i % d.spans_n}")]

        op, count = ours_ops["get trace (50 spans)"]
        results.append(Result("get trace, floor on our SQL", *await paired_ops_per_second(op, raw_same_sql, count)))
        # A fresh store of ours (the same work as the capture: inserts stay inserts) against the
        # replay, on a fresh schema, of what a third store sent call by call. Both on one pool: the
        # calls alternate on the same connection, one server process serving both sides (with a
        # pool each, 50 spans' median ratio moved 1.09-1.33x over three runs of the same code in
        # one sitting; on one pool 1.08-1.14x).
        captured = await capture(url, d, schema_captured)
        async with PostgresStore(id="again", pool=pool, schema_name=schemas[0] + "_b") as again:
            replayed = await run_pairs(ours(again, d), replay(pool, captured, schema_captured, schema_replay))
        return results, replayed
    finally:
        await store.close()
        for schema in [*schemas, schemas[0] + "_b"]:
            await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await pool.close()


def main() -> None:
    args = arguments("PostgreSQL workload vs raw asyncpg", url="postgresql://postgres@127.0.0.1:5432/test")
    floor_results, replayed = asyncio.run(run(args.quick, args.url))
    same = f"PostgreSQL 15: vs raw asyncpg sending our very statements - target <= {SAME_SQL_TARGET}x"
    publish(
        table(f"PostgreSQL 15 (asyncpg) vs raw asyncpg - target <= {TARGET}x", floor_results, TARGET)
        + "\n\n"
        + table(same, replayed, SAME_SQL_TARGET),
        args.markdown,
    )


if __name__ == "__main__":
    main()
