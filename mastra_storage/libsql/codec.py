"""Mapping between record Structs and SQLite rows of Mastra's tables.

SQLite keeps timestamps as ISO-8601 text, booleans as 0/1 and JSON as text; columns Mastra wrote as
binary JSON (``jsonb(?)``) are read through ``json(col)`` so both forms come back as text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from .._codec import decode_row, dumps, iso
from .._sql.schema import Table
from ..errors import BackendError

T = TypeVar("T", bound=msgspec.Struct)


def encode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        return dumps(value)
    if kind == "timestamp":
        return iso(value) if isinstance(value, datetime) else value
    if kind == "boolean":
        return 1 if value else 0
    return value


def _kind(type_: str) -> str:
    return {"jsonb": "json", "timestamp": "timestamp", "boolean": "boolean"}.get(type_, "plain")


class RowCodec(Generic[T]):
    """Columns of ``table`` that back the fields of ``record``, in one fixed order.

    A field's column is its camelCase wire name unless ``columns`` maps it elsewhere (Mastra's
    ``thread_id``); ``json`` names text columns that hold JSON; ``encoders`` replace the default
    conversion of a column on write.

    Reads select one column per row: ``json_object(...)`` of the record's wire names, built by
    SQLite and decoded straight into the Struct by msgspec, both in C. ``reads`` replaces a
    column's expression in it and ``computed`` adds fields that are not columns; both are SQL
    templates where ``{a}`` stands for the table alias prefix.
    """

    def __init__(
        self,
        record: type[T],
        table: Table,
        *,
        columns: Mapping[str, str] | None = None,
        json: tuple[str, ...] = (),
        encoders: Mapping[str, Callable[[Any], Any]] | None = None,
        reads: Mapping[str, str] | None = None,
        computed: Mapping[str, str] | None = None,
    ) -> None:
        self.record = record
        self.table = table
        renames = dict(columns or {})
        names = set(table.column_names)
        self.fields: list[tuple[str, str, str, str]] = []  # (attribute, wire name, column, kind)
        for info in msgspec.structs.fields(record):
            column = renames.get(info.name, info.encode_name)
            if column in names:
                kind = "json" if column in json else _kind(table.column(column).type)
                self.fields.append((info.name, info.encode_name, column, kind))
        self.column_of = {attr: column for attr, _, column, _ in self.fields}
        self.encoders = dict(encoders or {})
        self.columns = ", ".join(f'"{column}"' for _, _, column, _ in self.fields)
        self.placeholders = ", ".join("?" for _ in self.fields)
        templates = []
        for _, wire, column, kind in self.fields:
            if reads and column in reads:
                expr = reads[column]
            elif kind == "json" and table.column(column).type == "jsonb":
                expr = f'json({{a}}"{column}")'
            elif kind == "boolean":
                col = f'{{a}}"{column}"'
                expr = f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') ELSE json('false') END"
            else:
                expr = f'{{a}}"{column}"'
            templates.append(f"'{wire}', {expr}")
        templates += [f"'{wire}', {expr}" for wire, expr in (computed or {}).items()]
        self._template = "json_object(" + ", ".join(templates) + ")"
        self.select = self.select_from("")
        self._decoder = msgspec.json.Decoder(record)

    def select_from(self, alias: str) -> str:
        """The one-column select list, qualified by a table alias when given."""
        return self._template.replace("{a}", f"{alias}." if alias else "")

    def params(self, record: T) -> tuple[Any, ...]:
        return tuple(
            self.encoders[column](getattr(record, attr))
            if column in self.encoders
            else encode_value(kind, getattr(record, attr))
            for attr, _, column, kind in self.fields
        )

    def decode(self, row: tuple[Any, ...] | list[Any]) -> T:
        try:
            return decode_row(self._decoder, row[0], self.record)
        except msgspec.ValidationError as exc:
            raise BackendError(
                f"stored {self.table.name} row does not decode as {self.record.__name__}: {exc}"
            ) from exc

    def decode_all(self, rows: list[tuple[Any, ...]]) -> list[T]:
        return [self.decode(row) for row in rows]
