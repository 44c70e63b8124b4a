"""Mapping between record Structs and PostgreSQL rows of Mastra's tables.

Writes fill each ``timestamp`` column and its ``…Z`` timestamptz companion; JSON goes to ``jsonb`` as
text. Batches travel as one JSON document (``json_insert``). Reads select one JSON object column per
row, built by PostgreSQL and decoded straight into the Struct by msgspec — except where building
that object costs the server more than the client saves: messages and workflow runs read their
plain columns (``ColumnCodec``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack

import msgspec

from .._sql.codec import CodecOptions, SqlCodec
from .._sql.schema import Table
from ..core.codec import dumps, json_in_a_string, loads, to_utc_ms
from ..errors import BackendError
from .ddl import not_null

T = TypeVar("T", bound=msgspec.Struct)
# json_to_recordset's field types, by column type
_FIELD_TYPES = {
    "text": "text",
    "uuid": "uuid",
    "jsonb": "jsonb",
    "integer": "int4",
    "bigint": "int8",
    "float": "float8",
    "boolean": "bool",
}
_ENCODER = msgspec.json.Encoder()
_TIMESTAMP = msgspec.json.Decoder(datetime)


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
        self.params = self._params_function(writes)
        # json_insert: each record is a JSON object under its wire names; json_to_recordset types the
        # fields, and the select list fills the columns (a timestamp and its Z companion from one field).
        self._fields: list[str] = []  # the recordset's column definitions
        self._values: dict[str, list[str]] = {}  # wire name -> the select list's expressions
        omitted = _omitted_defaults(record)
        for (attr, wire, column, kind), (*_, required) in zip(self.fields, writes, strict=True):
            field = f'x."{wire}"'
            default = omitted.get(attr)
            if default is not None and (kind != "plain" or not isinstance(default, bool)):
                # Only a bool's literal is written here (from code, never from data): anything else is refused.
                raise TypeError(f"no SQL literal for the default of {record.__name__}.{attr}: {default!r}")
            if kind == "timestamp":
                self._fields.append(f'"{wire}" timestamptz')
                self._values[wire] = _timestamp(field)
            elif kind == "json":
                stored = table.column(column).type
                self._fields.append(f'"{wire}" {"jsonb" if stored == "jsonb" else "json"}')
                value = field if stored == "jsonb" else f"{field}::text"  # json keeps the text it was given
                # JSON null arrives as SQL NULL: a NOT NULL JSON column keeps it as JSON null.
                null = "'null'::jsonb" if stored == "jsonb" else "'null'"
                self._values[wire] = [f"COALESCE({value}, {null})" if required else value]
            else:
                self._fields.append(f'"{wire}" {_FIELD_TYPES[table.column(column).type]}')
                # A field the JSON left out is NULL in the recordset: its default fills it.
                self._values[wire] = [field if default is None else f"COALESCE({field}, {str(default).lower()})"]
        # Parsed once as jsonb, whose fields are then taken without parsing again (json_to_recordset
        # parses the document, then each jsonb field anew: persist snapshot with 16 callers +25%).
        # A JSON column kept as text keeps the text it was given, which only json passes through.
        keeps_text = any(kind == "json" and table.column(column).type != "jsonb" for _, _, column, kind in self.fields)
        self._source = "json_to_recordset($1::text::json)" if keeps_text else "jsonb_to_recordset($1::text::jsonb)"
        self._recordset = self.recordset()
        # Encoders run in Python before the record is encoded: (attribute, encoder)
        self._encoded = [(attr, self.encoders[column]) for attr, _, column, _ in self.fields if column in self.encoders]
        # A timestamp is one parameter, the timestamptz of the …Z column; the plain column takes its
        # UTC wall time from it on the server.
        insert_columns: list[str] = []
        placeholders: list[str] = []
        for i, (_, _, column, kind) in enumerate(self.fields, 1):
            insert_columns.append(f'"{column}"')
            if kind == "timestamp":
                insert_columns.append(f'"{column}Z"')
                placeholders += _timestamp(f"${i}")
            else:
                placeholders.append(f"${i}")
        self.columns = ", ".join(insert_columns)
        self.width = len(self.fields)  # parameters
        self._placeholders = ", ".join(placeholders)  # built once
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

    def placeholders(self) -> str:
        """The values of ``columns``: ``$1, $2, …``, one parameter per field (a timestamp fills two columns)."""
        return self._placeholders

    def recordset(self, *, latest_by: Sequence[str] = (), stamps: Sequence[str] = ()) -> str:
        """``SELECT`` of the columns from the JSON array ``$1`` (see ``json_insert``). ``latest_by``
        (wire names of a key): one row per key, the last given, in key order — what an upsert
        needs (a row is changed once per statement; two statements lock shared rows in one order).
        ``stamps`` (wire names of timestamps): taken from ``$2``, not from the records."""
        values = [
            item for wire, exprs in self._values.items() for item in (_timestamp("$2") if wire in stamps else exprs)
        ]
        if not latest_by:
            return f"SELECT {', '.join(values)} FROM {self._source} AS x({', '.join(self._fields)})"
        key = ", ".join(f'x."{wire}"' for wire in latest_by)
        names = ", ".join(f'"{wire}"' for wire in self._values)
        source = f"ROWS FROM ({self._source} AS ({', '.join(self._fields)})) WITH ORDINALITY AS x({names}, _n)"
        return f"SELECT DISTINCT ON ({key}) {', '.join(values)} FROM {source} ORDER BY {key}, x._n DESC"

    def insert_sql(self, table: str, recordset: str | None = None) -> str:
        """``INSERT`` of ``recordset`` (the plain one by default) into ``table``."""
        return f"INSERT INTO {table} ({self.columns}) {recordset or self._recordset}"

    def encode_rows(self, records: list[T]) -> str:
        """The records as the JSON array ``insert_sql`` reads."""
        return self.encode_json(records).decode()

    def encode_json(self, records: list[T]) -> bytes:
        """``encode_rows`` as UTF-8."""
        if self._encoded:
            records = [
                msgspec.structs.replace(r, **{attr: encode(getattr(r, attr)) for attr, encode in self._encoded})
                for r in records
            ]
        return _ENCODER.encode(records)

    def _params_function(self, writes: list[tuple[str, str, str, bool]]) -> Callable[[T], list[Any]]:
        """``params(record)``: the statement parameters of a record, one per field (see ``placeholders``).
        Written out once per codec as one list display (as dataclasses write ``__init__``): a loop
        deciding per field what to do cost a 38-column score 2.5 times as much."""
        scope: dict[str, Any] = {"dumps": dumps, "stamp": _stamp}
        items = []
        for i, (attr, column, kind, required) in enumerate(writes):
            assert attr.isidentifier()  # a field of the record's class, never data
            value = f"r.{attr}"
            if column in self.encoders:
                scope[f"encode{i}"] = self.encoders[column]
                items.append(f"encode{i}({value})")
            elif kind == "timestamp":
                items.append(f"stamp({value})")
            elif kind == "json":  # JSON null in a NOT NULL column; SQL NULL where NULL is allowed
                items.append(f"dumps({value})" if required else f"None if {value} is None else dumps({value})")
            else:
                items.append(value)
        params: Callable[[T], list[Any]] = eval(f"lambda r: [{', '.join(items)}]", scope)
        return params


def _omitted_defaults(record: type[msgspec.Struct]) -> dict[str, object]:
    """The fields ``record``'s JSON leaves out at a default other than None (``omit_defaults``)."""
    if not record.__struct_config__.omit_defaults:
        return {}
    defaults = {
        f.name: f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
        for f in msgspec.structs.fields(record)
        if f.default is not msgspec.NODEFAULT or f.default_factory is not msgspec.NODEFAULT
    }
    return {name: value for name, value in defaults.items() if value is not None}


