"""What the libSQL and PostgreSQL row codecs share: which column backs which field of a record, and
decoding the one JSON object per row that their select lists build."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypedDict, TypeVar, Unpack

import msgspec

from ..core.codec import decode_row
from ..errors import BackendError
from .schema import Table

T = TypeVar("T", bound=msgspec.Struct)


class CodecOptions(TypedDict, total=False):
    """How a record maps to a table beyond its camelCase wire names: ``columns`` renames fields
    (Mastra's ``thread_id``), ``json`` names text columns holding JSON, ``encoders`` replace a
    column's conversion on write, ``reads`` a column's expression on read, ``computed`` adds fields
    that are not columns (templates with ``{a}`` for the table alias prefix)."""

    columns: Mapping[str, str]
    json: tuple[str, ...]
    encoders: Mapping[str, Callable[[Any], Any]]
    reads: Mapping[str, str]
    computed: Mapping[str, str]


class SqlCodec(Generic[T]):
    """Columns of ``table`` that back the fields of ``record``, in one fixed order.

    A field's column is its camelCase wire name unless ``columns`` maps it elsewhere (Mastra's
    ``thread_id``); ``json`` names text columns that hold JSON. A subclass sets ``kinds`` (how its
    database's column types are converted) and calls ``_use`` with its one-column select list, a
    template with ``{a}`` where the table alias prefix goes.
    """

    kinds: ClassVar[dict[str, str]]  # column type -> kind ("json", "timestamp", ...; else "plain")

    def __init__(self, record: type[T], table: Table, **options: Unpack[CodecOptions]) -> None:
        self.record = record
        self.table = table
        self.encoders = dict(options.get("encoders") or {})
        self.reads = dict(options.get("reads") or {})
        self.computed = dict(options.get("computed") or {})
        json = options.get("json", ())
        renames = dict(options.get("columns") or {})
        names = set(table.column_names)
        self.fields: list[tuple[str, str, str, str]] = []  # (attribute, wire name, column, kind)
        for info in msgspec.structs.fields(record):
            column = renames.get(info.name, info.encode_name)
            if column in names:
                kind = "json" if column in json else self.kinds.get(table.column(column).type, "plain")
                self.fields.append((info.name, info.encode_name, column, kind))
        self.column_of = {attr: column for attr, _, column, _ in self.fields}
        self._template = self.select = ""
        self._decoder = msgspec.json.Decoder(record)

    def _use(self, template: str) -> None:
        self._template = template
        self.select = self.select_from("")  # built once: it goes into every statement

    def select_from(self, alias: str) -> str:
        """The one-column select list, qualified by a table alias when given."""
        return self._template.replace("{a}", f"{alias}." if alias else "")

    def decode(self, row: Any) -> T:
        try:
            return decode_row(self._decoder, row[0], self.record)
        except msgspec.ValidationError as exc:
            raise BackendError(
                f"stored {self.table.name} row does not decode as {self.record.__name__}: {exc}"
            ) from exc

    def decode_all(self, rows: list[Any]) -> list[T]:
        # The common case in one comprehension over the decoder: the calls around it per row cost
        # a third of a page's decoding (20 workflow runs of 5.5 KB: 382 -> 263 µs).
        decode = self._decoder.decode
        try:
            return [decode(row[0]) for row in rows]
        except msgspec.ValidationError:  # a row Mastra wrote (JSON kept as a string), or a bad one
            return [self.decode(row) for row in rows]
