"""Traces and spans on ClickHouse: an insert-only ``ReplacingMergeTree(updatedAt)``.

Every write inserts a row version; reads take the latest version of each (traceId, spanId) with
``FINAL``, so nothing depends on background merges or ``OPTIMIZE``. ``list_traces`` sorts and pages
on narrow columns first, then fetches whole rows only for the page it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import msgspec

from .._sql.schema import AI_SPANS
from ..core.codec import later_than, utc_now
from ..domains.observability import ObservabilityStorage, TraceQuery
from ..types import DateRange, SpanRecord, TraceSpan
from .base import CHCodec, ClickhouseDomain
from .columns import span_columns

SPAN = CHCodec(SpanRecord, AI_SPANS, not_null=("updatedAt",))  # the version column: always set
_OFF_LOOP = 1000  # batches this large are prepared on a worker thread


_STATUS = "multiIf(`error` IS NOT NULL, 'error', `endedAt` IS NULL, 'running', 'success')"


def _range(column: str, rng: DateRange | None, name: str, params: dict[str, Any]) -> list[str]:
    clauses = []
    if rng is not None and rng.start is not None:
        params[f"{name}_start"] = rng.start
        clauses.append(f"`{column}` {'>' if rng.start_exclusive else '>='} {{{name}_start:DateTime64(3, 'UTC')}}")
    if rng is not None and rng.end is not None:
        params[f"{name}_end"] = rng.end
        clauses.append(f"`{column}` {'<' if rng.end_exclusive else '<='} {{{name}_end:DateTime64(3, 'UTC')}}")
    return clauses


def _json_equals(column: str, name: str, key: str, value: object, params: dict[str, Any]) -> str:
    """A metadata filter compared by value, as every backend does: strings exactly, numbers by value
    (``1`` matches ``1.0``), booleans only as booleans, ``None`` only where the key holds null."""
    doc, k = f"ifNull(`{column}`, '')", f"{{{name}_k:String}}"
    params[f"{name}_k"] = key
    kind = f"JSONType({doc}, {k})"
    if value is None:
        return f"(JSONHas({doc}, {k}) AND {kind} = 'Null')"
    if isinstance(value, bool):
        params[f"{name}_v"] = value
        return f"({kind} = 'Bool' AND JSONExtractBool({doc}, {k}) = {{{name}_v:Bool}})"
    if isinstance(value, int | float):
        params[f"{name}_v"] = float(value)
        params[f"{name}_i"] = int(value) if float(value).is_integer() and abs(value) < 2**63 else 0
        exact = f"({kind} IN ('Int64', 'UInt64') AND JSONExtractInt({doc}, {k}) = {{{name}_i:Int64}}"
        exact += f" AND {{{name}_v:Float64}} = {{{name}_i:Int64}})" if isinstance(value, float) else ")"
        return f"({exact} OR ({kind} = 'Double' AND JSONExtractFloat({doc}, {k}) = {{{name}_v:Float64}}))"
    params[f"{name}_v"] = value
    return f"({kind} = 'String' AND JSONExtractString({doc}, {k}) = {{{name}_v:String}})"


class ObservabilityStorageClickhouse(ClickhouseDomain, ObservabilityStorage):
    """Spans on ClickHouse (embedded chdb or a server over HTTP)."""

    ttl_key: ClassVar[str] = "spans"
    table_names: ClassVar[tuple[str, ...]] = ("mastra_ai_spans",)
    record_codecs: ClassVar[dict[str, CHCodec[Any]]] = {"spans": SPAN}
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"spans": ("mastra_ai_spans", "startedAt")}

    def ddl(self) -> list[str]:
        ttl = f" TTL toDateTime(`startedAt`) + INTERVAL {self.ttl_seconds} SECOND" if self.ttl_seconds else ""
        return [
            f"CREATE TABLE IF NOT EXISTS {self.t('mastra_ai_spans')} ({', '.join(SPAN.column_sql())}) "
            "ENGINE = ReplacingMergeTree(`updatedAt`) PARTITION BY toDate(`startedAt`) "
            f"ORDER BY (`traceId`, `spanId`){ttl}"
        ]

    async def _insert(self, spans: list[SpanRecord]) -> None:
        await self.transport.insert(self.t("mastra_ai_spans"), SPAN.column_data(spans), SPAN.columns)

    async def _write_spans(self, spans: list[SpanRecord]) -> None:
        await self._insert(spans)

    async def _create_spans(self, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None:
        # Validated column by column (the same rules as new_spans), laid out for one columnar insert.
        if len(spans) < _OFF_LOOP:
            data = span_columns(SPAN, spans)
        else:  # validating and laying out a big batch is tens of ms of CPU: keep it off the event loop
            data = await asyncio.to_thread(span_columns, SPAN, spans)
        await self.transport.insert(self.t("mastra_ai_spans"), data, SPAN.columns)

    async def _latest(self, where: str, order: str = "", **params: Any) -> list[SpanRecord]:
        names, rows = await self.query(
            f"SELECT {SPAN.select} FROM {self.t('mastra_ai_spans')} FINAL WHERE {where}{order}", **params
        )
        return [SPAN.decode(names, row) for row in rows]

    async def _apply(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Updates are new row versions: the current row with the changes, a later ``updatedAt``;
        a span that does not exist is left alone."""
        keys = [f"{trace}\x00{span}" for trace, span, _ in changes]
        current = {
            f"{s.trace_id}\x00{s.span_id}": s
            for s in await self._latest("concat(`traceId`, '\\0', `spanId`) IN {keys:Array(String)}", keys=keys)
        }
        versions = []
        for key, (_, _, change) in zip(keys, changes, strict=True):
            if key not in current:
                continue  # as an UPDATE matching no row on the other backends: nothing to change
            record = msgspec.structs.replace(current[key], **change)
            record.updated_at = later_than(record.updated_at or utc_now())
            current[key] = record
            versions.append(record)
        if versions:
            await self._insert(versions)

    async def _update_spans(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        await self._apply(changes)

    async def _get_span(self, trace_id: str, span_id: str) -> SpanRecord | None:
        spans = await self._latest("`traceId` = {t:String} AND `spanId` = {s:String}", t=trace_id, s=span_id)
        return spans[0] if spans else None

    async def _root_span(self, trace_id: str) -> SpanRecord | None:
        spans = await self._latest(
            "`traceId` = {t:String} AND `parentSpanId` IS NULL", " ORDER BY `startedAt` LIMIT 1", t=trace_id
        )
        return spans[0] if spans else None

    async def _trace_spans(self, trace_id: str) -> list[SpanRecord]:
        return await self._latest("`traceId` = {t:String}", " ORDER BY `startedAt`, `spanId`", t=trace_id)

    async def _trace_page(self, q: TraceQuery) -> tuple[list[TraceSpan], int]:
        f, win, dir_ = q.filters, q.win, q.direction
        column = SPAN.column_of[q.order_by]
        table = self.t("mastra_ai_spans")
        params: dict[str, Any] = {}
        clauses = ["`parentSpanId` IS NULL"]
        for name, value in q.equalities():
            params[name] = value
            clauses.append(f"`{SPAN.column_of[name]}` = {{{name}:String}}")
        clauses += _range("startedAt", f.started_at, "started", params)
        clauses += _range("endedAt", f.ended_at, "ended", params)
        if f.status is not None:
            params["status"] = f.status
            clauses.append(f"{_STATUS} = {{status:String}}")
        if f.has_child_error is not None:
            errored = f"SELECT `traceId` FROM {table} FINAL WHERE `error` IS NOT NULL AND `parentSpanId` IS NOT NULL"
            clauses.append(f"`traceId` {'IN' if f.has_child_error else 'NOT IN'} ({errored})")
        for col, values in (("metadata", q.metadata), ("scope", q.scope)):
            for i, (key, value) in enumerate(values.items()):
                clauses.append(_json_equals(col, f"{col}_{i}", key, value, params))
        if f.tags:
            params["tags"] = f.tags
            clauses.append("hasAll(JSONExtract(ifNull(`tags`, '[]'), 'Array(String)'), {tags:Array(String)})")
        where = " AND ".join(clauses)
        nulls = ("NULLS FIRST" if dir_ == "DESC" else "NULLS LAST") if column == "endedAt" else ""
        limit = f" LIMIT {win.limit} OFFSET {win.offset}" if win.limit is not None else ""
        _, keys = await self.query(
            f"SELECT `traceId`, `spanId` FROM {table} FINAL WHERE {where} "
            f"ORDER BY `{column}` {dir_} {nulls}, `spanId` {dir_}{limit}",
            **params,
        )
        _, count = await self.query(f"SELECT count() FROM {table} FINAL WHERE {where}", **params)
        total = int(count[0][0])
        spans: list[TraceSpan] = []
        if keys:
            wanted = [f"{t}\x00{s}" for t, s in keys]
            names, rows = await self.query(
                f"SELECT {SPAN.select}, {_STATUS} AS `status` FROM {table} FINAL "
                "WHERE concat(`traceId`, '\\0', `spanId`) IN {keys:Array(String)}",
                keys=wanted,
            )
            by_key = {}
            for row in rows:
                span = SPAN.decode(names[:-1], row[:-1])
                by_key[f"{span.trace_id}\x00{span.span_id}"] = TraceSpan(**msgspec.structs.asdict(span), status=row[-1])
            spans = [by_key[k] for k in wanted if k in by_key]
        return spans, total

    async def _delete_traces(self, trace_ids: list[str]) -> None:
        await self.transport.command(
            f"DELETE FROM {self.t('mastra_ai_spans')} WHERE `traceId` IN {{ids:Array(String)}}", {"ids": trace_ids}
        )
