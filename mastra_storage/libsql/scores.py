"""Evaluation scores on libSQL, in Mastra's ``mastra_scorers`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .._base import operation
from .._record_rules import new_score
from .._scores import ScoresLists
from .._sql.pagination import window
from .._sql.params import Params, where
from .._sql.schema import SCORERS
from .._validate import require_id
from ..types import ListScoresResult, PerPage, ScorePayload, ScoreRow
from .base import LibSQLDomain
from .codec import RowCodec

SCORE = RowCodec(ScoreRow, SCORERS)
_UPSERT = f"INSERT OR REPLACE INTO mastra_scorers ({SCORE.columns}) VALUES ({SCORE.placeholders})"


class ScoresLibSQL(LibSQLDomain, ScoresLists):
    """Scores on a libSQL/SQLite database; every list is newest first."""

    tables = (SCORERS,)
    indexes = (
        'CREATE INDEX IF NOT EXISTS idx_scorers_scorer_created_at ON mastra_scorers ("scorerId", "createdAt")',
        'CREATE INDEX IF NOT EXISTS idx_scorers_run_created_at ON mastra_scorers ("runId", "createdAt")',
        "CREATE INDEX IF NOT EXISTS idx_scorers_entity_created_at "
        'ON mastra_scorers ("entityId", "entityType", "createdAt")',
        'CREATE INDEX IF NOT EXISTS idx_scorers_span_created_at ON mastra_scorers ("traceId", "spanId", "createdAt")',
    )
    domain: ClassVar[str] = "scores"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"scorers": ("mastra_scorers", "createdAt")}

    @operation
    async def save_score(self, *, score: ScorePayload | Mapping[str, Any]) -> ScoreRow:
        row = new_score(score)
        await self.db.execute(_UPSERT, SCORE.params(row))
        return row

    @operation
    async def get_score_by_id(self, *, id: str) -> ScoreRow | None:
        require_id(id, "id")
        rows = await self.db.query(f"SELECT {SCORE.select} FROM mastra_scorers WHERE id = ?", (id,))
        return SCORE.decode(rows[0]) if rows else None

    async def _list(self, equals: dict[str, Any], page: int, per_page: PerPage) -> ListScoresResult:
        win = window(page, per_page)
        p = Params()
        clauses = [f'"{column}" = {p(value)}' for column, value in equals.items() if value is not None]
        records, total = await self.paged(
            f'SELECT {SCORE.select} FROM mastra_scorers{where(clauses)} ORDER BY "createdAt" DESC, rowid DESC',
            f"SELECT COUNT(*) FROM mastra_scorers{where(clauses)}",
            p.values,
            win,
            SCORE.decode_all,
        )
        return ListScoresResult(
            scores=records,
            **win.page_fields(total),
        )
