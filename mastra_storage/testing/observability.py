"""Conformance tests for ``ObservabilityStorage`` (reference §10 observability/index.ts)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from ..core.codec import utc_now
from ..domains import ObservabilityStorage
from ..errors import ValidationError
from ..types import SpanContext, SpanRecord, SpanUpdate
from .samples import sample_span, uid


class ObservabilityConformance:
    """Behaviour every ``ObservabilityStorage`` must have; needs a ``backend`` fixture (see package docs)."""

    @pytest.fixture
    async def observability(self, backend: Any) -> ObservabilityStorage:
        store: ObservabilityStorage = await backend.get_store("observability")
        return store

    @pytest.fixture
    async def traces(self, observability: ObservabilityStorage) -> list[SpanRecord]:
        """Four root spans a minute apart (trace-1 oldest) and an errored child in trace-1."""
        base = utc_now() - timedelta(hours=1)
        roots = [
            sample_span(
                trace_id="trace-1",
                span_type="agent_run",
                started_at=base,
                ended_at=base + timedelta(seconds=5),
                run_id="run-1",
                session_id="sess-1",
                thread_id="th-1",
                request_id="req-1",
                source="cloud",
                service_name="svc-a",
                organization_id="org-1",
                resource_id="res-1",
                tags=["prod", "eu"],
            ),
            sample_span(
                trace_id="trace-2",
                span_type="workflow_run",
                entity_type="workflow_run",
                entity_id="wf-1",
                entity_name="Flow",
                user_id="user-2",
                environment="staging",
                started_at=base + timedelta(minutes=1),
                ended_at=base + timedelta(minutes=1, seconds=1),
                error={"message": "boom"},
                tags=["prod"],
            ),
            sample_span(
                trace_id="trace-3",
                started_at=base + timedelta(minutes=2),
                ended_at=None,
                metadata={"tenant": "globex", "tier": 2},
            ),
            sample_span(
                trace_id="trace-4",
                started_at=base + timedelta(minutes=3),
                ended_at=base + timedelta(minutes=3, seconds=30),
            ),
        ]
        child = sample_span(
            trace_id="trace-1",
            parent_span_id=roots[0].span_id,
            span_type="tool_call",
            name="tool",
            started_at=base + timedelta(seconds=1),
            error={"message": "tool failed"},
        )
        await observability.batch_create_spans(spans=[*roots, child])
        return roots

    async def test_concurrent_trace_reads_each_get_their_own_trace(self, observability: ObservabilityStorage) -> None:
        # Reads in flight together (a backend may fetch them in one request) answer as one by one.
        base = utc_now() - timedelta(minutes=5)
        traces = [uid("trace") for _ in range(4)]
        spans = [
            sample_span(trace_id=t, started_at=base + timedelta(seconds=k), name=f"{t}-{k}")
            for n, t in enumerate(traces)
            for k in range(n + 1)
        ]
        await observability.batch_create_spans(spans=spans)
        expected = [await observability.get_trace(trace_id=t) for t in traces]
        asks = [*traces, traces[2], "no-such-trace"]
        got = await asyncio.gather(*(observability.get_trace(trace_id=t) for t in asks))
        assert got == [*expected, expected[2], None]
        assert [len(t.spans) for t in expected if t is not None] == [1, 2, 3, 4]
        first, again = got[2], got[4]
        assert first is not None and again is not None and first.spans[0] is not again.spans[0]

    async def test_concurrent_span_batches_each_land_whole(self, observability: ObservabilityStorage) -> None:
        # Batches in flight together (a backend may write them in one statement) land as one by one.
        base = utc_now() - timedelta(minutes=5)
        batches = [
            [sample_span(trace_id=f"batch-{uid('t')}", started_at=base + timedelta(seconds=k), name=f"quote ' {k} 🎉")]
            for k in range(10)
        ]
        for k, batch in enumerate(batches):
            batch += [sample_span(trace_id=batch[0].trace_id, parent_span_id=batch[0].span_id) for _ in range(k % 3)]
        await asyncio.gather(*(observability.batch_create_spans(spans=b) for b in batches))
        for batch in batches:
            trace = await observability.get_trace(trace_id=batch[0].trace_id)
            assert trace is not None and {s.span_id for s in trace.spans} == {s.span_id for s in batch}
            assert trace.spans[0].name == batch[0].name

    async def test_create_span_and_get_trace(self, observability: ObservabilityStorage) -> None:
        span = sample_span(input="plain string input", tags=["a", "b"], links=[{"traceId": "x"}])
        before = utc_now()
        await observability.create_span(span=span)
        trace = await observability.get_trace(trace_id=span.trace_id)
        assert trace is not None and trace.trace_id == span.trace_id
        (stored,) = trace.spans
        assert stored.created_at is not None and stored.updated_at is not None and stored.created_at >= before
        for name in (
            "name",
            "span_type",
            "entity_type",
            "entity_id",
            "entity_name",
            "user_id",
            "environment",
            "input",
            "output",
            "attributes",
            "metadata",
            "tags",
            "links",
            "started_at",
            "ended_at",
        ):
            assert getattr(stored, name) == getattr(span, name), name
        assert stored.parent_span_id is None and stored.is_event is False
        assert await observability.get_trace(trace_id="no-such-trace") is None

    async def test_span_from_mapping_and_invalid_spans(self, observability: ObservabilityStorage) -> None:
        await observability.create_span(
            span={
                "trace_id": "t-map",
                "span_id": "s",
                "name": "n",
                "span_type": "generic",
                "started_at": utc_now(),
            }
        )
        assert await observability.get_span(trace_id="t-map", span_id="s") is not None
        good = sample_span(trace_id="t-bad")
        with pytest.raises(ValidationError):
            await observability.batch_create_spans(spans=[good, {"trace_id": "t-bad", "span_id": "x", "name": "n"}])
        with pytest.raises(ValidationError):
            await observability.create_span(span=sample_span(trace_id="t-bad", span_id=""))
        assert await observability.get_trace(trace_id="t-bad") is None

    async def test_a_batch_keeps_the_last_of_a_span_given_twice(self, observability: ObservabilityStorage) -> None:
        trace_id = uid("trace")
        spans = [
            sample_span(trace_id=trace_id, span_id="s", name="first"),
            sample_span(trace_id=trace_id, span_id="t", name="other"),
            sample_span(trace_id=trace_id, span_id="s", name="last"),
        ]
        await observability.batch_create_spans(spans=spans)
        trace = await observability.get_trace(trace_id=trace_id)
        assert trace is not None and sorted((s.span_id, s.name) for s in trace.spans) == [("s", "last"), ("t", "other")]

    async def test_every_span_field_round_trips_at_and_away_from_its_default(
        self, observability: ObservabilityStorage
    ) -> None:
        # A span's JSON leaves out fields at their defaults: each must still read back as given,
        # defaults (is_event False) and every field set (is_event True) alike, alone or in a batch.
        trace_id = uid("trace")
        now = utc_now()
        bare = SpanRecord(trace_id=trace_id, span_id="bare", name="n", span_type="generic", started_at=now)
        context: dict[str, Any] = {f: f"{f}-value" for f in SpanContext.__struct_fields__}
        full = SpanRecord(
            **context, trace_id=trace_id, span_id="full", name="n", span_type="generic", started_at=now,
            is_event=True, parent_span_id="bare", ended_at=now, attributes={"a": [1]}, metadata={"m": None},
            tags=["x"], links=[{"spanId": "s"}], input="in", output=0, error={"message": "e"}, scope={"s": 1},
            request_context={"r": False},
        )  # fmt: skip
        await observability.batch_create_spans(spans=[bare, full])
        await observability.create_span(span=msgspec.structs.replace(bare, span_id="alone"))
        for span in (bare, full, msgspec.structs.replace(bare, span_id="alone")):
            stored = await observability.get_span(trace_id=trace_id, span_id=span.span_id)
            assert stored is not None
            assert msgspec.structs.replace(stored, created_at=None, updated_at=None) == span

    async def test_created_spans_are_stamped_by_the_store(self, observability: ObservabilityStorage) -> None:
        # created_at / updated_at are the store's: what the caller put there is not written.
        long_ago = datetime(2001, 1, 1, tzinfo=UTC)
        spans = [sample_span(created_at=long_ago, updated_at=long_ago) for _ in range(2)]
        before = utc_now()
        await observability.create_span(span=spans[0])
        await observability.batch_create_spans(spans=spans[1:])
        for span in spans:
            stored = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
            assert stored is not None and stored.created_at is not None and stored.created_at >= before
            assert stored.updated_at == stored.created_at
            assert span.created_at == long_ago  # the caller's record is left as it was

    async def test_span_times_are_stored_as_their_instants(self, observability: ObservabilityStorage) -> None:
        # Set after construction, so the records do not normalize them: an aware time in another
        # zone is the same instant in UTC; a naive one is UTC, cut to milliseconds.
        aware, naive = sample_span(), sample_span()
        aware.started_at = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
        aware.ended_at = datetime(2026, 3, 1, 5, 0, 1, tzinfo=timezone(timedelta(hours=-5)))
        naive.started_at = datetime(2026, 3, 1, 10, 0, 0, 456789)
        await observability.batch_create_spans(spans=[aware, naive])
        first = await observability.get_span(trace_id=aware.trace_id, span_id=aware.span_id)
        second = await observability.get_span(trace_id=naive.trace_id, span_id=naive.span_id)
        assert first is not None and second is not None
        assert first.started_at == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=UTC)
        assert first.ended_at == datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)
        assert second.started_at == datetime(2026, 3, 1, 10, 0, 0, 456000, tzinfo=UTC)
        assert first.started_at.tzinfo is UTC and second.started_at.tzinfo is UTC

    async def test_batch_create_and_hierarchy(self, observability: ObservabilityStorage) -> None:
        root = sample_span()
        children = [
            sample_span(
                trace_id=root.trace_id,
                parent_span_id=root.span_id,
                started_at=root.started_at + timedelta(seconds=i),
            )
            for i in (2, 1)
        ]
        other = sample_span()
        await observability.batch_create_spans(spans=[children[0], root, children[1], other])
        await observability.batch_create_spans(spans=[])
        trace = await observability.get_trace(trace_id=root.trace_id)
        assert trace is not None
        assert [s.span_id for s in trace.spans] == [root.span_id, children[1].span_id, children[0].span_id]
        fetched_root = await observability.get_root_span(trace_id=root.trace_id)
        assert fetched_root is not None and fetched_root.span_id == root.span_id and fetched_root.parent_span_id is None
        assert await observability.get_root_span(trace_id="none") is None
        assert await observability.get_trace(trace_id=other.trace_id) is not None

    async def test_create_span_upserts(self, observability: ObservabilityStorage) -> None:
        span = sample_span(name="first")
        await observability.create_span(span=span)
        span.name = "second"
        await observability.create_span(span=span)
        trace = await observability.get_trace(trace_id=span.trace_id)
        assert trace is not None and [s.name for s in trace.spans] == ["second"]

    async def test_get_span(self, observability: ObservabilityStorage) -> None:
        span = sample_span()
        await observability.create_span(span=span)
        fetched = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
        assert fetched is not None and fetched.span_id == span.span_id and fetched.input == span.input
        assert await observability.get_span(trace_id=span.trace_id, span_id="missing") is None
        assert await observability.get_span(trace_id="missing", span_id=span.span_id) is None

    async def test_update_span_is_partial(self, observability: ObservabilityStorage) -> None:
        span = sample_span(ended_at=None, output=None)
        await observability.create_span(span=span)
        created = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
        assert created is not None and created.updated_at is not None
        ended = span.started_at + timedelta(seconds=3)
        await observability.update_span(
            trace_id=span.trace_id,
            span_id=span.span_id,
            updates={"output": {"text": "done"}, "ended_at": ended, "name": "renamed"},
        )
        fetched = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
        assert fetched is not None and fetched.updated_at is not None
        assert (fetched.output, fetched.ended_at, fetched.name) == ({"text": "done"}, ended, "renamed")
        assert fetched.input == span.input and fetched.attributes == span.attributes
        assert fetched.updated_at >= created.updated_at
        with pytest.raises(ValidationError):
            await observability.update_span(trace_id=span.trace_id, span_id=span.span_id, updates={"trace_id": "other"})
        with pytest.raises(ValidationError):
            await observability.update_span(trace_id=span.trace_id, span_id=span.span_id, updates={"is_event": "yes"})

    async def test_batch_update_spans(self, observability: ObservabilityStorage) -> None:
        spans = [sample_span(), sample_span()]
        await observability.batch_create_spans(spans=spans)
        await observability.batch_update_spans(
            updates=[
                SpanUpdate(trace_id=spans[0].trace_id, span_id=spans[0].span_id, updates={"name": "one"}),
                {"trace_id": spans[1].trace_id, "span_id": spans[1].span_id, "updates": {"name": "two"}},
            ]
        )
        names = [await observability.get_span(trace_id=s.trace_id, span_id=s.span_id) for s in spans]
        assert [n.name if n else None for n in names] == ["one", "two"]

    async def test_updating_a_missing_span_changes_nothing(self, observability: ObservabilityStorage) -> None:
        """As in Mastra (an UPDATE that matches no row), on every backend: no error, no span made,
        and the other spans of a batch are still updated."""
        span = sample_span()
        await observability.create_span(span=span)
        await observability.update_span(trace_id="no-trace", span_id="no-span", updates={"name": "ghost"})
        await observability.batch_update_spans(
            updates=[
                {"trace_id": "no-trace", "span_id": "no-span", "updates": {"name": "ghost"}},
                {"trace_id": span.trace_id, "span_id": span.span_id, "updates": {"name": "seen"}},
            ]
        )
        assert await observability.get_span(trace_id="no-trace", span_id="no-span") is None
        fetched = await observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
        assert fetched is not None and fetched.name == "seen"

    async def test_batch_delete_traces(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        await observability.batch_delete_traces(trace_ids=["trace-1", "trace-2", "never-existed"])
        assert await observability.get_trace(trace_id="trace-1") is None
        assert await observability.get_trace(trace_id="trace-2") is None
        assert await observability.get_trace(trace_id="trace-3") is not None
        await observability.batch_delete_traces(trace_ids=[])

    async def test_list_traces_pagination(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        result = await observability.list_traces()
        assert [s.trace_id for s in result.spans] == ["trace-4", "trace-3", "trace-2", "trace-1"]
        assert (result.total, result.page, result.per_page, result.has_more) == (4, 0, 10, False)
        first = await observability.list_traces(per_page=3)
        second = await observability.list_traces(page=1, per_page=3)
        assert (len(first.spans), first.has_more, len(second.spans), second.has_more) == (3, True, 1, False)

    async def test_list_traces_empty(self, observability: ObservabilityStorage) -> None:
        result = await observability.list_traces()
        assert (result.spans, result.total) == ([], 0)

    async def test_list_traces_filters(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        async def ids(**filters: Any) -> list[str]:
            return [s.trace_id for s in (await observability.list_traces(filters=filters)).spans]

        assert await ids(span_type="workflow_run") == ["trace-2"]
        assert await ids(entity_type="workflow_run") == ["trace-2"]
        assert await ids(entity_id="wf-1") == ["trace-2"]
        assert await ids(entity_name="Flow") == ["trace-2"]
        assert await ids(user_id="user-2") == ["trace-2"]
        assert await ids(environment="staging") == ["trace-2"]
        assert await ids(run_id="run-1") == ["trace-1"]
        assert await ids(session_id="sess-1") == ["trace-1"]
        assert await ids(thread_id="th-1") == ["trace-1"]
        assert await ids(request_id="req-1") == ["trace-1"]
        assert await ids(source="cloud") == ["trace-1"]
        assert await ids(service_name="svc-a") == ["trace-1"]
        assert await ids(organization_id="org-1") == ["trace-1"]
        assert await ids(resource_id="res-1") == ["trace-1"]
        assert await ids(environment="nowhere") == []
        assert await ids(metadata={"tenant": "globex"}) == ["trace-3"]
        assert await ids(metadata={"tier": 2}) == ["trace-3"]
        assert await ids(metadata={"tier": "2"}) == []
        assert await ids(tags=["prod"]) == ["trace-2", "trace-1"]
        assert await ids(tags=["prod", "eu"]) == ["trace-1"]
        assert await ids(span_type="agent_run", environment="test", tags=["eu"]) == ["trace-1"]
        with pytest.raises(ValidationError):
            await observability.list_traces(filters={"metadata": {"bad-key": 1}})
        with pytest.raises(ValidationError):
            await observability.list_traces(filters={"unknown_field": 1})

    async def test_list_traces_status(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        result = await observability.list_traces()
        assert {s.trace_id: s.status for s in result.spans} == {
            "trace-1": "success",
            "trace-2": "error",
            "trace-3": "running",
            "trace-4": "success",
        }

        async def ids(**filters: Any) -> list[str]:
            return [s.trace_id for s in (await observability.list_traces(filters=filters)).spans]

        assert await ids(status="success") == ["trace-4", "trace-1"]
        assert await ids(status="error") == ["trace-2"]
        assert await ids(status="running") == ["trace-3"]
        assert await ids(has_child_error=True) == ["trace-1"]
        assert "trace-1" not in await ids(has_child_error=False)

    async def test_list_traces_date_ranges(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        async def ids(**filters: Any) -> list[str]:
            return [s.trace_id for s in (await observability.list_traces(filters=filters)).spans]

        assert await ids(started_at={"start": traces[1].started_at, "end": traces[2].started_at}) == [
            "trace-3",
            "trace-2",
        ]
        assert await ids(started_at={"start": traces[2].started_at}) == ["trace-4", "trace-3"]
        assert await ids(started_at={"start": traces[2].started_at, "start_exclusive": True}) == ["trace-4"]

    async def test_list_traces_ordering(self, observability: ObservabilityStorage, traces: list[SpanRecord]) -> None:
        async def ids(**kw: Any) -> list[str]:
            return [s.trace_id for s in (await observability.list_traces(**kw)).spans]

        assert await ids(direction="ASC") == ["trace-1", "trace-2", "trace-3", "trace-4"]
        assert await ids(order_by="ended_at") == ["trace-3", "trace-4", "trace-2", "trace-1"]
        assert await ids(order_by="ended_at", direction="ASC") == ["trace-1", "trace-2", "trace-4", "trace-3"]
        with pytest.raises(ValidationError):
            await observability.list_traces(order_by="name")  # type: ignore[arg-type]

    async def test_root_filter_ignores_children(
        self, observability: ObservabilityStorage, traces: list[SpanRecord]
    ) -> None:
        assert [s.trace_id for s in (await observability.list_traces(filters={"span_type": "tool_call"})).spans] == []
        unrelated = uid("trace")
        assert await observability.get_root_span(trace_id=unrelated) is None
