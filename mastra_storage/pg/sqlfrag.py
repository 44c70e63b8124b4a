"""PostgreSQL query fragments the PG domains share (JSON filters, date ranges, timestamp bumps)."""

from __future__ import annotations

from collections.abc import Mapping

from .._sql.params import Params, bounds
from ..core.validate import Scalar
from ..types import DateRange


def json_equals(expr: str, filters: Mapping[str, Scalar], p: Params) -> list[str]:
    """Type-exact equality of the JSON scalars at ``expr -> key`` (``expr`` is jsonb): 1, True and
    "1" differ; None matches an explicit JSON null only, never a missing key."""
    clauses: list[str] = []
    for key, value in filters.items():
        k = p(key)
        if value is None:
            clauses.append(f"jsonb_typeof({expr} -> {k}) = 'null'")
        elif isinstance(value, bool):
            clauses.append(f"({expr} -> {k}) = {p('true' if value else 'false')}::jsonb")
        elif isinstance(value, int | float):
            clauses.append(
                f"(jsonb_typeof({expr} -> {k}) = 'number' AND ({expr} ->> {k})::numeric = {p(repr(value))}::numeric)"
            )
        else:
            clauses.append(f"(jsonb_typeof({expr} -> {k}) = 'string' AND ({expr} ->> {k}) = {p(value)})")
    return clauses


def date_range(column: str, rng: DateRange | None, p: Params) -> list[str]:
    """Bounds on a ``timestamp`` (UTC wall time) column."""
    return bounds(column, rng, p, lambda moment: moment.replace(tzinfo=None))


def bump(column: str, now: str, alias: str = "") -> str:
    """SET clauses moving a timestamp column (and its Z companion) to now, or 1 ms past its old
    value: strictly increasing. ``now`` is a placeholder bound to naive UTC; ``alias`` qualifies the
    old value (needed in ``ON CONFLICT DO UPDATE``)."""
    old = f'{alias}."{column}"' if alias else f'"{column}"'
    value = f"GREATEST({now}::timestamp, {old} + interval '1 millisecond')"
    return f'"{column}" = {value}, "{column}Z" = {value} AT TIME ZONE \'UTC\''
