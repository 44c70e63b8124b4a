"""Evaluation scores on ClickHouse: a ``ReplacingMergeTree`` keyed by score id.

Its version column is the save time in nanoseconds: an upsert of the same id within one
millisecond still has a later version, and lists of scores saved in one millisecond keep their order.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from .._sql.schema import SCORERS
from ..core.paging import Window
from ..domains.scores import ScoresStorage
from ..types import ScoreRow
from .base import CHCodec, ClickhouseDomain

SCORE = CHCodec(ScoreRow, SCORERS, not_null=("createdAt",))  # the TTL column: always set


class ScoresClickhouse(ClickhouseDomain, ScoresStorage):
    """Scores on ClickHouse; a given id upserts (the latest version wins), lists are newest first."""

    ttl_key: ClassVar[str] = "scores"
    table_names: ClassVar[tuple[str, ...]] = ("mastra_scorers",)
    record_codecs: ClassVar[dict[str, CHCodec[Any]]] = {"scores": SCORE}
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"scorers": ("mastra_scorers", "createdAt")}

    def ddl(self) -> list[str]:
        ttl = f" TTL toDateTime(`createdAt`) + INTERVAL {self.ttl_seconds} SECOND" if self.ttl_seconds else ""
        return [
            f"CREATE TABLE IF NOT EXISTS {self.t('mastra_scorers')} "
            f"({', '.join(SCORE.column_sql())}, `version` UInt64, "
            "INDEX scorer_idx `scorerId` TYPE bloom_filter GRANULARITY 4, "
            "INDEX run_idx `runId` TYPE bloom_filter GRANULARITY 4, "
            "INDEX entity_idx `entityId` TYPE bloom_filter GRANULARITY 4, "
            "INDEX trace_idx `traceId` TYPE bloom_filter GRANULARITY 4) "
            f"ENGINE = ReplacingMergeTree(`version`) ORDER BY (`id`){ttl}"
        ]

    async def _save_score(self, row: ScoreRow) -> None:
        await self._insert([row])

    async def _import(self, kind: str, records: list[Any]) -> None:
        await self._insert(records)  # a page is one insert (one part), not one per score

    async def _insert(self, rows: list[ScoreRow]) -> None:
        version = time.time_ns()  # the newest version wins in ReplacingMergeTree
        columns = [*SCORE.column_data(rows), [version] * len(rows)]
        await self.transport.insert(self.t("mastra_scorers"), columns, [*SCORE.columns, "version"])

    async def _get_score(self, id: str) -> ScoreRow | None:
        names, rows = await self.query(
            f"SELECT {SCORE.select} FROM {self.t('mastra_scorers')} FINAL WHERE `id` = {{id:String}}", id=id
        )
        return SCORE.decode(names, rows[0]) if rows else None

    async def _score_page(self, equals: dict[str, str], win: Window) -> tuple[list[ScoreRow], int]:
        where = " AND ".join(f"`{column}` = {{{column}:String}}" for column in equals)
        table = self.t("mastra_scorers")
        limit = f" LIMIT {win.limit} OFFSET {win.offset}" if win.limit is not None else ""
        names, rows = await self.query(
            f"SELECT {SCORE.select} FROM {table} FINAL WHERE {where} ORDER BY `createdAt` DESC, `version` DESC{limit}",
            **equals,
        )
        _, count = await self.query(f"SELECT count() FROM {table} FINAL WHERE {where}", **equals)
        return [SCORE.decode(names, row) for row in rows], int(count[0][0])
