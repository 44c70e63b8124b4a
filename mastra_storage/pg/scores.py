"""Evaluation scores on PostgreSQL, in Mastra's ``mastra_scorers`` table."""

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
from .base import PGDomain
from .codec import PGRowCodec

SCORE = PGRowCodec(ScoreRow, SCORERS)
_UPDATE_ALL = ", ".join(
    f'"{c}" = EXCLUDED."{c}"' for c in (col.strip('"') for col in SCORE.columns.split(", ")) if c != "id"
)


class ScoresPG(PGDomain, ScoresLists):
    """Scores on PostgreSQL; every list is newest first."""

    tables = (SCORERS,)
    domain: ClassVar[str] = "scores"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {"scorers": ("mastra_scorers", "createdAt")}

    def indexes(self) -> list[str]:
        x, t = self.object_name, self.t("mastra_scorers")
        return [
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_scores_trace_id_span_id_created_at_idx")}" '
            f'ON {t} ("traceId", "spanId", "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_scores_scorer_id_created_at_idx")}" '
            f'ON {t} ("scorerId", "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_scores_run_id_created_at_idx")}" '
            f'ON {t} ("runId", "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_scores_entity_created_at_idx")}" '
            f'ON {t} ("entityId", "entityType", "createdAt" DESC)',
        ]

    @operation
    async def save_score(self, *, score: ScorePayload | Mapping[str, Any]) -> ScoreRow:
        row = new_score(score)
        await self.execute(
            f"INSERT INTO {self.t('mastra_scorers')} ({SCORE.columns}) VALUES ({SCORE.placeholders()}) "
            f"ON CONFLICT (id) DO UPDATE SET {_UPDATE_ALL}",
            *SCORE.params(row),
        )
        return row

    @operation
    async def get_score_by_id(self, *, id: str) -> ScoreRow | None:
        require_id(id, "id")
        rows = await self.fetch(f"SELECT {SCORE.select} FROM {self.t('mastra_scorers')} WHERE id = $1", id)
        return SCORE.decode(rows[0]) if rows else None

    async def _list(self, equals: dict[str, Any], page: int, per_page: PerPage) -> ListScoresResult:
        win = window(page, per_page)
        p = Params("numeric")
        clauses = [f'"{column}" = {p(value)}' for column, value in equals.items() if value is not None]
        table = self.t("mastra_scorers")
        rows, total = await self.paged(
            f'SELECT {SCORE.select} FROM {table}{where(clauses)} ORDER BY "createdAt" DESC, ctid DESC',
            f"SELECT COUNT(*) FROM {table}{where(clauses)}",
            p.values,
            win,
        )
        return ListScoresResult(
            scores=SCORE.decode_all(rows),
            **win.page_fields(total),
        )
