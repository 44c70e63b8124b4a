"""Versioned schema migrations: the ledger every backend keeps, and how it is read.

Each domain of a backend has an ordered list of migrations (versions 1, 2, …). The ledger — the
``mastra_storage_migrations`` table (DynamoDB: one item per domain) — records, per domain, each
applied version with its name, checksum and time. ``init()`` applies what is pending under a lock
that serializes processes; a database whose ledger holds a version this package does not know was
migrated by a newer release and is refused (``SchemaVersionError``), never altered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from ..errors import SchemaVersionError

LEDGER_TABLE = "mastra_storage_migrations"


class Versioned(Protocol):
    @property
    def version(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def checksum(self) -> str: ...


M = TypeVar("M", bound=Versioned)


@dataclass(frozen=True)
class MigrationStep:
    """A migration of one domain that ``migrate()`` applied or, in a dry run, would apply, with the
    exact statements (DDL) it runs on this database."""

    domain: str
    version: int
    name: str
    statements: tuple[str, ...]
    applied: bool


@dataclass(frozen=True)
class StatementMigration:
    """A migration that runs fixed statements (ClickHouse DDL; on DynamoDB, none: it records the
    item format the domain writes)."""

    version: int
    name: str
    statements: tuple[str, ...] = ()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def pending(domain: str, migrations: Sequence[M], applied: Mapping[int, str]) -> list[M]:
    """The migrations of ``domain`` not in ``applied`` (version -> checksum), in order; raises
    ``SchemaVersionError`` when the ledger holds a version newer than this package knows."""
    known = max((m.version for m in migrations), default=0)
    newest = max(applied, default=0)
    if newest > known:
        raise SchemaVersionError(
            f"the {domain} schema is at version {newest}, newer than this package's {known}: "
            "upgrade mastra-storage; the database was left as it is",
            details={"domain": domain, "database_version": newest, "package_version": known},
        )
    return [m for m in migrations if m.version not in applied]
