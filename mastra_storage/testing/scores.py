"""Conformance tests for ``ScoresStorage`` (reference §10 scores/index.ts)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from ..domains import ScoresStorage
from ..errors import ValidationError
from .samples import sample_score, uid


class ScoresConformance:
    """Behaviour every ``ScoresStorage`` must have; needs a ``backend`` fixture (see package docs)."""

    @pytest.fixture
    async def scores(self, backend: Any) -> ScoresStorage:
        store: ScoresStorage = await backend.get_store("scores")
        return store

    async def test_saved_score_round_trips(self, scores: ScoresStorage) -> None:
        payload = sample_score(
            trace_id="t",
            span_id="s",
            resource_id="r",
            thread_id="th",
            organization_id="org",
            project_id="proj",
            batch_id="b",
            dataset_id="d",
            dataset_item_id="di",
            additional_context={"a": 1},
            request_context={"user": "u"},
            extract_prompt="p",
            analyze_step_result={"x": [1, 2]},
        )
        saved = await scores.save_score(score=payload)
        assert saved.id and saved.created_at.tzinfo is not None
        fetched = await scores.get_score_by_id(id=saved.id)
        assert fetched == saved
        given = msgspec.structs.asdict(payload)
        stored = msgspec.structs.asdict(fetched)
        for name, value in given.items():
            if value is not None and name != "id":
                assert stored[name] == pytest.approx(value) if name == "score" else stored[name] == value, name
        assert await scores.get_score_by_id(id="missing") is None

    async def test_concurrent_saves_each_land_whole(self, scores: ScoresStorage) -> None:
        # Saves in flight together (a backend may write them in one statement) land as one by one.
        payloads = [
            sample_score(
                score=i / 7, reason=f"quote ' \" \\ {i} 🎉", metadata={"i": i, "nested": [None, True, 1.5]},
                additional_context=None if i % 2 else {"k": "v\u2028"}, run_id=uid("run"), source="TEST",
            )
            for i in range(12)
        ]  # fmt: skip
        saved = await asyncio.gather(*(scores.save_score(score=p) for p in payloads))
        assert len({s.id for s in saved}) == 12
        for one in saved:
            assert await scores.get_score_by_id(id=one.id) == one
        rescored = [
            {**msgspec.structs.asdict(p), "id": s.id, "score": 1.0} for p, s in zip(payloads, saved, strict=True)
        ]
        again = await asyncio.gather(*(scores.save_score(score=r) for r in rescored))
        for one in again:
            fetched = await scores.get_score_by_id(id=one.id)
            assert fetched is not None and fetched.score == pytest.approx(1.0) and fetched.reason == one.reason

    async def test_save_score_accepts_a_mapping_and_upserts_a_given_id(self, scores: ScoresStorage) -> None:
        first = await scores.save_score(score={**msgspec.structs.asdict(sample_score()), "id": "fixed", "score": 0.2})
        second = await scores.save_score(score={**msgspec.structs.asdict(sample_score()), "id": "fixed", "score": 0.8})
        assert first.id == second.id == "fixed"
        fetched = await scores.get_score_by_id(id="fixed")
        assert fetched is not None and fetched.score == pytest.approx(0.8)

    async def test_invalid_score_is_rejected_and_nothing_written(self, scores: ScoresStorage) -> None:
        base = msgspec.structs.asdict(sample_score(scorer_id="strict"))
        for bad in ({"score": "high"}, {"source": "PROD"}, {"scorer": None}, {"entity_id": ""}):
            with pytest.raises(ValidationError) as err:
                await scores.save_score(score={**base, **bad})
            assert err.value.category == "USER"
        missing = dict(base)
        del missing["run_id"]
        with pytest.raises(ValidationError):
            await scores.save_score(score=missing)
        assert (await scores.list_scores_by_scorer_id(scorer_id="strict")).total == 0

    async def test_list_by_scorer_with_filters(self, scores: ScoresStorage) -> None:
        scorer = uid("scorer")
        for source, entity_type in (("LIVE", "AGENT"), ("TEST", "AGENT"), ("TEST", "WORKFLOW")):
            await scores.save_score(
                score=sample_score(scorer_id=scorer, source=source, entity_type=entity_type, entity_id="e1")
            )
        assert (await scores.list_scores_by_scorer_id(scorer_id=scorer)).total == 3
        assert (await scores.list_scores_by_scorer_id(scorer_id=scorer, source="TEST")).total == 2
        assert (await scores.list_scores_by_scorer_id(scorer_id=scorer, entity_type="WORKFLOW")).total == 1
        assert (await scores.list_scores_by_scorer_id(scorer_id=scorer, entity_id="other")).total == 0
        assert (await scores.list_scores_by_scorer_id(scorer_id="nobody")).scores == []

    async def test_lists_are_newest_first_and_paginate(self, scores: ScoresStorage) -> None:
        scorer = uid("scorer")
        saved = [await scores.save_score(score=sample_score(scorer_id=scorer, reason=str(i))) for i in range(3)]
        pages = [await scores.list_scores_by_scorer_id(scorer_id=scorer, page=p, per_page=1) for p in range(3)]
        assert [p.scores[0].id for p in pages] == [s.id for s in saved[::-1]]
        assert [p.has_more for p in pages] == [True, True, False]
        everything = await scores.list_scores_by_scorer_id(scorer_id=scorer, per_page=False)
        assert (everything.per_page, everything.has_more, len(everything.scores)) == (False, False, 3)

    async def test_list_by_run_and_entity(self, scores: ScoresStorage) -> None:
        run = uid("run")
        saved = await scores.save_score(score=sample_score(run_id=run, entity_id="agent-x", entity_type="AGENT"))
        by_run = await scores.list_scores_by_run_id(run_id=run)
        assert [s.id for s in by_run.scores] == [saved.id]
        assert (by_run.total, by_run.page, by_run.per_page, by_run.has_more) == (1, 0, 100, False)
        by_entity = await scores.list_scores_by_entity_id(entity_id="agent-x", entity_type="AGENT")
        assert [s.id for s in by_entity.scores] == [saved.id]
        assert (await scores.list_scores_by_entity_id(entity_id="agent-x", entity_type="WORKFLOW")).total == 0

    async def test_list_by_span_paginates(self, scores: ScoresStorage) -> None:
        for _ in range(5):
            await scores.save_score(score=sample_score(trace_id="trace-1", span_id="span-1"))
        await scores.save_score(score=sample_score(trace_id="trace-1", span_id="span-2"))
        first = await scores.list_scores_by_span(trace_id="trace-1", span_id="span-1", page=0, per_page=2)
        middle = await scores.list_scores_by_span(trace_id="trace-1", span_id="span-1", page=1, per_page=2)
        last = await scores.list_scores_by_span(trace_id="trace-1", span_id="span-1", page=2, per_page=2)
        assert [len(p.scores) for p in (first, middle, last)] == [2, 2, 1]
        assert [p.has_more for p in (first, middle, last)] == [True, True, False]
        assert {p.total for p in (first, middle, last)} == {5}
        assert len({s.id for p in (first, middle, last) for s in p.scores}) == 5

    async def test_bad_list_input(self, scores: ScoresStorage) -> None:
        with pytest.raises(ValidationError):
            await scores.list_scores_by_scorer_id(scorer_id="")
        with pytest.raises(ValidationError):
            await scores.list_scores_by_scorer_id(scorer_id="s", source="PROD")
        with pytest.raises(ValidationError, match="perPage must be >= 0"):
            await scores.list_scores_by_run_id(run_id="r", per_page=-1)
