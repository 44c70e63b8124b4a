"""What a libSQL or PostgreSQL domain store knows of its tables: its migrations (its backend's
``ddl.MIGRATIONS``; the tables follow from them) and the codec of each record kind
(``export_records`` / ``import_records``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Generic, TypeVar

from ..core.transfer import RecordKind
from .codec import SqlCodec
from .schema import Migration, Table

C = TypeVar("C", bound=SqlCodec[Any])


class SqlSchema(Generic[C]):
    domain: ClassVar[str]
    history: ClassVar[Mapping[str, tuple[Migration, ...]]]  # every domain's migrations on this backend
    codecs: ClassVar[tuple[Any, ...]] = ()  # one codec per record kind: the one of the kind's record type
    record_kinds: ClassVar[dict[str, RecordKind]]

    @property
    def migrations(self) -> tuple[Migration, ...]:
        """This domain's schema, version by version (the backend's ``ddl.MIGRATIONS``)."""
        return self.history[self.domain]

    @property
    def tables(self) -> tuple[Table, ...]:
        return tuple(table for migration in self.migrations for table in migration.tables)

    def codec(self, kind: str) -> C:
        record = self.record_kinds[kind].record
        codec: C = next(c for c in self.codecs if c.record is record)
        return codec

    def key_columns(self, kind: str) -> str:
        """The quoted key columns of a kind, in paging order."""
        codec = self.codec(kind)
        return ", ".join(f'"{codec.column_of[key]}"' for key in self.record_kinds[kind].keys)
