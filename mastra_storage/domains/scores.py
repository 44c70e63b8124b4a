"""``ScoresStorage``: evaluation results (Mastra's ``mastra_scorers``), every list newest first.

A backend subclasses it and implements the ``_hooks`` with its own queries; arguments reach them
validated.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from ..core.codec import new_id, utc_now
from ..core.lifecycle import DomainStore, operation
from ..core.paging import Window, window
from ..core.transfer import RecordKind
from ..core.validate import check_choice, coerce, optional_text, require_id
from ..errors import ValidationError
from ..types import ListScoresResult, PerPage, ScorePayload, ScoreRow


def new_score(score: ScorePayload | Mapping[str, Any]) -> ScoreRow:
    """The row ``save_score`` writes: validated, with an id (the given one upserts) and timestamps."""
    try:
        payload = coerce(ScorePayload, score, "score")
    except ValidationError as exc:
        exc.status = "VALIDATION_FAILED"
        raise
    for name in ("scorer_id", "entity_id", "run_id"):
        require_id(getattr(payload, name), name)
    if payload.id is not None:
        require_id(payload.id, "id")
    now = utc_now()
    fields = msgspec.structs.asdict(payload)
    fields["id"] = payload.id or new_id()
    return ScoreRow(**fields, created_at=now, updated_at=now)


class ScoresStorage(DomainStore):
    """Evaluation scores; ``list_scores_by_*`` return one page, newest first (``created_at`` DESC)."""

    domain = "scores"
    record_kinds: ClassVar[dict[str, RecordKind]] = {"scores": RecordKind(ScoreRow, ("id",))}

    async def _import(self, kind: str, records: list[Any]) -> None:
        for row in records:
            await self._save_score(row)

    @operation
    async def save_score(self, *, score: ScorePayload | Mapping[str, Any]) -> ScoreRow:
        """Validates and saves a score, returning the stored row (a given ``id`` upserts; an invalid
        payload is ``ValidationError`` with status VALIDATION_FAILED and nothing is written)."""
        row = new_score(score)
        await self._save_score(row)
        return row

    @operation
    async def get_score_by_id(self, *, id: str) -> ScoreRow | None:
        """The score ``id``, or None."""
        return await self._get_score(require_id(id, "id"))

    @operation
    async def list_scores_by_scorer_id(
        self,
        *,
        scorer_id: str,
        entity_id: str | None = None,
        entity_type: str | None = None,
        source: str | None = None,
        page: int = 0,
        per_page: PerPage = 100,
    ) -> ListScoresResult:
        """The scores of one scorer, optionally of one entity and one source ("LIVE" or "TEST")."""
        require_id(scorer_id, "scorer_id")
        if source is not None:
            check_choice(source, ("LIVE", "TEST"), "source")
        equals = {
            "scorerId": scorer_id,
            "entityId": optional_text(entity_id, "entity_id"),
            "entityType": optional_text(entity_type, "entity_type"),
            "source": source,
        }
        return await self._list(equals, page, per_page)

    @operation
    async def list_scores_by_run_id(self, *, run_id: str, page: int = 0, per_page: PerPage = 100) -> ListScoresResult:
        """The scores of one run."""
        return await self._list({"runId": require_id(run_id, "run_id")}, page, per_page)

    @operation
    async def list_scores_by_entity_id(
        self, *, entity_id: str, entity_type: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult:
        """The scores of one entity (an agent, a workflow…)."""
        require_id(entity_id, "entity_id")
        require_id(entity_type, "entity_type")
        return await self._list({"entityId": entity_id, "entityType": entity_type}, page, per_page)

    @operation
    async def list_scores_by_span(
        self, *, trace_id: str, span_id: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult:
        """The scores attached to one span of a trace."""
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        return await self._list({"traceId": trace_id, "spanId": span_id}, page, per_page)

    async def _list(self, equals: dict[str, Any], page: int, per_page: PerPage) -> ListScoresResult:
        win = window(page, per_page)
        scores, total = await self._score_page({k: v for k, v in equals.items() if v is not None}, win)
        return ListScoresResult(scores=scores, **win.page_fields(total))

    # ------------------------------------------------------------ what a backend writes

    @abc.abstractmethod
    async def _save_score(self, row: ScoreRow) -> None: ...
    @abc.abstractmethod
    async def _get_score(self, id: str) -> ScoreRow | None: ...
    @abc.abstractmethod
    async def _score_page(self, equals: dict[str, str], win: Window) -> tuple[list[ScoreRow], int]:
        """One page of the scores whose camelCase columns equal ``equals``, newest first, and the total."""
