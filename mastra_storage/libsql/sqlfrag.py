"""SQLite query fragments the libSQL domains share (JSON filters, date ranges, timestamp bumps)."""

from __future__ import annotations

from collections.abc import Mapping

from .._sql.params import Params, bounds
from ..core.codec import iso
from ..core.validate import Scalar
from ..types import DateRange


def json_equals(column_expr: str, path_prefix: str, filters: Mapping[str, Scalar], p: Params) -> list[str]:
    """Type-exact equality of JSON scalars at ``$.<prefix><key>``: 1, True and "1" differ; None
    matches an explicit JSON null only, never a missing key. Keys were validated as identifiers
    and are bound as parameters all the same."""
    clauses: list[str] = []
    for key, value in filters.items():
        path = p(f"$.{path_prefix}{key}")
        if value is None:
            clauses.append(f"json_type({column_expr}, {path}) = 'null'")
        elif isinstance(value, bool):
            clauses.append(f"json_type({column_expr}, {path}) = '{'true' if value else 'false'}'")
        elif isinstance(value, int | float):
            clauses.append(
                f"(json_type({column_expr}, {path}) IN ('integer', 'real')"
                f" AND json_extract({column_expr}, {p(f'$.{path_prefix}{key}')}) = {p(value)})"
            )
        else:
            clauses.append(
                f"(json_type({column_expr}, {path}) = 'text'"
                f" AND json_extract({column_expr}, {p(f'$.{path_prefix}{key}')}) = {p(value)})"
            )
    return clauses


def date_range(column: str, rng: DateRange | None, p: Params) -> list[str]:
    """Bounds on an ISO-text timestamp column."""
    return bounds(column, rng, p, iso)


def bumped(column: str, now_param: str) -> str:
    """A new value for a timestamp column that is now, or 1 ms past its old value: strictly increasing."""
    return f"MAX({now_param}, strftime('%Y-%m-%dT%H:%M:%fZ', {column}, '+0.001 seconds'))"
