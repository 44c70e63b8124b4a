"""Traces and spans on DynamoDB: a trace is a partition, its root span is listed through two GSIs."""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from ..core.codec import utc_now
from ..domains.observability import ObservabilityStorage, TraceQuery
from ..domains.record_rules import (
    TRACE_EQUALITY_FILTERS,
)
from ..types import DateRange, SpanRecord, TraceSpan
from .base import DynamoDomain, Kept, Partition, optimistic
from .connection import Item, gather_all
from .counters import Write
from .items import Expr, esc, keys_of, millis, n, s, scalar_map, time_bounds, when

_NO_END = "~"  # sorts after every timestamp: running traces come first newest-first, last oldest-first
# list_traces' equality filters, stored on root span items as ``f_<camelName>``.
_FILTER_ATTR = {
    f.name: f"f_{f.encode_name}" for f in msgspec.structs.fields(SpanRecord) if f.name in TRACE_EQUALITY_FILTERS
}


def span_key(trace_id: str, span_id: str) -> tuple[str, str]:
    return f"TRACE#{esc(trace_id)}", f"SPAN#{esc(span_id)}"


def status_of(span: SpanRecord) -> str:
    """A trace's status from its root span: an error wins, then no end means still running."""
    if span.error is not None:
        return "error"
    return "running" if span.ended_at is None else "success"


