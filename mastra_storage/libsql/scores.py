"""Evaluation scores on libSQL, in Mastra's ``mastra_scorers`` table."""

from __future__ import annotations

from typing import ClassVar

from .._sql.params import Params, where
from .._sql.schema import SCORERS
from ..core.paging import Window
from ..domains.scores import ScoresStorage
from ..types import ScoreRow
from .base import LibSQLDomain
from .codec import RowCodec

SCORE = RowCodec(ScoreRow, SCORERS)
_UPSERT = f"INSERT OR REPLACE INTO mastra_scorers ({SCORE.columns}) VALUES ({SCORE.placeholders()})"


class ScoresLibSQL(LibSQLDomain, ScoresStorage):
    """Scores on a libSQL/SQLite database; every list is newest first."""

    codecs = (SCORE,)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"scorers": ("mastra_scorers", "createdAt")}

    async def _save_score(self, row: ScoreRow) -> None:
        await self.db.execute(_UPSERT, SCORE.params(row))

    async def _get_score(self, id: str) -> ScoreRow | None:
        rows = await self.db.query(f"SELECT {SCORE.select} FROM mastra_scorers WHERE id = ?", (id,))
        return SCORE.decode(rows[0]) if rows else None

    async def _score_page(self, equals: dict[str, str], win: Window) -> tuple[list[ScoreRow], int]:
        p = Params()
        clauses = [f'"{column}" = {p(value)}' for column, value in equals.items()]
        return await self.paged(
            f'SELECT {SCORE.select} FROM mastra_scorers{where(clauses)} ORDER BY "createdAt" DESC, rowid DESC',
            f"SELECT COUNT(*) FROM mastra_scorers{where(clauses)}",
            p.values,
            win,
            SCORE.decode_all,
        )
