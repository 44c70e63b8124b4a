"""Traces and spans on libSQL, in Mastra's ``mastra_ai_spans`` table."""

from __future__ import annotations

from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import AI_SPANS
from .._sql.traces import SPAN_STATUS, root_span_filters
from ..core.codec import iso, utc_now
from ..domains.observability import ObservabilityStorage, TraceQuery
from ..domains.record_rules import (
    SPAN_FIXED,
)
from ..types import SpanRecord, TraceSpan
from .base import LibSQLDomain
from .codec import RowCodec, encode_value
from .connection import Stmt, Tx
from .sqlfrag import date_range, json_equals

SPAN = RowCodec(SpanRecord, AI_SPANS)
_UPSERT = (
    f"INSERT INTO mastra_ai_spans ({SPAN.columns}) VALUES ({SPAN.placeholders()}) "
    'ON CONFLICT ("spanId", "traceId") DO UPDATE SET '
    + ", ".join(f'"{c}" = excluded."{c}"' for _, _, c, _ in SPAN.fields if c not in ("traceId", "spanId", "createdAt"))
)


# A trace's status from its root span: an error wins, then no end means still running.
TRACE_SPAN = RowCodec(TraceSpan, AI_SPANS, computed={"status": SPAN_STATUS})
_UPDATABLE = {attr: (column, kind) for attr, _, column, kind in SPAN.fields if attr not in SPAN_FIXED}


def _update_stmt(trace_id: str, span_id: str, changes: dict[str, Any]) -> Stmt:
    p = Params()
    sets = [f'"{_UPDATABLE[k][0]}" = {p(encode_value(_UPDATABLE[k][1], v))}' for k, v in changes.items()]
    sets.append(f'"updatedAt" = {p(iso(utc_now()))}')
    return Stmt(
        f'UPDATE mastra_ai_spans SET {", ".join(sets)} WHERE "traceId" = {p(trace_id)} AND "spanId" = {p(span_id)}',
        p.values,
    )


class ObservabilityLibSQL(LibSQLDomain, ObservabilityStorage):
    """Spans on a libSQL/SQLite database; traces are listed by their root spans."""

    codecs = (SPAN,)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"spans": ("mastra_ai_spans", "startedAt")}

    async def _write_spans(self, spans: list[SpanRecord]) -> None:
        await self.db.batch([Stmt(_UPSERT, [SPAN.params(r) for r in spans], many=True)])

    async def _update_spans(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        await self.db.batch([_update_stmt(trace, span, change) for trace, span, change in changes])

    async def _get_span(self, trace_id: str, span_id: str) -> SpanRecord | None:
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? AND "spanId" = ?',
            (trace_id, span_id),
        )
        return SPAN.decode(rows[0]) if rows else None

    async def _root_span(self, trace_id: str) -> SpanRecord | None:
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? AND "parentSpanId" IS NULL '
            'ORDER BY "startedAt" LIMIT 1',
            (trace_id,),
        )
        return SPAN.decode(rows[0]) if rows else None

    async def _trace_spans(self, trace_id: str) -> list[SpanRecord]:
        rows = await self.db.query(
            f'SELECT {SPAN.select} FROM mastra_ai_spans WHERE "traceId" = ? ORDER BY "startedAt", "spanId"',
            (trace_id,),
        )
        return SPAN.decode_all(rows)

    async def _trace_page(self, q: TraceQuery) -> tuple[list[TraceSpan], int]:
        f, dir_ = q.filters, q.direction
        column = SPAN.column_of[q.order_by]
        p = Params()
        clauses = root_span_filters(q, p, "mastra_ai_spans", SPAN.column_of, date_range)
        for col, values in (("metadata", q.metadata), ("scope", q.scope)):
            clauses += json_equals(f"r.{col}", "", values, p)
        for tag in f.tags or []:
            clauses.append(f"EXISTS (SELECT 1 FROM json_each(r.tags) WHERE value = {p(tag)})")
        nulls = "NULLS FIRST" if dir_ == "DESC" else "NULLS LAST"
        order = f'r."{column}" {dir_} {nulls if column == "endedAt" else ""}, r."spanId" {dir_}'
        return await self.paged(
            f"SELECT {TRACE_SPAN.select_from('r')} FROM mastra_ai_spans r{where(clauses)} ORDER BY {order}",
            f"SELECT COUNT(*) FROM mastra_ai_spans r{where(clauses)}",
            p.values,
            q.win,
            TRACE_SPAN.decode_all,
        )

    async def _delete_traces(self, trace_ids: list[str]) -> None:
        def body(tx: Tx) -> None:
            for i in range(0, len(trace_ids), 500):
                p = Params()
                tx.execute(
                    f'DELETE FROM mastra_ai_spans WHERE "traceId" IN ({p.many(trace_ids[i : i + 500])})', p.values
                )

        await self.db.transaction(body)
