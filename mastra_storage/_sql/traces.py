"""The root-span filters of ``list_traces``, which libSQL and PostgreSQL write the same way (their
JSON and tag filters stay with each backend)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..domains.observability import TraceQuery
from ..types import DateRange
from .params import Params

# A span's status as Mastra derives it; ``{a}`` is the table alias prefix.
SPAN_STATUS = (
    "CASE WHEN {a}error IS NOT NULL THEN 'error' WHEN {a}\"endedAt\" IS NULL THEN 'running' ELSE 'success' END"
)

# The condition of the partial indexes that serve trace lists (a trace is listed by its root span).
ROOT_SPAN = '"parentSpanId" IS NULL'


def root_span_filters(
    q: TraceQuery,
    p: Params,
    table: str,
    column_of: Mapping[str, str],
    date_range: Callable[[str, DateRange | None, Params], list[str]],
) -> list[str]:
    """Clauses over root spans aliased ``r`` of ``table``: equality filters, time ranges, status,
    and whether another span of the trace failed."""
    f = q.filters
    clauses = ['r."parentSpanId" IS NULL']
    clauses += [f'r."{column_of[name]}" = {p(value)}' for name, value in q.equalities()]
    clauses += date_range('r."startedAt"', f.started_at, p)
    clauses += date_range('r."endedAt"', f.ended_at, p)
    if f.status is not None:
        clauses.append(f"{SPAN_STATUS.replace('{a}', 'r.')} = {p(f.status)}")
    if f.has_child_error is not None:
        exists = (
            f'EXISTS (SELECT 1 FROM {table} c WHERE c."traceId" = r."traceId" AND c.error IS NOT NULL '
            'AND c."parentSpanId" IS NOT NULL)'
        )
        clauses.append(exists if f.has_child_error else f"NOT {exists}")
    return clauses
