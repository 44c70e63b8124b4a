"""Mapping between record Structs and PostgreSQL rows of Mastra's tables.

Writes fill each ``timestamp`` column and its ``…Z`` timestamptz companion; JSON goes to ``jsonb`` as
text. Reads select one JSON object column per row, built by PostgreSQL and decoded straight into the
Struct by msgspec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from .._codec import decode_row, dumps, to_utc_ms
from .._sql.schema import Table
from ..errors import BackendError
from .ddl import not_null

T = TypeVar("T", bound=msgspec.Struct)


def _kind(type_: str) -> str:
    return {"jsonb": "json", "timestamp": "timestamp"}.get(type_, "plain")


class PGRowCodec(Generic[T]):
    """Columns of ``table`` that back the fields of ``record`` (see ``libsql.codec.RowCodec``;
    ``reads``/``computed`` templates use ``{a}`` for the table alias prefix)."""

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
        self.fields: list[tuple[str, str, str, str, bool]] = []  # (attribute, wire, column, kind, not null)
        for info in msgspec.structs.fields(record):
            column = renames.get(info.name, info.encode_name)
            if column in names:
                col = table.column(column)
                kind = "json" if column in json else _kind(col.type)
                self.fields.append((info.name, info.encode_name, column, kind, not_null(col)))
        self.column_of = {attr: column for attr, _, column, _, _ in self.fields}
        self.kind_of = {attr: (kind, required) for attr, _, _, kind, required in self.fields}
        self.encoders = dict(encoders or {})
        insert_columns: list[str] = []
        for _, _, column, kind, _ in self.fields:
            insert_columns.append(f'"{column}"')
            if kind == "timestamp":
                insert_columns.append(f'"{column}Z"')
        self.columns = ", ".join(insert_columns)
        self.width = len(insert_columns)
        # row_to_json over a FROM-less subselect of aliased columns: one JSON object per row, under
        # the wire names, and cheaper for PostgreSQL to build than json_build_object.
        columns_sql = []
        for _, wire, column, kind, _ in self.fields:
            if reads and column in reads:
                expr = reads[column]
            elif kind == "timestamp":
                expr = f'COALESCE({{a}}"{column}Z", {{a}}"{column}" AT TIME ZONE \'UTC\')'
            else:
                expr = f'{{a}}"{column}"'
            columns_sql.append(f'{expr} AS "{wire}"')
        columns_sql += [f'{expr} AS "{wire}"' for wire, expr in (computed or {}).items()]
        self._template = "(SELECT row_to_json(_) FROM (SELECT " + ", ".join(columns_sql) + ") _)"
        self.select = self.select_from("")
        self._decoder = msgspec.json.Decoder(record)

    def select_from(self, alias: str) -> str:
        return self._template.replace("{a}", f"{alias}." if alias else "")

    def placeholders(self, start: int = 1) -> str:
        return ", ".join(f"${i}" for i in range(start, start + self.width))

    def params(self, record: T) -> list[Any]:
        values: list[Any] = []
        for attr, _, column, kind, required in self.fields:
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

    def decode(self, row: Any) -> T:
        try:
            return decode_row(self._decoder, row[0], self.record)
        except msgspec.ValidationError as exc:
            what = f"stored {self.table.name} row does not decode as {self.record.__name__}"
            raise BackendError(f"{what}: {exc}") from exc

    def decode_all(self, rows: list[Any]) -> list[T]:
        return [self.decode(row) for row in rows]


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
    for _, _, column, kind, _ in codec.fields:
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
