"""Mapping between record Structs and SQLite rows of Mastra's tables.

SQLite keeps timestamps as ISO-8601 text, booleans as 0/1 and JSON as text; columns Mastra wrote as
binary JSON (``jsonb(?)``) are read through ``json(col)`` so both forms come back as text.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack

import msgspec

from .._sql.codec import CodecOptions, SqlCodec
from .._sql.schema import Table
from ..core.codec import dumps, iso

T = TypeVar("T", bound=msgspec.Struct)


def _timestamp(value: Any) -> Any:
    return iso(value) if isinstance(value, datetime) else value


def _boolean(value: Any) -> int:
    return 1 if value else 0


_ENCODERS: dict[str, Callable[[Any], Any]] = {"json": dumps, "timestamp": _timestamp, "boolean": _boolean}


def encode_value(kind: str, value: Any) -> Any:
    encoder = _ENCODERS.get(kind)
    return value if value is None or encoder is None else encoder(value)


class RowCodec(SqlCodec[T]):
    """Columns of ``table`` that back the fields of ``record`` (see ``_sql.codec.SqlCodec``);
    ``encoders`` replace the default conversion of a column on write.

    Reads select one column per row: the JSON object of the record's wire names, built by SQLite
    and decoded straight into the Struct by msgspec, both in C. JSON columns stored as text are
    spliced in as they are (``json_object`` would parse and re-render every one of them); binary
    JSON written by Mastra goes through ``json()``; the other fields come from ``json_object``.
    ``reads`` replaces a column's value in ``json_object``, ``raw`` replaces a JSON column's
    expression with one that yields JSON text, and ``computed`` adds fields that are not columns;
    all are SQL templates where ``{a}`` stands for the table alias prefix.
    """

    kinds: ClassVar[dict[str, str]] = {"jsonb": "json", "timestamp": "timestamp", "boolean": "boolean"}

    def __init__(
        self, record: type[T], table: Table, *, raw: Mapping[str, str] | None = None, **options: Unpack[CodecOptions]
    ) -> None:
        raw = raw or {}
        super().__init__(record, table, **options)
        reads, computed = self.reads, self.computed
        self.columns = ", ".join(f'"{column}"' for _, _, column, _ in self.fields)
        # params(): every attribute read at once (in C), then only the fields that need converting.
        self._values = operator.attrgetter(*(attr for attr, _, _, _ in self.fields))
        self._converted = [
            (i, self.encoders.get(column) or _ENCODERS[kind], column in self.encoders)
            for i, (_, _, column, kind) in enumerate(self.fields)
            if column in self.encoders or kind in _ENCODERS
        ]
        self._placeholders = ", ".join("?" for _ in self.fields)
        spliced, members = [], []
        self._floats: list[tuple[str, str]] = []  # (attribute, column expression) selected as raw REALs
        for attr, wire, column, kind in self.fields:
            col = f'{{a}}"{column}"'
            if column in raw:
                spliced.append((wire, raw[column]))
            elif column in reads:
                members.append((wire, reads[column]))
            elif kind == "json":
                # Text JSON goes in as it is, never parsed by SQLite; Mastra's binary JSON is rendered.
                spliced.append((wire, f"CASE WHEN typeof({col}) = 'blob' THEN json({col}) ELSE {col} END"))
            elif table.column(column).type == "float":
                # SQLite's float-to-text (json_object, printf) does not round-trip every double on the
                # versions sqld and Turso run: the column travels beside the object, as a REAL.
                self._floats.append((attr, col))
                members.append((wire, "0"))
            elif kind == "boolean":
                members.append(
                    (wire, f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN json('true') ELSE json('false') END")
                )
            else:
                members.append((wire, col))
        members += list(computed.items())
        # '{"a":<json text>,"b":...,' || substr(json_object(the rest), 2): one object, JSON text spliced in.
        head = "".join(f"'\"{wire}\":' || coalesce({expr}, 'null') || ',' || " for wire, expr in spliced)
        floats = "".join(f", {col}" for _, col in self._floats)
        self._use(
            "'{' || " + head + "substr(json_object(" + ", ".join(f"'{w}', {e}" for w, e in members) + "), 2)" + floats
        )

    def placeholders(self) -> str:
        """``?, ?, …``: one per column of ``columns``."""
        return self._placeholders

    def decode(self, row: Any) -> T:
        record = super().decode(row)
        self._set_floats(record, row)
        return record

    def decode_all(self, rows: list[Any]) -> list[T]:
        records = super().decode_all(rows)
        if self._floats:  # (rows decoded one by one have theirs already: setting again changes nothing)
            for record, row in zip(records, rows, strict=True):
                self._set_floats(record, row)
        return records

    def _set_floats(self, record: T, row: Any) -> None:
        for i, (attr, _) in enumerate(self._floats, 1):
            value = row[i]
            setattr(record, attr, float(value) if isinstance(value, int) else value)

    def params(self, record: T) -> list[Any]:
        values = list(self._values(record)) if len(self.fields) > 1 else [self._values(record)]
        for i, encode, custom in self._converted:
            value = values[i]
            if custom or value is not None:  # a custom encoder also decides what None becomes
                values[i] = encode(value)
        return values
