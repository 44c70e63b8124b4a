"""Traces and spans on libSQL, in Mastra's ``mastra_ai_spans`` table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._base import operation
from .._codec import iso, utc_now
from .._record_rules import (
    SPAN_FIXED,
    TRACE_EQUALITY_FILTERS,
    check_span_changes,
    check_span_updates,
    check_trace_query,
    new_spans,
)
from .._sql.params import Params, where
from .._sql.schema import AI_SPANS
from .._validate import (
    check_scalar_filter,
    require_id,
    require_ids,
)
from ..types import ListTracesResult, PerPage, SpanRecord, SpanUpdate, Trace, TracesFilter, TraceSpan
from .base import LibSQLDomain
from .codec import RowCodec, encode_value
from .connection import Stmt, Tx
from .sqlfrag import date_range, json_equals

SPAN = RowCodec(SpanRecord, AI_SPANS)
_UPSERT = (
    f"INSERT INTO mastra_ai_spans ({SPAN.columns}) VALUES ({SPAN.placeholders}) "
    'ON CONFLICT ("spanId", "traceId") DO UPDATE SET '
    + ", ".join(f'"{c}" = excluded."{c}"' for _, _, c, _ in SPAN.fields if c not in ("traceId", "spanId", "createdAt"))
)


# A trace's status from its root span: an error wins, then no end means still running.
_STATUS = "CASE WHEN {a}error IS NOT NULL THEN 'error' WHEN {a}\"endedAt\" IS NULL THEN 'running' ELSE 'success' END"
TRACE_SPAN = RowCodec(TraceSpan, AI_SPANS, computed={"status": _STATUS})
_UPDATABLE = {attr: (column, kind) for attr, _, column, kind in SPAN.fields if attr not in SPAN_FIXED}


def _update_stmt(trace_id: str, span_id: str, changes: dict[str, Any]) -> Stmt:
    p = Params()
    sets = [f'"{_UPDATABLE[k][0]}" = {p(encode_value(_UPDATABLE[k][1], v))}' for k, v in changes.items()]
    sets.append(f'"updatedAt" = {p(iso(utc_now()))}')
    return Stmt(
        f'UPDATE mastra_ai_spans SET {", ".join(sets)} WHERE "traceId" = {p(trace_id)} AND "spanId" = {p(span_id)}',
        p.values,
    )


class ObservabilityLibSQL(LibSQLDomain):
    """Spans on a libSQL/SQLite database; traces are listed by their root spans."""

    tables = (AI_SPANS,)
    indexes = (
        'CREATE UNIQUE INDEX IF NOT EXISTS mastra_ai_spans_spanid_traceid_idx ON mastra_ai_spans ("spanId", "traceId")',
        'CREATE INDEX IF NOT EXISTS mastra_ai_spans_roots_started_at_idx ON mastra_ai_spans ("startedAt" DESC) '
        'WHERE "parentSpanId" IS NULL',
        "CREATE INDEX IF NOT EXISTS mastra_ai_spans_trace_started_at_idx "
        'ON mastra_ai_spans ("traceId", "startedAt", "spanId")',
        'CREATE INDEX IF NOT EXISTS mastra_ai_spans_roots_ended_at_idx ON mastra_ai_spans ("endedAt") '
        'WHERE "parentSpanId" IS NULL',
    )
    domain: ClassVar[str] = "observability"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"spans": ("mastra_ai_spans", "startedAt")}

    @operation
    async def create_span(self, *, span: SpanRecord | Mapping[str, Any]) -> None:
        (record,) = new_spans([span])
        await self.db.execute(_UPSERT, SPAN.params(record))

    @operation
    async def batch_create_spans(self, *, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None:
        records = new_spans(spans)
        if records:
            await self.db.batch([Stmt(_UPSERT, [SPAN.params(r) for r in records], many=True)])

    @operation
    async def update_span(self, *, trace_id: str, span_id: str, updates: Mapping[str, Any]) -> None:
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        changes = check_span_changes(updates)
        stmt = _update_stmt(trace_id, span_id, changes)
        await self.db.execute(stmt.sql, stmt.params)

    @operation
    async def batch_update_spans(self, *, updates: Sequence[SpanUpdate | Mapping[str, Any]]) -> None:
        stmts = [_update_stmt(trace, span, changes) for trace, span, changes in check_span_updates(updates)]
        await self.db.batch(stmts)

    @operation
    async def get_span(self, *, trace_id: str, span_id: str) -> SpanRecord | None:
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? AND "spanId" = ?',
            (trace_id, span_id),
        )
        return SPAN.decode(rows[0]) if rows else None

    @operation
    async def get_root_span(self, *, trace_id: str) -> SpanRecord | None:
        require_id(trace_id, "trace_id")
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? AND "parentSpanId" IS NULL '
            'ORDER BY "startedAt" LIMIT 1',
            (trace_id,),
        )
        return SPAN.decode(rows[0]) if rows else None

    @operation
    async def get_trace(self, *, trace_id: str) -> Trace | None:
        require_id(trace_id, "trace_id")
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? ORDER BY "startedAt", "spanId"',
            (trace_id,),
        )
        return Trace(trace_id=trace_id, spans=SPAN.decode_all(rows)) if rows else None

    @operation
    async def list_traces(
        self,
        *,
        filters: TracesFilter | Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: PerPage = 10,
        order_by: str = "started_at",
        direction: str = "DESC",
    ) -> ListTracesResult:
        win, field, dir_, f = check_trace_query(filters, page, per_page, order_by, direction)
        column = SPAN.column_of[field]
        p = Params()
        clauses = ['r."parentSpanId" IS NULL']
        for name in TRACE_EQUALITY_FILTERS:
            value = getattr(f, name)
            if value is not None:
                clauses.append(f'r."{SPAN.column_of[name]}" = {p(value)}')
        clauses += date_range('r."startedAt"', f.started_at, p)
        clauses += date_range('r."endedAt"', f.ended_at, p)
        if f.status is not None:
            clauses.append(f"{_STATUS.replace('{a}', 'r.')} = {p(f.status)}")
        if f.has_child_error is not None:
            exists = (
                'EXISTS (SELECT 1 FROM mastra_ai_spans c WHERE c."traceId" = r."traceId" AND c.error IS NOT NULL '
                'AND c."parentSpanId" IS NOT NULL)'
            )
            clauses.append(exists if f.has_child_error else f"NOT {exists}")
        for col, values in (("metadata", f.metadata), ("scope", f.scope)):
            if values:
                clauses += json_equals(f"r.{col}", "", check_scalar_filter(values), p)
        for tag in f.tags or []:
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(r.tags) WHERE value = {p(tag)})")
        nulls = "NULLS FIRST" if dir_ == "DESC" else "NULLS LAST"
        order = f'r."{column}" {dir_} {nulls if column == "endedAt" else ""}, r."spanId" {dir_}'
        records, total = await self.paged(
            f"SELECT {TRACE_SPAN.select_from('r')} FROM mastra_ai_spans r{where(clauses)} ORDER BY {order}",
            f"SELECT COUNT(*) FROM mastra_ai_spans r{where(clauses)}",
            p.values,
            win,
            TRACE_SPAN.decode_all,
        )
        return ListTracesResult(
            spans=records,
            **win.page_fields(total),
        )

    @operation
    async def batch_delete_traces(self, *, trace_ids: Sequence[str]) -> None:
        ids = require_ids(trace_ids, "trace_ids")
        if not ids:
            return

        def body(tx: Tx) -> None:
            for i in range(0, len(ids), 500):
                p = Params()
                tx.execute(f'DELETE FROM mastra_ai_spans WHERE "traceId" IN ({p.many(ids[i : i + 500])})', p.values)

        await self.db.transaction(body)
