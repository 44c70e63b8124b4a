"""Evaluation scores on PostgreSQL, in Mastra's ``mastra_scorers`` table."""

from __future__ import annotations

import functools
from typing import ClassVar

from .._sql.params import Params, where
from .._sql.schema import SCORERS
from ..core.coalesce import WriteGroups
from ..core.paging import Window
from ..domains.scores import ScoresStorage
from ..types import ScoreRow
from .base import PGDomain
from .codec import PGRowCodec

SCORE = PGRowCodec(ScoreRow, SCORERS)
_UPDATE_ALL = ", ".join(
    f'"{c}" = EXCLUDED."{c}"' for c in (col.strip('"') for col in SCORE.columns.split(", ")) if c != "id"
)


class ScoresPG(PGDomain, ScoresStorage):
    """Scores on PostgreSQL; every list is newest first."""

    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"scorers": ("mastra_scorers", "createdAt")}

    codecs = (SCORE,)

    @functools.cached_property
    def _score_writes(self) -> WriteGroups[str, ScoreRow]:
        return self.upserts(SCORE, f"ON CONFLICT (id) DO UPDATE SET {_UPDATE_ALL}")

    async def _save_score(self, row: ScoreRow) -> None:
        # Concurrent saves of different scores go out as one statement (core/coalesce.py).
        await self._score_writes.write(row.id, row)

    async def _get_score(self, id: str) -> ScoreRow | None:
        rows = await self.fetch(f"SELECT {SCORE.select} FROM {self.t('mastra_scorers')} WHERE id = $1", id)
        return SCORE.decode(rows[0]) if rows else None

    async def _score_page(self, equals: dict[str, str], win: Window) -> tuple[list[ScoreRow], int]:
        p = Params("numeric")
        clauses = [f'"{column}" = {p(value)}' for column, value in equals.items()]
        table = self.t("mastra_scorers")
        order = '"createdAt" DESC, ctid DESC'
        rows, total = await self.paged(SCORE.select, table, where(clauses), order, p.values, win)
        return SCORE.decode_all(rows), total
