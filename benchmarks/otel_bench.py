"""OpenTelemetry spans through ``StorageSpanExporter`` into the embedded default.

10,000 real SDK spans (100 agent traces: a root and 99 model-call children with GenAI attributes)
exported in batches of 512 from a worker thread, as a ``BatchSpanProcessor`` would; the figure is
the best of 3 runs and covers the mapping, the value-contract checks and the write.

    python -m benchmarks.otel_bench [--quick] [--markdown FILE]
"""

from __future__ import annotations

import asyncio
import tempfile
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mastra_storage.libsql import LibSQLStore
from mastra_storage.otel import StorageSpanExporter

from .harness import arguments, publish


def make_spans(traces: int) -> list[object]:
    recorded = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(recorded))
    tracer = provider.get_tracer("bench")
    for _ in range(traces):
        with tracer.start_as_current_span("invoke_agent", attributes={"gen_ai.operation.name": "invoke_agent"}):
            for i in range(99):
                attributes: dict[str, str | int] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                              "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 20}  # fmt: skip
                with tracer.start_as_current_span("chat", attributes=attributes):
                    pass
    return list(recorded.get_finished_spans())


async def main() -> None:
    args = arguments(__doc__ or "", quick="1,000 spans instead of 10,000")
    spans = make_spans(10 if args.quick else 100)
    best = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        async with LibSQLStore(id="otel", url=f"file:{tmp}/otel.db") as store:
            exporter = StorageSpanExporter(store.observability)

            def export_all() -> None:
                for k in range(0, len(spans), 512):
                    assert exporter.export(spans[k : k + 512]) is SpanExportResult.SUCCESS  # type: ignore[arg-type]

            for _ in range(3):
                start = time.perf_counter()
                await asyncio.to_thread(export_all)
                best = max(best, len(spans) / (time.perf_counter() - start))
    publish(f"StorageSpanExporter → LibSQLStore (file, WAL): {best:,.0f} spans/s ({len(spans):,} spans)", args.markdown)


if __name__ == "__main__":
    asyncio.run(main())