def _timestamp(value: str) -> list[str]:
    """A timestamp's two columns from one timestamptz value: the plain one in UTC wall time."""
    return [f"{value}::timestamptz AT TIME ZONE 'UTC'", value]


def _stamp(value: datetime | None) -> datetime | None:
    return to_utc_ms(value) if isinstance(value, datetime) else None


def json_insert(codec: PGRowCodec[Any], table: str, records: list[Any]) -> tuple[str, list[Any]]:
    """``INSERT INTO table (...) SELECT ... FROM json_to_recordset($1)``: any number of rows in one
    statement with one text parameter, the records encoded by msgspec in C. (Column arrays through
    ``unnest`` cost asyncpg an ABC isinstance check per element: twice the client CPU of this, and
    a third fewer batches per second with 16 callers.) Append ``ON CONFLICT ...`` to upsert."""
    return codec.insert_sql(table), [codec.encode_rows(records)]


class ColumnCodec(PGRowCodec[T]):
    """Reads a record as its plain columns, decoded here, rather than as one JSON object the server
    builds per row. Where JSON columns are large the object costs the server a copy of each
    document after rendering it (a page of 20 workflow runs of 5.5 KB: 322-355 -> 290-317 µs);
    where a record has few columns, building the object costs more than the columns (messages: a
    page's execution 84-142 -> 24-43 µs). Timestamps come as their JSON text, parsed by msgspec in
    C (asyncpg's datetime decoding cost the client 8% more instructions per page of runs).

    Each JSON column is decoded as its field's type; ``decoders`` replace that for a column (one
    that holds legacy forms, say). A JSON column Mastra stored as a string of JSON reads as the
    value that string holds, as in every read (``core.codec.decode_row``). Records are made with
    the constructor, so every column read must hold its field's type: what PostgreSQL's column
    types guarantee, NOT NULL ones never NULL."""

    def __init__(
        self,
        record: type[T],
        table: Table,
        *,
        decoders: Mapping[str, Callable[[str], Any]] | None = None,
        **options: Unpack[CodecOptions],
    ) -> None:
        super().__init__(record, table, **options)
        if self.reads or self.computed:  # they shape the JSON object, which this codec does not build
            raise TypeError(f"ColumnCodec reads columns as they are: no reads or computed fields ({record.__name__})")
        decoders = dict(decoders or {})
        types = {info.name: info.type for info in msgspec.structs.fields(record)}
        select: list[str] = []
        strict: dict[int, Callable[[str], Any]] = {}  # the column decoders, by position
        lenient: dict[int, Callable[[str], Any]] = {}  # the same, taking JSON strings of JSON too
        for i, (attr, _, column, kind) in enumerate(self.fields):
            if kind == "timestamp":
                select.append(f'to_json(COALESCE({{a}}"{column}Z", {{a}}"{column}" AT TIME ZONE \'UTC\'))::text')
                strict[i] = lenient[i] = _TIMESTAMP.decode
            else:
                select.append(f'{{a}}"{column}"')
            if column in decoders:
                strict[i] = lenient[i] = decoders[column]
            elif kind == "json":
                decoder = msgspec.json.Decoder(types[attr])
                strict[i], lenient[i] = decoder.decode, _lenient(decoder)
        self._build = self._builder(strict)
        self._build_lenient = self._builder(lenient)
        key = [c.name for c in table.columns if c.primary_key] or list(table.unique[0])
        self._key = [i for i, (_, _, column, _) in enumerate(self.fields) if column in key]
        self._use(", ".join(select))

    def _builder(self, decoders: Mapping[int, Callable[[str], Any]]) -> Callable[[Any], T]:
        """The row-to-record function, written out as dataclasses write ``__init__``: the
        constructor called with keywords costs a third of one called with ``**values`` (0.30 vs
        0.96 µs), and a decoder called directly saves a Python call per column."""
        scope: dict[str, Any] = {"record": self.record, **{f"decode{i}": d for i, d in decoders.items()}}
        arguments = []
        for i, (attr, *_) in enumerate(self.fields):
            assert attr.isidentifier()  # a field of the record's class, never data
            value = f"r[{i}]" if i not in decoders else f"None if r[{i}] is None else decode{i}(r[{i}])"
            arguments.append(f"{attr}={value}")
        build: Callable[[Any], T] = eval(f"lambda r: record({', '.join(arguments)})", scope)
        return build

    def decode(self, row: Any) -> T:
        return self.decode_all([row])[0]

    def decode_all(self, rows: list[Any]) -> list[T]:
        build = self._build
        try:
            return [build(row) for row in rows]
        except (msgspec.MsgspecError, ValueError):  # a row Mastra wrote (JSON kept as a string), or a bad one
            return [self._decode_lenient(row) for row in rows]

    def _decode_lenient(self, row: Any) -> T:
        # ValueError too: a record's own checks (a timestamp outside years 1000-9999) raise
        # ValidationError, which on a read is a stored row's fault, not the caller's.
        try:
            return self._build_lenient(row)
        except (msgspec.MsgspecError, ValueError) as exc:
            key = ", ".join(repr(row[i]) for i in self._key)
            raise BackendError(
                f"stored {self.table.name} row ({key}) does not decode as {self.record.__name__}: {exc}"
            ) from exc


def _lenient(decoder: msgspec.json.Decoder[Any]) -> Callable[[str], Any]:
    """``decoder.decode``, which also takes a JSON string holding a value of the type."""

    def decode(text: str) -> Any:
        try:
            return decoder.decode(text)
        except msgspec.ValidationError:
            value = loads(text)
            if json_in_a_string(value):
                return decoder.decode(value)
            raise

    return decode
