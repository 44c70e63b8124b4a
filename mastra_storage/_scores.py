"""The list methods every scores store shares; a backend supplies ``_list`` (its query)."""

from __future__ import annotations

from typing import Any

from ._base import DomainBase, operation
from ._validate import check_choice, require_id
from .types import ListScoresResult, PerPage


class ScoresLists(DomainBase):
    """``list_scores_by_*``: validated here, answered by the backend's ``_list`` — equality on the
    given columns (None means no filter), newest first, one page."""

    async def _list(self, equals: dict[str, Any], page: int, per_page: PerPage) -> ListScoresResult:
        raise NotImplementedError

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
        require_id(scorer_id, "scorer_id")
        if source is not None:
            check_choice(source, ("LIVE", "TEST"), "source")
        return await self._list(
            {"scorerId": scorer_id, "entityId": entity_id, "entityType": entity_type, "source": source}, page, per_page
        )

    @operation
    async def list_scores_by_run_id(self, *, run_id: str, page: int = 0, per_page: PerPage = 100) -> ListScoresResult:
        return await self._list({"runId": require_id(run_id, "run_id")}, page, per_page)

    @operation
    async def list_scores_by_entity_id(
        self, *, entity_id: str, entity_type: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult:
        require_id(entity_id, "entity_id")
        require_id(entity_type, "entity_type")
        return await self._list({"entityId": entity_id, "entityType": entity_type}, page, per_page)

    @operation
    async def list_scores_by_span(
        self, *, trace_id: str, span_id: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult:
        require_id(trace_id, "trace_id")
        require_id(span_id, "span_id")
        return await self._list({"traceId": trace_id, "spanId": span_id}, page, per_page)
