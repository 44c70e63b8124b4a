"""OpenTelemetry in, with the real opentelemetry-sdk: spans made by a tracer, exported by a
``BatchSpanProcessor`` on its own thread through ``StorageSpanExporter``, read back with ``get_trace``."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import apsw
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Status, StatusCode

from mastra_storage.libsql import LibSQLStore
from mastra_storage.otel import StorageSpanExporter

from .loop_ticker import ticker


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LibSQLStore]:
    async with LibSQLStore(id="otel", url=f"file:{tmp_path / 'otel.db'}") as s:
        yield s


def provider_for(exporter: SpanExporter, **options: Any) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, **options))
    return provider


async def test_a_nested_agent_trace_reads_back_as_the_same_tree(store: LibSQLStore) -> None:
    provider = provider_for(StorageSpanExporter(store.observability))
    tracer = provider.get_tracer("my-agent-framework", "1.2.3")
    with tracer.start_as_current_span("invoke_agent support", attributes={
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support", "gen_ai.agent.id": "a-1",
        "gen_ai.conversation.id": "thread-9",
    }) as agent:  # fmt: skip
        with tracer.start_as_current_span("chat gpt-4o", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o", "gen_ai.system": "openai",
            "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
            "gen_ai.input.messages": '[{"role": "user", "content": "where is my order?"}]',
        }):  # fmt: skip
            pass
        with tracer.start_as_current_span("execute_tool lookup_order", attributes={
            "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order", "retries": (1, 2),
            "ratio": float("nan"),
        }) as tool:  # fmt: skip
            tool.record_exception(ValueError("order service down"))
            tool.set_status(Status(StatusCode.ERROR, "order service down"))
        agent.add_event("handoff", {"to": "human"})
    # force_flush blocks until the export thread has written: never on the store's loop thread.
    assert await asyncio.to_thread(provider.force_flush)

    trace_id = format(agent.get_span_context().trace_id, "032x")
    trace = await store.observability.get_trace(trace_id=trace_id)
    assert trace is not None
    by_name = {s.name: s for s in trace.spans}
    root, model, tool_span = (
        by_name["invoke_agent support"],
        by_name["chat gpt-4o"],
        by_name["execute_tool lookup_order"],
    )
    assert root.parent_span_id is None and root.span_type == "agent_run"
    assert (root.entity_type, root.entity_id, root.entity_name, root.thread_id) == (
        "agent",
        "a-1",
        "support",
        "thread-9",
    )
    assert model.parent_span_id == root.span_id == tool_span.parent_span_id
    assert model.span_type == "model_generation" and model.entity_name == "gpt-4o"
    assert model.attributes["usage"] == {"inputTokens": 120, "outputTokens": 30, "totalTokens": 150}
    assert model.input == [{"role": "user", "content": "where is my order?"}]
    assert tool_span.span_type == "tool_call" and tool_span.entity_name == "lookup_order"
    assert tool_span.error["message"] == "order service down" and tool_span.error["name"] == "ValueError"
    assert tool_span.attributes["retries"] == [1, 2] and tool_span.attributes["ratio"] == "nan"
    assert root.metadata is not None and root.metadata["otel"]["events"][0]["name"] == "handoff"
    assert {s.service_name for s in trace.spans} == {"support-bot"}
    assert root.scope == {"name": "my-agent-framework", "version": "1.2.3"}
    assert root.started_at <= model.started_at and root.ended_at is not None
    roots = await store.observability.list_traces(filters={"entity_name": "support"})
    assert [s.trace_id for s in roots.spans] == [trace_id]
    assert roots.spans[0].status == "success"
    provider.shutdown()


class NullExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def longest_stall_while_tracing(exporter: SpanExporter) -> tuple[float, set[str]]:
    """10,000 spans (100 traces) made on the loop and exported by a BatchSpanProcessor's thread,
    while a ticker measures how long the loop is held up; returns (longest stall, trace ids)."""
    provider = provider_for(exporter, max_queue_size=20_000, schedule_delay_millis=50)
    tracer = provider.get_tracer("load")
    trace_ids = set()
    async with ticker() as delays:
        for t in range(100):
            with tracer.start_as_current_span(f"root {t}") as root:
                trace_ids.add(format(root.get_span_context().trace_id, "032x"))
                for i in range(99):
                    with tracer.start_as_current_span(f"child {i}", attributes={"i": i}):
                        pass
            await asyncio.sleep(0)  # the application goes on doing its own work
        assert await asyncio.to_thread(provider.force_flush)
    await asyncio.to_thread(provider.shutdown)
    return max(delays), trace_ids


async def test_ten_thousand_spans_arrive_complete_and_the_loop_stays_free(store: LibSQLStore) -> None:
    # The same tracing with an exporter that does nothing: what the SDK and the process (a full
    # garbage collection over the 10,000 queued spans takes ~35 ms here) cost the loop anyway.
    # The machine itself pauses at random (344 ms once in a CI run whose baseline was 23 ms); an
    # exporter that holds the loop does so on every run, so the best of three runs is judged.
    runs = []
    for _ in range(3):
        baseline, _ = await longest_stall_while_tracing(NullExporter())
        stall, trace_ids = await longest_stall_while_tracing(StorageSpanExporter(store.observability))
        print(f"longest loop stall {stall * 1000:.1f} ms (no-op exporter: {baseline * 1000:.1f} ms)")
        runs.append((stall - baseline * 1.2, stall))
        if stall < baseline * 1.2 + 0.03:  # 30 ms over the baseline, and a fifth more for a slow machine
            break
    excess, stall = min(runs)
    assert excess < 0.03, f"exporting held the loop up in each of {len(runs)} runs (best: {stall * 1000:.0f} ms)"
    stored = 0
    for trace_id in trace_ids:
        trace = await store.observability.get_trace(trace_id=trace_id)
        assert trace is not None
        stored += len(trace.spans)
    assert stored == 10_000


def test_an_exporter_made_outside_any_loop_runs_its_own(tmp_path: Path) -> None:
    """A synchronous application: the exporter's private loop owns the store's calls."""
    url = f"file:{tmp_path / 'sync.db'}"
    store = LibSQLStore(id="sync", url=url)
    exporter = StorageSpanExporter(store.observability)
    provider = provider_for(exporter)
    with provider.get_tracer("sync").start_as_current_span("job") as span:
        pass
    assert provider.force_flush()
    provider.shutdown()  # stops the private loop after the last write

    async def read() -> int:
        async with LibSQLStore(id="read", url=url) as check:
            trace = await check.observability.get_trace(trace_id=format(span.get_span_context().trace_id, "032x"))
            return len(trace.spans) if trace else 0

    assert asyncio.run(read()) == 1


def test_importing_without_the_sdk_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['opentelemetry.sdk.trace'] = None; import mastra_storage; import mastra_storage.otel"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install 'mastra-storage[otel]'" in proc.stderr


async def test_a_failed_write_scheduled_from_the_loop_thread_is_logged_not_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On the loop's own thread (SimpleSpanProcessor in async code) the write runs as a task: its
    failure is logged by the exporter, never left as an unretrieved task exception."""
    path = tmp_path / "broken.db"
    store = LibSQLStore(id="broken", url=f"file:{path}")
    await store.init()
    apsw.Connection(str(path)).execute("DROP TABLE mastra_ai_spans")  # every span write now fails
    exporter = StorageSpanExporter(store.observability)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("lost"):
        pass
    scheduled = [t for t in exporter._pending if isinstance(t, asyncio.Task)]
    assert len(scheduled) == 1 == len(exporter._pending)
    # The exporter's done-callback was registered first, so it has run when wait returns.
    await asyncio.wait(scheduled)
    gc.collect()
    messages = [r.getMessage() for r in caplog.records]
    assert any("could not store OpenTelemetry spans" in m for m in messages), messages
    assert not any("never retrieved" in m for m in messages), messages
    await store.close()
