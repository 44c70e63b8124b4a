"""Mapping between record Structs and PostgreSQL rows of Mastra's tables.

Writes fill each ``timestamp`` column and its ``…Z`` timestamptz companion; JSON goes to ``jsonb`` as
text. Reads select one JSON object column per row, built by PostgreSQL and decoded straight into the
Struct by msgspec.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack

import msgspec

from .._sql.codec import CodecOptions, SqlCodec
from .._sql.schema import Table
from ..core.codec import dumps, to_utc_ms
from .ddl import not_null

T = TypeVar("T", bound=msgspec.Struct)


class PGRowCodec(SqlCodec[T]):
    """Columns of ``table`` that back the fields of ``record`` (see ``libsql.codec.RowCodec``;
    ``reads``/``computed`` templates use ``{a}`` for the table alias prefix)."""

    kinds: ClassVar[dict[str, str]] = {"jsonb": "json", "timestamp": "timestamp"}

    def __init__(self, record: type[T], table: Table, **options: Unpack[CodecOptions]) -> None:
        super().__init__(record, table, **options)
        reads, computed = self.reads, self.computed
        # (attribute, column, kind, NOT NULL): what params() walks for every row
        self._writes = [(attr, column, kind, not_null(table.column(column))) for attr, _, column, kind in self.fields]
        self.kind_of = {attr: (kind, required) for attr, _, kind, required in self._writes}
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
        for attr, column, kind, required in self._writes:
            value = getattr(record, attr)
            if column in self.encoders:
                values.append(self.encoders[column](value))
            elif kind == "timestamp":
                moment = to_utc_ms(value) if isinstance(value, datetime) else None
                values += [moment.replace(tzinfo=None) if moment else None, moment]
            elif kind == "json":
                values.append(dumps(value) if value is not None or required else None)
            else:
                values.append(value)
        return values


_ARRAY_TYPES = {
    "text": "text",
    "uuid": "uuid",
    "jsonb": "jsonb",
    "integer": "int4",
    "bigint": "int8",
    "float": "float8",
    "boolean": "bool",
}


def unnest_insert(codec: PGRowCodec[Any], table: str, records: list[Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (...) SELECT * FROM unnest($1::text[], ...)``: any number of rows in one
    statement with one parameter per column. Append ``ON CONFLICT ...`` to upsert."""
    types: list[str] = []
    for _, _, column, kind in codec.fields:
        if kind == "timestamp":
            types += ["timestamp", "timestamptz"]
        elif kind == "json" and codec.table.column(column).type != "jsonb":
            types.append("text")
        else:
            types.append(_ARRAY_TYPES[codec.table.column(column).type])
    rows = [codec.params(r) for r in records]
    arrays = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in types]
    unnest = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    return f"INSERT INTO {table} ({codec.columns}) SELECT * FROM unnest({unnest})", arrays
