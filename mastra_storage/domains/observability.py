"""``ObservabilityStorage``: spans of agent runs, tool calls and model calls, grouped in traces.

A backend subclasses it and implements the ``_hooks`` with its own queries; arguments reach them
validated.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ..core.lifecycle import DomainStore, operation
from ..core.paging import Window
from ..core.transfer import RecordKind
from ..core.validate import check_scalar_filter, require_id, require_ids
from ..errors import ValidationError
from ..types import ListTracesResult, PerPage, SpanRecord, SpanUpdate, Trace, TracesFilter, TraceSpan
from .record_rules import TRACE_EQUALITY_FILTERS, check_span_changes, check_span_updates, check_trace_query, new_spans


@dataclass(frozen=True)
class TraceQuery:
    """A validated ``list_traces``: root spans matching ``filters`` (``metadata`` and ``scope`` as
    checked scalar maps), ordered by ``order_by`` (a SpanRecord field) then span id."""

    win: Window
    order_by: str
    direction: str
    filters: TracesFilter
    metadata: dict[str, Any]
    scope: dict[str, Any]

    def equalities(self) -> list[tuple[str, Any]]:
        """The plain column-equality filters given: (SpanRecord field name, value)."""
        return [(name, v) for name in TRACE_EQUALITY_FILTERS if (v := getattr(self.filters, name)) is not None]


class ObservabilityStorage(DomainStore):
    """Spans keyed by ``(trace_id, span_id)``; a trace is listed by its root span (no parent)."""

    domain = "observability"
    record_kinds: ClassVar[dict[str, RecordKind]] = {"spans": RecordKind(SpanRecord, ("trace_id", "span_id"))}

    async def _import(self, kind: str, records: list[Any]) -> None:
        await self._write_spans(records)

    @operation
    async def create_span(self, *, span: SpanRecord | Mapping[str, Any]) -> None:
        """Inserts or replaces one span (``created_at`` and ``updated_at`` set to now)."""
        await self._create_spans([span])

    @operation
    async def batch_create_spans(self, *, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None:
        """Inserts or replaces many spans in one write; one invalid span rejects the whole batch."""
        if isinstance(spans, str | bytes) or not isinstance(spans, Sequence):
            raise ValidationError("spans must be a sequence of spans")
        if spans:
            await self._create_spans(spans)

    async def _create_spans(self, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None:
        """Validates new spans and writes them stamped (a backend may validate in its own layout,
        same rules: ``new_spans``, ``new_spans_json``)."""
        await self._write_spans(new_spans(spans))

    @operation
    async def update_span(self, *, trace_id: str, span_id: str, updates: Mapping[str, Any]) -> None:
        """Changes the given fields of one span (SpanRecord's snake_case names; ids and
        ``created_at`` are fixed). A missing span is a no-op."""
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        await self._update_spans([(trace_id, span_id, check_span_changes(updates))])

    @operation
    async def batch_update_spans(self, *, updates: Sequence[SpanUpdate | Mapping[str, Any]]) -> None:
        """Applies many partial span updates together; one invalid update rejects them all."""
        changes = check_span_updates(updates)
        if changes:
            await self._update_spans(changes)

    @operation
    async def get_span(self, *, trace_id: str, span_id: str) -> SpanRecord | None:
        """One span, or None."""
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        return await self._get_span(trace_id, span_id)

    @operation
    async def get_root_span(self, *, trace_id: str) -> SpanRecord | None:
        """The trace's root span (the earliest started span with no parent), or None."""
        return await self._root_span(require_id(trace_id, "trace_id"))

    @operation
    async def get_trace(self, *, trace_id: str) -> Trace | None:
        """Every span of the trace by ``started_at`` then span id, or None if it has none."""
        spans = await self._trace_spans(require_id(trace_id, "trace_id"))
        return Trace(trace_id=trace_id, spans=spans) if spans else None

    @operation
    async def list_traces(
        self,
        *,
        filters: TracesFilter | Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: PerPage = 10,
        order_by: Literal["started_at", "ended_at"] = "started_at",
        direction: Literal["ASC", "DESC"] = "DESC",
    ) -> ListTracesResult:
        """One page of root spans (with their status) matching ``filters``: equality on the context
        fields, ``started_at``/``ended_at`` ranges, ``status``, ``has_child_error``, ``metadata`` and
        ``scope`` key equality, ``tags`` all present. Unended spans sort first when descending."""
        win, field, dir_, f = check_trace_query(filters, page, per_page, order_by, direction)
        metadata = check_scalar_filter(f.metadata) if f.metadata else {}
        scope = check_scalar_filter(f.scope) if f.scope else {}
        spans, total = await self._trace_page(TraceQuery(win, field, dir_, f, metadata, scope))
        return ListTracesResult(spans=spans, **win.page_fields(total))

    @operation
    async def batch_delete_traces(self, *, trace_ids: Sequence[str]) -> None:
        """Deletes every span of the given traces; missing traces are skipped."""
        ids = list(dict.fromkeys(require_ids(trace_ids, "trace_ids")))
        if ids:
            await self._delete_traces(ids)

    # ------------------------------------------------------------ what a backend writes

    @abc.abstractmethod
    async def _write_spans(self, spans: list[SpanRecord]) -> None:
        """Upserts validated spans on ``(trace_id, span_id)``, all or nothing."""

    @abc.abstractmethod
    async def _update_spans(self, changes: list[tuple[str, str, dict[str, Any]]]) -> None:
        """Applies ``(trace_id, span_id, changes)`` together and moves ``updated_at`` on."""

    @abc.abstractmethod
    async def _get_span(self, trace_id: str, span_id: str) -> SpanRecord | None: ...
    @abc.abstractmethod
    async def _root_span(self, trace_id: str) -> SpanRecord | None: ...
    @abc.abstractmethod
    async def _trace_spans(self, trace_id: str) -> list[SpanRecord]: ...
    @abc.abstractmethod
    async def _trace_page(self, q: TraceQuery) -> tuple[list[TraceSpan], int]: ...
    @abc.abstractmethod
    async def _delete_traces(self, trace_ids: list[str]) -> None: ...
