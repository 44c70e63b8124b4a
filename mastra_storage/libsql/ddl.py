"""SQLite DDL rendered from Mastra's table schemas, plus add-missing-column migrations."""

from __future__ import annotations

from collections.abc import Sequence

from .._sql.schema import Column, Table
from .connection import Connection, Tx

_SQLITE_TYPES = {
    "text": "TEXT",
    "uuid": "TEXT",
    "timestamp": "TEXT",
    "jsonb": "TEXT",
    "integer": "INTEGER",
    "bigint": "INTEGER",
    "float": "REAL",
    "boolean": "INTEGER",
}
# What ALTER TABLE ADD COLUMN gives a NOT NULL column on existing rows (Mastra's defaults).
_NOT_NULL_DEFAULTS = {"TEXT": "''", "INTEGER": "0", "REAL": "0"}


def _column_sql(col: Column) -> str:
    sql = f'"{col.name}" {_SQLITE_TYPES[col.type]}'
    if col.nullable is False:
        sql += " NOT NULL"
    if col.primary_key:
        sql += " PRIMARY KEY"
    return sql


def create_table_sql(table: Table) -> str:
    parts = [_column_sql(col) for col in table.columns]
    parts += ["UNIQUE (" + ", ".join(f'"{c}"' for c in cols) + ")" for cols in table.unique]
    return f'CREATE TABLE IF NOT EXISTS "{table.name}" ({", ".join(parts)})'


def _add_column_sql(table: Table, col: Column) -> str:
    type_sql = _SQLITE_TYPES[col.type]
    default = _NOT_NULL_DEFAULTS[type_sql] if col.nullable is False else "NULL"
    not_null = " NOT NULL" if col.nullable is False else ""
    return f'ALTER TABLE "{table.name}" ADD COLUMN "{col.name}" {type_sql}{not_null} DEFAULT {default}'


async def ensure_schema(conn: Connection, tables: Sequence[Table], indexes: Sequence[str]) -> None:
    """Creates the tables, adds columns an older schema lacks, and creates the indexes.

    It runs as one write transaction, so two processes initializing the same file at once take
    turns instead of racing on ``ALTER TABLE``.
    """

    def body(tx: Tx) -> None:
        for table in tables:
            tx.execute(create_table_sql(table))
            existing = {str(row[1]).lower() for row in tx.query(f'PRAGMA table_info("{table.name}")')}
            for col in table.columns:
                if existing and col.name.lower() not in existing:
                    tx.execute(_add_column_sql(table, col))
        for index in indexes:
            tx.execute(index)

    await conn.transaction(body)
