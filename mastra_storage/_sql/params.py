"""Bound parameters in either placeholder style, so queries are built by hand and never interpolate values."""

from __future__ import annotations

from typing import Any, Literal


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


def where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