class ObservabilityDynamoDB(DynamoDomain, ObservabilityStorage):
    """Spans on DynamoDB. ``get_trace`` is one Query of the trace's partition; ``list_traces`` a
    Query of the root spans ordered by start or end time, filtered server-side."""

    entities: ClassVar[tuple[str, ...]] = ("span",)
    retention_entities: ClassVar[dict[str, str]] = {"spans": "span"}
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {"spans": ("span", None)}

    async def _items(self, span: SpanRecord) -> list[Item]:
        pk, sk = span_key(span.trace_id, span.span_id)
        items = await self.items(pk, sk, "span", span, span.created_at or utc_now())
        main = items[0]
        main["sa"] = n(millis(span.started_at))
        if span.ended_at is not None:
            main["ea"] = n(millis(span.ended_at))
        if span.error is not None:
            main["err"] = {"BOOL": True}
        if span.parent_span_id is not None:
            main["par"] = s(span.parent_span_id)
            return items
        # Root spans carry what list_traces filters and sorts on.
        tail = f"{esc(span.trace_id)}#{esc(span.span_id)}"
        ended = when(span.ended_at) if span.ended_at is not None else _NO_END
        main.update(
            gsi1pk=s("ROOTS"),
            gsi1sk=s(f"{when(span.started_at)}#{tail}"),
            gsi2pk=s("ROOTS"),
            gsi2sk=s(f"{ended}#{tail}"),
            st=s(status_of(span)),
            meta=scalar_map(span.metadata),
            scope=scalar_map(span.scope),
        )
        if span.tags:
            main["tags"] = {"L": [s(t) for t in span.tags]}
        for name, attr in _FILTER_ATTR.items():
            value = getattr(span, name)
            if value is not None:
                main[attr] = s(value)
        return items

    async def _write(self, spans: list[SpanRecord]) -> None:
        latest = list({(sp.trace_id, sp.span_id): sp for sp in spans}.values())  # one item per key: the last wins
        records = [await self._items(sp) for sp in latest]
        # Root spans are counted (list_traces' total): they go in transactions with their counter.
        # Child spans are telemetry no list counts: BatchWriteItem, no transaction.
        roots = [Write("put", r) for r in records if self.counting.groups(r[0])]
        children = [r for r in records if not self.counting.groups(r[0])]
        await gather_all(
            self.counting.commit(roots),
            self.conn.batch_write(puts=[r[0] for r in children if len(r) == 1]),
        )
        for split in (r for r in children if len(r) > 1):  # a record and its parts land together or not at all
            await self.write(split)

    async def _write_spans(self, spans: list[SpanRecord]) -> None:
        await self._write(spans)

    async def _apply(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Reads the spans, applies the changes, writes them back if none changed meanwhile."""
        keys = [span_key(t, sp) for t, sp, _ in changes]
        items = {
            (i["pk"]["S"], i["sk"]["S"]): i
            for i in await self.conn.batch_get([{"pk": s(pk), "sk": s(sk)} for pk, sk in keys])
        }
        found = dict(zip(items, await self.decode(list(items.values()), SpanRecord), strict=True))
        now = utc_now()
        for key, (_, _, change) in zip(keys, changes, strict=True):
            if key in found:
                found[key] = msgspec.structs.replace(found[key], **change, updated_at=now)
        writes = [Write("put", await self._items(span), items[key]) for key, span in found.items()]
        await self.counting.commit(writes, learn=False)

    async def _update_spans(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        await optimistic(lambda: self._apply(changes))

    async def _get_span(self, trace_id: str, span_id: str) -> SpanRecord | None:
        found = await self.read(*span_key(trace_id, span_id), "span", SpanRecord)
        return found[0] if found else None

    async def _trace(self, trace_id: str, roots_only: bool = False) -> list[SpanRecord]:
        e = self.expr("span")
        if roots_only:
            e.where(f"attribute_not_exists({e.name('par')})")
        items = await self.conn.query(**Partition(None, span_key(trace_id, "")[0]).request(e))
        spans = await self.decode([i for i in items if i["e"]["S"] == "span"], SpanRecord)  # not part items
        spans.sort(key=lambda sp: (sp.started_at, sp.span_id))
        return spans

    async def _root_span(self, trace_id: str) -> SpanRecord | None:
        roots = await self._trace(trace_id, roots_only=True)
        return roots[0] if roots else None

    async def _trace_spans(self, trace_id: str) -> list[SpanRecord]:
        return await self._trace(trace_id)

    async def _trace_page(self, q: TraceQuery) -> tuple[list[TraceSpan], int]:
        f, win, metadata, scope = q.filters, q.win, q.metadata, q.scope
        field, dir_ = q.order_by, q.direction
        by_start = field == "started_at"
        key_range = f.started_at if by_start else f.ended_at
        lo, hi = _bounds(key_range)
        part = Partition("gsi1" if by_start else "gsi2", "ROOTS", lo, hi)

        def expr() -> Expr:
            e = self.expr("span")
            for name, attr in _FILTER_ATTR.items():
                value = getattr(f, name)
                if value is not None:
                    e.equals(attr, value)
            if f.status is not None:
                e.equals("st", f.status)
            _range_filter(e, "sa", f.started_at if not by_start else None)
            _range_filter(e, "ea", f.ended_at if by_start else None)
            if not by_start and f.ended_at is not None:
                e.where(f"attribute_exists({e.name('ea')})")
            e.map_equals("meta", metadata)
            e.map_equals("scope", scope)
            for tag in f.tags or []:
                e.where(f"contains({e.name('tags')}, {e.value(s(tag))})")
            return e

        forward = dir_ == "ASC"
        if f.has_child_error is None:
            found = await self.page([part], expr, win, forward=forward)
            items, total = found.items, found.total or 0
        else:
            # Whether a trace has a failed child span lives in its partition: test every candidate.
            candidates = await self.conn.query(**part.request(expr(), ScanIndexForward=forward))
            flags = await gather_all(*(self._child_error(i["pk"]["S"]) for i in candidates))
            matching = [i for i, flag in zip(candidates, flags, strict=True) if flag == f.has_child_error]
            total = len(matching)
            items = matching[win.offset : None if win.limit is None else win.offset + win.limit]
        return await self.decode(items, TraceSpan, _status_kept), total

    async def _child_error(self, trace_pk: str) -> bool:
        e = self.expr("span")
        e.where(f"attribute_exists({e.name('err')}) AND attribute_exists({e.name('par')})")
        return bool(await self.conn.query(limit=1, **Partition(None, trace_pk).request(e)))

    async def _delete_traces(self, ids: list[str]) -> None:
        async def keys(trace_id: str) -> list[Item]:
            part = Partition(None, span_key(trace_id, "")[0])
            return await self.conn.query(**part.request(Expr(), ProjectionExpression="pk, sk, v, n, gsi1pk"))

        found = [i for items in await gather_all(*(keys(t) for t in ids)) for i in items]
        # Child spans and parts first (no counter), then the root spans with their counter.
        await self.conn.batch_write(deletes=keys_of(i for i in found if not self.counting.groups(i)))
        await self.counting.commit([Write("delete", [i], i) for i in found if self.counting.groups(i)])


def _status_kept(span: TraceSpan, item: Item) -> None:
    span.status = item["st"]["S"]  # written by status_of


def _bounds(rng: DateRange | None) -> tuple[str | None, str | None]:
    if rng is None:
        return None, None
    return time_bounds(rng.start, rng.end, rng.start_exclusive, rng.end_exclusive)


def _range_filter(e: Expr, attr: str, rng: DateRange | None) -> None:
    if rng is None:
        return
    if rng.start is not None:
        e.where(f"{e.name(attr)} {'>' if rng.start_exclusive else '>='} {e.value(n(millis(rng.start)))}")
    if rng.end is not None:
        e.where(f"{e.name(attr)} {'<' if rng.end_exclusive else '<='} {e.value(n(millis(rng.end)))}")
