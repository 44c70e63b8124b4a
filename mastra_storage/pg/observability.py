"""Traces and spans on PostgreSQL, in Mastra's ``mastra_ai_spans`` table."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import AI_SPANS
from .._sql.traces import SPAN_STATUS, root_span_filters
from ..core.coalesce import Coalescer, WriteGroups
from ..core.codec import dumps, join_json_arrays, utc_now
from ..domains.observability import ObservabilityStorage, TraceQuery
from ..domains.record_rules import new_spans_json
from ..types import SpanRecord, TraceSpan
from .base import PGDomain
from .codec import PGRowCodec
from .sqlfrag import date_range, json_equals

SPAN = PGRowCodec(SpanRecord, AI_SPANS)
# A trace's status from its root span: an error wins, then no end means still running.
TRACE_SPAN = PGRowCodec(TraceSpan, AI_SPANS, computed={"status": SPAN_STATUS})
_KEYS = ("traceId", "spanId", "createdAt", "createdAtZ")
_SPAN_KEY = ("traceId", "spanId")
_UPSERT_SET = ", ".join(
    f'"{c}" = EXCLUDED."{c}"' for c in (col.strip('"') for col in SPAN.columns.split(", ")) if c not in _KEYS
)


class ObservabilityPG(PGDomain, ObservabilityStorage):
    """Spans on PostgreSQL; traces are listed by their root spans."""

    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"spans": ("mastra_ai_spans", "startedAt")}

    codecs = (SPAN,)

    @functools.cached_property
    def _upserts(self) -> tuple[str, str]:
        """Upserts of a JSON array of spans: as given (import) and stamped now (``$2``: creates)."""
        table, conflict = self.t("mastra_ai_spans"), f'ON CONFLICT ("traceId", "spanId") DO UPDATE SET {_UPSERT_SET}'
        given = SPAN.recordset(latest_by=_SPAN_KEY)
        stamped = SPAN.recordset(latest_by=_SPAN_KEY, stamps=("createdAt", "updatedAt"))
        return f"{SPAN.insert_sql(table, given)} {conflict}", f"{SPAN.insert_sql(table, stamped)} {conflict}"

    async def _write_spans(self, spans: list[SpanRecord]) -> None:
        await self.execute(self._upserts[0], SPAN.encode_rows(spans))

    async def _create_spans(self, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None:
        # The JSON the validation encoded goes out as it is, stamped by the statement; concurrent
        # creates go out as one statement (core/coalesce.py), each call its own key.
        _, text = new_spans_json(spans)
        await self._span_creates.write(object(), text)

    @functools.cached_property
    def _span_creates(self) -> WriteGroups[object, bytes]:
        return WriteGroups(self._create, self._create_calls)

    async def _create_calls(self, texts: Sequence[bytes]) -> None:
        await self._create(join_json_arrays(texts))

    async def _create(self, text: bytes) -> None:
        await self.execute(self._upserts[1], text.decode(), utc_now())

    def _update(self, trace_id: str, span_id: str, changes: dict[str, Any]) -> tuple[str, list[Any]]:
        p = Params("numeric")
        sets: list[str] = []
        for attr, value in changes.items():
            column = SPAN.column_of[attr]
            kind, required = SPAN.kind_of[attr]
            if kind == "timestamp":
                moment = value.replace(tzinfo=None) if value is not None else None
                sets += [f'"{column}" = {p(moment)}', f'"{column}Z" = {p(value)}']
            elif kind == "json":
                encoded = dumps(value) if value is not None or required else None
                sets.append(f'"{column}" = {p(encoded)}::jsonb')
            else:
                sets.append(f'"{column}" = {p(value)}')
        now = utc_now()
        sets += [f'"updatedAt" = {p(now.replace(tzinfo=None))}', f'"updatedAtZ" = {p(now)}']
        return (
            f"UPDATE {self.t('mastra_ai_spans')} SET {', '.join(sets)} "
            f'WHERE "traceId" = {p(trace_id)} AND "spanId" = {p(span_id)}',
            p.values,
        )

    async def _update_spans(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        statements = [self._update(trace, span, change) for trace, span, change in changes]
        if len(statements) == 1:  # one statement is atomic on its own: no BEGIN/COMMIT trips
            await self.execute(statements[0][0], *statements[0][1])
            return

        async def body(conn: Any) -> None:
            for sql, args in statements:
                await conn.execute(sql, *args)

        await self.transaction(body)

    async def _get_span(self, trace_id: str, span_id: str) -> SpanRecord | None:
        rows = await self.fetch(
            f'SELECT {SPAN.select} FROM {self.t("mastra_ai_spans")} WHERE "traceId" = $1 AND "spanId" = $2',
            trace_id,
            span_id,
        )
        return SPAN.decode(rows[0]) if rows else None

    async def _root_span(self, trace_id: str) -> SpanRecord | None:
        rows = await self.fetch(
            f'SELECT {SPAN.select} FROM {self.t("mastra_ai_spans")} WHERE "traceId" = $1 AND "parentSpanId" IS NULL '
            'ORDER BY "startedAt" LIMIT 1',
            trace_id,
        )
        return SPAN.decode(rows[0]) if rows else None

    @functools.cached_property
    def _trace_reads(self) -> Coalescer[str, list[str]]:
        return Coalescer(self._trace_rows)

    async def _trace_rows(self, ids: Sequence[str]) -> dict[str, list[str]]:
        match, key = ("= $1", ids[0]) if len(ids) == 1 else ("= ANY($1::text[])", ids)
        rows = await self.fetch(
            f'SELECT "traceId", {SPAN.select} FROM {self.t("mastra_ai_spans")} WHERE "traceId" {match} '
            'ORDER BY "startedAt", "spanId"',
            key,
        )
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(row[1])
        return found

    async def _trace_spans(self, trace_id: str) -> list[SpanRecord]:
        # Concurrent reads of traces share one statement; each caller decodes its own spans.
        rows = await self._trace_reads.get(trace_id)
        return [] if rows is None else [SPAN.decode((row,)) for row in rows]

    async def _trace_page(self, q: TraceQuery) -> tuple[list[TraceSpan], int]:
        f, dir_ = q.filters, q.direction
        column = SPAN.column_of[q.order_by]
        table = self.t("mastra_ai_spans")
        p = Params("numeric")
        clauses = root_span_filters(q, p, table, SPAN.column_of, date_range)
        for col, values in (("metadata", q.metadata), ("scope", q.scope)):
            clauses += json_equals(f"r.{col}", values, p)
        if f.tags:
            clauses.append(f"r.tags @> {p(dumps(f.tags))}::jsonb")
        nulls = "NULLS FIRST" if dir_ == "DESC" else "NULLS LAST"
        order = f'r."{column}" {dir_} {nulls if column == "endedAt" else ""}, r."spanId" {dir_}'
        select = TRACE_SPAN.select_from("r")
        rows, total = await self.paged(select, table, where(clauses), order, p.values, q.win, alias="r")
        return TRACE_SPAN.decode_all(rows), total

    async def _delete_traces(self, trace_ids: list[str]) -> None:
        await self.execute(f'DELETE FROM {self.t("mastra_ai_spans")} WHERE "traceId" = ANY($1::text[])', trace_ids)
