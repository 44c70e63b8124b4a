"""The value contract, property-based (hypothesis): every backend stores every valid JSON value and
gives it back equal; every invalid value is a ``ValidationError`` and leaves nothing written.

Payloads are JSON values — objects with string keys, arrays (a tuple is taken as an array), strings,
booleans, null, integers (any size), finite floats — nested at most 64 deep. No
string holds NUL or a lone surrogate; ids are at most 256 UTF-8 bytes; timestamps are in the years
1000-9999. Numbers compare by value (``1.0`` may read back as ``1``).

One class per domain (a backend subclasses those it serves), each with a ``backend`` fixture.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..core.codec import utc_now
from ..core.validate import MAX_JSON_DEPTH
from ..domains import AgentsStorage, MemoryStorage, ObservabilityStorage, ScoresStorage, WorkflowsStorage
from ..errors import ValidationError
from ..types import Message, StorageThread
from .samples import sample_agent, sample_score, sample_span, sample_thread, uid

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.integers(min_value=2**63, max_value=2**80)
TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)
SCALARS = st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=16
)
JSON_OBJECTS = st.dictionaries(TEXT, JSON_VALUES, max_size=5)


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


BAD_LEAVES = st.sampled_from(
    [
        float("nan"), float("inf"), float("-inf"), b"bytes", datetime(2026, 1, 1, tzinfo=UTC), Decimal("1.5"),
        uuid.UUID(int=1), {1, 2}, frozenset({"a"}), object(), "NUL\x00inside", "lone \ud800 surrogate",
        {1: "int key"}, {"ok": {("tuple", "key"): 1}}, _deep(MAX_JSON_DEPTH + 5),
    ]
)  # fmt: skip
# A bad value alone, or hidden somewhere inside an otherwise valid object.
BAD_OBJECTS = st.one_of(
    st.builds(lambda good, bad: {**good, "bad": bad}, JSON_OBJECTS, BAD_LEAVES),
    st.builds(lambda good, bad: {"nested": [good, {"deeper": bad}]}, JSON_OBJECTS, BAD_LEAVES),
)
# The suite's tests run from one subclass per backend by design: differing executors are expected.
SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]
EXAMPLES = settings(max_examples=25, deadline=None, suppress_health_check=[*SUPPRESSED, HealthCheck.too_slow])
NEGATIVE_AGES: st.SearchStrategy[Any] = st.sampled_from(
    [-1, 0, "-1d", timedelta(days=-1), timedelta(0), {"max_age": -1}, None, "soon", []]
)


def same(stored: Any, given: Any) -> bool:
    """Equal as JSON: tuples are arrays, and numbers compare by value."""
    if isinstance(given, tuple):
        given = list(given)
    if isinstance(given, dict) and isinstance(stored, dict):
        return stored.keys() == given.keys() and all(same(stored[k], given[k]) for k in given)
    if isinstance(given, list) and isinstance(stored, list):
        return len(stored) == len(given) and all(same(s, g) for s, g in zip(stored, given, strict=True))
    if isinstance(given, bool) or isinstance(stored, bool):
        return stored is given
    if isinstance(given, float):  # PostgreSQL's jsonb may give 1e308 back as its integer digits
        return isinstance(stored, int | float) and float(stored) == given
    return bool(stored == given)


class MemoryValues:
    @pytest.fixture
    async def memory(self, backend: Any) -> MemoryStorage:
        store: MemoryStorage = await backend.get_store("memory")
        return store

    @EXAMPLES
    @given(metadata=JSON_OBJECTS)
    async def test_thread_metadata_round_trips(self, memory: MemoryStorage, metadata: dict[str, Any]) -> None:
        thread = await memory.save_thread(thread=sample_thread(metadata=metadata))
        read = await memory.get_thread_by_id(thread_id=thread.id)
        assert read is not None and same(read.metadata, metadata)

    @EXAMPLES
    @given(metadata=BAD_OBJECTS, as_mapping=st.booleans())
    async def test_bad_thread_metadata_is_rejected_and_nothing_written(
        self, memory: MemoryStorage, metadata: dict[str, Any], as_mapping: bool
    ) -> None:
        thread_id = uid("thread")
        fields: dict[str, Any] = {"id": thread_id, "resource_id": "r", "title": "t", "metadata": metadata}
        with pytest.raises(ValidationError):
            await memory.save_thread(thread=fields if as_mapping else StorageThread(**fields))
        assert await memory.get_thread_by_id(thread_id=thread_id) is None

    @EXAMPLES
    @given(part=JSON_VALUES, bad=BAD_LEAVES)
    async def test_a_batch_with_one_bad_message_writes_nothing(
        self, memory: MemoryStorage, part: Any, bad: Any
    ) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        good = [
            Message(id=uid("m"), thread_id=thread.id, resource_id=thread.resource_id, role="user", type="v2",
                    created_at=utc_now(), content={"format": 2, "parts": [{"type": "data", "data": part}]})
            for _ in range(3)
        ]  # fmt: skip
        bad_message = {**{f: getattr(good[0], f) for f in good[0].__struct_fields__}, "id": uid("m")}
        bad_message["content"] = {"format": 2, "parts": [{"type": "data", "data": bad}]}
        with pytest.raises(ValidationError):
            await memory.save_messages(messages=[*good, bad_message])
        assert (await memory.list_messages(thread_id=thread.id)).total == 0
        saved = await memory.save_messages(messages=good)
        (read, *_) = await memory.list_messages_by_id(message_ids=[good[0].id])
        assert len(saved) == 3 and same(read.content["parts"][0]["data"], part)

    async def test_bad_ids_and_timestamps_are_rejected(self, memory: MemoryStorage) -> None:
        for bad_id in ("a\x00b", "x" * 257, "\ud800", "é" * 129, " ", "#" * 86, "%" * 86):
            with pytest.raises(ValidationError):
                await memory.save_thread(thread={"id": bad_id, "resource_id": "r", "title": "t"})
        for bad_time in ("yesterday", 1_700_000_000, b"2026", datetime(999, 12, 31, tzinfo=UTC)):
            with pytest.raises(ValidationError):
                StorageThread(id="t", resource_id="r", title="t", created_at=bad_time)  # type: ignore[arg-type]
            with pytest.raises(ValidationError):
                await memory.save_thread(
                    thread={"id": uid("t"), "resource_id": "r", "title": "t", "created_at": bad_time}
                )
        for long_ok in ("x" * 256, "#" * 85, "%" * 42 + "#" * 43):  # the same on every backend
            await memory.save_thread(thread={"id": long_ok, "resource_id": long_ok, "title": "t"})
            assert await memory.get_thread_by_id(thread_id=long_ok) is not None

    @settings(max_examples=9, deadline=None, suppress_health_check=SUPPRESSED)
    @given(age=NEGATIVE_AGES)
    async def test_prune_rejects_ages_that_are_not_positive(self, memory: MemoryStorage, age: Any) -> None:
        thread = await memory.save_thread(thread=sample_thread(created_at=utc_now() - timedelta(days=400)))
        with pytest.raises(ValidationError):
            await memory.prune(retention={"memory": {"threads": age}})
        for retention in (None, "30d", {"memory": "30d"}, {"memory": {"nope": "1d"}}):
            with pytest.raises(ValidationError):
                await memory.prune(retention=retention)  # type: ignore[arg-type]
        assert await memory.get_thread_by_id(thread_id=thread.id) is not None


class WorkflowsValues:
    @pytest.fixture
    async def workflows(self, backend: Any) -> WorkflowsStorage:
        store: WorkflowsStorage = await backend.get_store("workflows")
        return store

    @EXAMPLES
    @given(snapshot=JSON_OBJECTS)
    async def test_snapshots_round_trip(self, workflows: WorkflowsStorage, snapshot: dict[str, Any]) -> None:
        run_id = uid("run")
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id=run_id, snapshot=snapshot)
        assert same(await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id), snapshot)

    @EXAMPLES
    @given(snapshot=BAD_OBJECTS)
    async def test_bad_snapshots_are_rejected(self, workflows: WorkflowsStorage, snapshot: dict[str, Any]) -> None:
        run_id = uid("run")
        with pytest.raises(ValidationError):
            await workflows.persist_workflow_snapshot(workflow_name="wf", run_id=run_id, snapshot=snapshot)
        with pytest.raises(ValidationError):
            await workflows.update_workflow_results(
                workflow_name="wf", run_id=run_id, step_id="s", result=snapshot, request_context={}
            )
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id) is None

    async def test_a_wrong_expected_status_is_rejected(self, workflows: WorkflowsStorage) -> None:
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="guarded", snapshot={"status": "running"})
        for expected in (0, [1], {"running": True}):
            with pytest.raises(ValidationError):
                await workflows.update_workflow_state(
                    workflow_name="wf",
                    run_id="guarded",
                    updates={"status": "success"},
                    expected_status=expected,  # type: ignore[arg-type]
                )
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id="guarded") == {"status": "running"}


class ScoresValues:
    @pytest.fixture
    async def scores(self, backend: Any) -> ScoresStorage:
        store: ScoresStorage = await backend.get_store("scores")
        return store

    @EXAMPLES
    @given(output=JSON_VALUES, score=st.floats(allow_nan=False, allow_infinity=False))
    async def test_scores_round_trip(self, scores: ScoresStorage, output: Any, score: float) -> None:
        scorer = f"scorer-{uuid.uuid4()}"
        saved = await scores.save_score(score=sample_score(scorer_id=scorer, output=output, score=score))
        read = await scores.get_score_by_id(id=saved.id)
        assert read is not None and same(read.output, output) and read.score == score
        (listed,) = (await scores.list_scores_by_scorer_id(scorer_id=scorer)).scores
        assert listed == read  # a page decodes its rows as a read by id does

    @EXAMPLES
    @given(bad=BAD_LEAVES, where=st.sampled_from(["output", "metadata", "score"]))
    async def test_bad_scores_are_rejected(self, scores: ScoresStorage, bad: Any, where: str) -> None:
        scorer = uid("scorer")
        value = {"x": bad} if where == "metadata" else bad
        with pytest.raises(ValidationError):
            await scores.save_score(score=sample_score(scorer_id=scorer, **{where: value}))
        assert (await scores.list_scores_by_scorer_id(scorer_id=scorer)).total == 0


class ObservabilityValues:
    @pytest.fixture
    async def observability(self, backend: Any) -> ObservabilityStorage:
        store: ObservabilityStorage = await backend.get_store("observability")
        return store

    @EXAMPLES
    @given(attributes=JSON_OBJECTS)
    async def test_span_attributes_round_trip(self, observability: ObservabilityStorage, attributes: Any) -> None:
        span = sample_span(attributes=attributes)
        await observability.create_span(span=span)
        read = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
        assert read is not None and same(read.attributes, attributes)

    @EXAMPLES
    @given(bad=BAD_OBJECTS)
    async def test_a_batch_with_one_bad_span_writes_nothing(
        self, observability: ObservabilityStorage, bad: Any
    ) -> None:
        trace_id = uid("trace")
        spans = [sample_span(trace_id=trace_id) for _ in range(3)]
        spans[1] = sample_span(trace_id=trace_id, attributes=bad)
        with pytest.raises(ValidationError):
            await observability.batch_create_spans(spans=spans)
        assert await observability.get_trace(trace_id=trace_id) is None

    async def test_prune_rejects_bad_retention(self, observability: ObservabilityStorage) -> None:
        span = sample_span(started_at=utc_now() - timedelta(days=400))
        await observability.create_span(span=span)
        for retention in ({"observability": {"spans": -1}}, {"observability": {"spans": "0d"}}, None, "7d"):
            with pytest.raises(ValidationError):
                await observability.prune(retention=retention)  # type: ignore[arg-type]
        assert await observability.get_span(trace_id=span.trace_id, span_id=span.span_id) is not None


class AgentsValues:
    @pytest.fixture
    async def agents(self, backend: Any) -> AgentsStorage:
        store: AgentsStorage = await backend.get_store("agents")
        return store

    async def test_wrong_typed_fields_are_rejected_not_coerced(self, agents: AgentsStorage) -> None:
        agent = await agents.create(agent=sample_agent(metadata={"v": 1}))
        for bad in ({"author_id": 500}, {"author_id": b"bytes"}, {"visibility": ["x"]}, {"active_version_id": 0},
                    {"status": "gone"}, {"metadata": {"when": datetime(2026, 1, 1, tzinfo=UTC)}}):  # fmt: skip
            with pytest.raises(ValidationError):
                await agents.update(id=agent.id, **bad)
        assert await agents.get_by_id(id=agent.id) == agent
        for config in ({"instructions": float("nan")}, {"model": {"provider": b"x"}}, {"tools": {1: "x"}}):
            with pytest.raises(ValidationError):
                await agents.create_version(agent_id=agent.id, config=config)
        assert await agents.count_versions(agent_id=agent.id) == 1


class TraceFilterValues:
    """Metadata filters on traces compare values the same way on every backend: strings exactly
    (newlines and control characters included), numbers by value, booleans never as numbers, and
    ``None`` only where the key holds null."""

    @pytest.fixture
    async def observability(self, backend: Any) -> ObservabilityStorage:
        store: ObservabilityStorage = await backend.get_store("observability")
        return store

    async def test_metadata_filters_compare_values(self, observability: ObservabilityStorage) -> None:
        tenant = uid("tenant")
        root = sample_span(metadata={"tenant": tenant, "s": 'line\nnext\u0001"q"', "n": 1.0, "b": True, "z": None})
        await observability.create_span(span=root)

        async def hits(**metadata: Any) -> int:
            found = await observability.list_traces(filters={"metadata": {"tenant": tenant, **metadata}})
            return len(found.spans)

        assert await hits() == 1
        assert await hits(s='line\nnext\u0001"q"') == 1 and await hits(s="line") == 0
        assert await hits(n=1) == 1 and await hits(n=1.0) == 1 and await hits(n=2) == 0 and await hits(n="1") == 0
        assert await hits(b=True) == 1 and await hits(b=1) == 0 and await hits(b="true") == 0
        assert await hits(z=None) == 1 and await hits(missing=None) == 0 and await hits(z=0) == 0
