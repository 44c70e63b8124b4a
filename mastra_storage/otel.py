"""OpenTelemetry in: an OpenTelemetry ``SpanExporter`` that writes spans into any ``ObservabilityStorage``.

```python
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from mastra_storage.otel import StorageSpanExporter

async def main(store):                        # inside the event loop the store is used from
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(StorageSpanExporter(store.observability)))
    trace.set_tracer_provider(provider)
```

Each OpenTelemetry span becomes one Mastra span record: trace, span and parent ids (hex), name,
start and end, status (an ERROR status, or an ``exception`` event, becomes ``error``), attributes,
events and links, the instrumentation scope and the resource's ``service.name``. The GenAI semantic
conventions are mapped to Mastra's span types — ``gen_ai.operation.name`` ``invoke_agent`` /
``create_agent`` → ``agent_run``, ``chat`` / ``text_completion`` / ``generate_content`` →
``model_generation``, ``execute_tool`` → ``tool_call``, a ``workflow.step`` span → ``workflow_step``,
anything else ``generic`` — with the agent, tool or model as the span's entity, token usage as
``attributes.usage`` and ``gen_ai.input.messages`` / ``gen_ai.output.messages`` as input and output.

**Threads.** ``export`` is called from the span processor's own thread (``BatchSpanProcessor``): it
hands the batch to the event loop the store belongs to (the running loop when the exporter is made,
or ``loop=``) and waits for the write, never blocking that loop. Made outside any loop, the exporter
runs a private loop on its own thread, and the store must then be used only through it. Called on the
loop's own thread (``SimpleSpanProcessor`` in async code), the write is scheduled as a task and
``force_flush`` cannot wait for it there — use ``BatchSpanProcessor``. ``force_flush()`` and
``shutdown()`` return once every batch handed over has been written.

Needs ``pip install mastra-storage[otel]``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .domains import ObservabilityStorage
from .types import SpanRecord

try:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import StatusCode
except ImportError as exc:  # pragma: no cover - exercised by the import-error test in a subprocess
    raise ImportError("mastra_storage.otel needs the OpenTelemetry SDK: pip install 'mastra-storage[otel]'") from exc

__all__ = ["StorageSpanExporter", "to_span_record"]

log = logging.getLogger(__name__)

_SPAN_TYPES = {
    "invoke_agent": "agent_run",
    "create_agent": "agent_run",
    "chat": "model_generation",
    "text_completion": "model_generation",
    "generate_content": "model_generation",
    "embeddings": "model_generation",
    "execute_tool": "tool_call",
}


_SCALARS = (str, int, bool)


def _json(value: Any) -> Any:
    """An attribute value as a JSON value (OpenTelemetry allows tuples and non-finite floats)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    return value


