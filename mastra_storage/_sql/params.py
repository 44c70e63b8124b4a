"""Bound parameters in either placeholder style, so queries are built by hand and never interpolate values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from ..types import DateRange


class Params:
    """Collects values and hands back their placeholders: ``?`` (SQLite) or ``$n`` (PostgreSQL)."""

    def __init__(self, style: Literal["qmark", "numeric"] = "qmark") -> None:
        self.style = style
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self.style == "qmark" else f"${len(self.values)}"

    def many(self, values: list[Any] | tuple[Any, ...]) -> str:
        """A comma-separated placeholder list for ``IN (...)``."""
        return ", ".join(self(v) for v in values)


def bounds(column: str, rng: DateRange | None, p: Params, encode: Callable[[datetime], Any]) -> list[str]:
    """The clauses keeping ``column`` inside ``rng`` (each end inclusive unless marked exclusive);
    ``encode`` gives a moment its column form."""
    clauses: list[str] = []
    if rng is not None and rng.start is not None:
        clauses.append(f"{column} {'>' if rng.start_exclusive else '>='} {p(encode(rng.start))}")
    if rng is not None and rng.end is not None:
        clauses.append(f"{column} {'<' if rng.end_exclusive else '<='} {p(encode(rng.end))}")
    return clauses


def where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
