"""Mapping between record Structs and PostgreSQL rows of Mastra's tables.

Writes fill each ``timestamp`` column and its ``…Z`` timestamptz companion; JSON goes to ``jsonb`` as
text. Reads select one JSON object column per row, built by PostgreSQL and decoded straight into the
Struct by msgspec.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack

import msgspec

from .._sql.codec import CodecOptions, SqlCodec
from .._sql.schema import Table
from ..core.codec import dumps, to_utc_ms
from .ddl import not_null

T = TypeVar("T", bound=msgspec.Struct)
# PostgreSQL array types of unnest_insert's parameters, by column type
_ARRAY_TYPES = {
    "text": "text",
    "uuid": "uuid",
    "jsonb": "jsonb",
    "integer": "int4",
    "bigint": "int8",
    "float": "float8",
    "boolean": "bool",
}


class PGRowCodec(SqlCodec[T]):
    """Columns of ``table`` that back the fields of ``record`` (see ``libsql.codec.RowCodec``;
    ``reads``/``computed`` templates use ``{a}`` for the table alias prefix)."""

    kinds: ClassVar[dict[str, str]] = {"jsonb": "json", "timestamp": "timestamp"}

    def __init__(self, record: type[T], table: Table, **options: Unpack[CodecOptions]) -> None:
        super().__init__(record, table, **options)
        reads, computed = self.reads, self.computed
        # (attribute, column, kind, NOT NULL) of every written field
        writes = [(attr, column, kind, not_null(table.column(column))) for attr, _, column, kind in self.fields]
        self.kind_of = {attr: (kind, required) for attr, _, kind, required in writes}
        # What params() does per field, decided once: the values come out of the record in one
        # attrgetter call (C), and only the fields that need it are converted.
        self._get = operator.attrgetter(*(attr for attr, *_ in writes))
        self._plan = [
            (self.encoders.get(column), kind == "timestamp", kind == "json", required)
            for _, column, kind, required in writes
        ]
        # unnest_insert's array types, one per written column
        self.array_types: list[str] = []
        for _, column, kind, _ in writes:
            if kind == "timestamp":
                self.array_types += ["timestamp", "timestamptz"]
            elif kind == "json" and table.column(column).type != "jsonb":
                self.array_types.append("text")
            else:
                self.array_types.append(_ARRAY_TYPES[table.column(column).type])
        self.unnest = ", ".join(f"${i}::{t}[]" for i, t in enumerate(self.array_types, 1))
        insert_columns: list[str] = []
        for _, _, column, kind in self.fields:
            insert_columns.append(f'"{column}"')
            if kind == "timestamp":
                insert_columns.append(f'"{column}Z"')
        self.columns = ", ".join(insert_columns)
        self.width = len(insert_columns)
        # row_to_json over a FROM-less subselect of aliased columns: one JSON object per row, under
        # the wire names, and cheaper for PostgreSQL to build than json_build_object.
        columns_sql = []
        for _, wire, column, kind in self.fields:
            if column in reads:
                expr = reads[column]
            elif kind == "timestamp":
                expr = f'COALESCE({{a}}"{column}Z", {{a}}"{column}" AT TIME ZONE \'UTC\')'
            else:
                expr = f'{{a}}"{column}"'
            columns_sql.append(f'{expr} AS "{wire}"')
        columns_sql += [f'{expr} AS "{wire}"' for wire, expr in computed.items()]
        self._use("(SELECT row_to_json(_) FROM (SELECT " + ", ".join(columns_sql) + ") _)")

    def placeholders(self, start: int = 1) -> str:
        return ", ".join(f"${i}" for i in range(start, start + self.width))

    def params(self, record: T) -> list[Any]:
        values: list[Any] = []
        append = values.append
        for value, (encoder, timestamp, json, required) in zip(self._get(record), self._plan, strict=True):
            if encoder is not None:
                append(encoder(value))
            elif timestamp:
                moment = to_utc_ms(value) if isinstance(value, datetime) else None
                append(moment.replace(tzinfo=None) if moment else None)
                append(moment)
            elif json:
                append(dumps(value) if value is not None or required else None)
            else:
                append(value)
        return values


def unnest_insert(codec: PGRowCodec[Any], table: str, records: list[Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (...) SELECT * FROM unnest($1::text[], ...)``: any number of rows in one
    statement with one parameter per column. Append ``ON CONFLICT ...`` to upsert."""
    rows = [codec.params(r) for r in records]
    arrays = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in codec.array_types]
    return f"INSERT INTO {table} ({codec.columns}) SELECT * FROM unnest({codec.unnest})", arrays