def _plain(attributes: Any) -> Mapping[str, Any]:
    """The SDK's BoundedAttributes as the dict it wraps (reading it as a generic Mapping costs a
    Python call per key, most of a span's mapping time); anything else as it is."""
    if attributes is None:
        return {}
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def _when(nanos: int | None) -> datetime | None:
    # Whole milliseconds already (what the store keeps), so the record has nothing to normalize.
    return None if nanos is None else datetime.fromtimestamp(nanos // 1_000_000 / 1000, UTC)


def _parsed(text: Any) -> Any:
    if not isinstance(text, str):
        return _json(text)
    try:
        return _json(json.loads(text))
    except ValueError:
        return text


def to_span_record(span: ReadableSpan) -> SpanRecord:
    """One OpenTelemetry span as a Mastra span record (see the module docstring for the mapping)."""
    attrs = {key: _json(value) for key, value in _plain(span.attributes).items()}
    resource = _plain(span.resource.attributes) if span.resource is not None else {}
    operation = attrs.get("gen_ai.operation.name")
    span_type = _SPAN_TYPES.get(str(operation), "workflow_step" if "workflow.step" in attrs else "generic")
    entity_type = entity_id = entity_name = None
    if span_type == "agent_run":
        entity_type, entity_id, entity_name = "agent", attrs.get("gen_ai.agent.id"), attrs.get("gen_ai.agent.name")
    elif span_type == "tool_call":
        entity_type, entity_id, entity_name = "tool", attrs.get("gen_ai.tool.call.id"), attrs.get("gen_ai.tool.name")
    elif span_type == "model_generation":
        entity_type, entity_name = "model", attrs.get("gen_ai.response.model") or attrs.get("gen_ai.request.model")
        attrs["model"] = entity_name
        attrs["provider"] = attrs.get("gen_ai.provider.name") or attrs.get("gen_ai.system")
        usage = {
            "inputTokens": attrs.get("gen_ai.usage.input_tokens"),
            "outputTokens": attrs.get("gen_ai.usage.output_tokens"),
        }
        if any(v is not None for v in usage.values()):
            usage["totalTokens"] = sum(v for v in usage.values() if isinstance(v, int))
            attrs["usage"] = usage
    events: list[dict[str, Any]] = [
        {"name": e.name, "timestamp": (_when(e.timestamp) or datetime.now(UTC)).isoformat(),
         "attributes": {k: _json(v) for k, v in _plain(e.attributes).items()}}
        for e in span.events
    ]  # fmt: skip
    error = None
    failure = next((e for e in events if e["name"] == "exception"), None)
    if span.status.status_code is StatusCode.ERROR or failure is not None:
        details: dict[str, Any] = failure["attributes"] if failure else {}
        error = {
            "message": span.status.description or details.get("exception.message") or "error",
            "name": details.get("exception.type"),
            "stack": details.get("exception.stacktrace"),
        }
    scope = span.instrumentation_scope
    context = span.get_span_context()
    assert context is not None  # every recorded span has one
    links = [
        {"traceId": format(link.context.trace_id, "032x"), "spanId": format(link.context.span_id, "016x"),
         "attributes": {k: _json(v) for k, v in _plain(link.attributes).items()}}
        for link in span.links
    ]  # fmt: skip
    return SpanRecord(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        parent_span_id=format(span.parent.span_id, "016x") if span.parent is not None else None,
        name=span.name,
        span_type=span_type,
        started_at=_when(span.start_time) or datetime.now(UTC),
        ended_at=_when(span.end_time),
        attributes=attrs,
        input=_parsed(attrs.get("gen_ai.input.messages")) if "gen_ai.input.messages" in attrs else None,
        output=_parsed(attrs.get("gen_ai.output.messages")) if "gen_ai.output.messages" in attrs else None,
        error=error,
        metadata={"otel": {"kind": span.kind.name, **({"events": events} if events else {})}},
        links=links or None,
        scope={"name": scope.name, "version": scope.version} if scope is not None else None,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        entity_name=str(entity_name) if entity_name is not None else None,
        service_name=_str(resource.get("service.name")),
        environment=_str(resource.get("deployment.environment.name") or resource.get("deployment.environment")),
        thread_id=_str(attrs.get("gen_ai.conversation.id")),
        session_id=_str(attrs.get("session.id")),
        user_id=_str(attrs.get("user.id") or attrs.get("enduser.id")),
        source="opentelemetry",
    )  # fmt: skip


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


class StorageSpanExporter(SpanExporter):
    """Writes OpenTelemetry spans into ``observability`` (any ``ObservabilityStorage``)."""

    def __init__(
        self,
        observability: ObservabilityStorage,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._store = observability
        self._timeout = timeout
        self._pending: set[concurrent.futures.Future[None] | asyncio.Future[None]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop here: run a private one
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="mastra-otel-export", daemon=True)
                self._thread.start()
        self._loop = loop

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            records = [to_span_record(span) for span in spans]
        except Exception:
            log.exception("mastra_storage: could not map %d OpenTelemetry spans", len(spans))
            return SpanExportResult.FAILURE
        write = self._store.batch_create_spans(spans=records)
        if self._on_loop_thread():
            task = self._loop.create_task(write)  # cannot wait here: the loop would stop
            self._track(task)  # its failure is logged when it ends (see _untrack)
            return SpanExportResult.SUCCESS
        try:
            future = asyncio.run_coroutine_threadsafe(write, self._loop)
        except RuntimeError:  # the store's loop is closed
            write.close()
            log.error("mastra_storage: the event loop of the store is closed; %d spans dropped", len(records))
            return SpanExportResult.FAILURE
        self._track(future)
        try:
            future.result(self._timeout)
        except Exception:
            log.exception("mastra_storage: could not store %d OpenTelemetry spans", len(records))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """True once every batch handed over so far has been written (off the store's loop thread)."""
        with self._lock:
            pending = [f for f in self._pending if isinstance(f, concurrent.futures.Future)]
        return not concurrent.futures.wait(pending, timeout=timeout_millis / 1000).not_done

    def shutdown(self) -> None:
        self.force_flush()
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._timeout)
            self._thread = None

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _track(self, future: concurrent.futures.Future[None] | asyncio.Future[None]) -> None:
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: Any) -> None:
        with self._lock:
            self._pending.discard(future)
        # A task's failure is retrieved and logged here (nobody awaits a write scheduled from the
        # loop's own thread); a thread-side future's failure is reported by export itself.
        if isinstance(future, asyncio.Task) and not future.cancelled() and future.exception() is not None:
            log.error("mastra_storage: could not store OpenTelemetry spans: %s", future.exception())
