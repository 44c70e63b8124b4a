"""Sample records for the conformance suite, shaped like Mastra's test fixtures (reference §10)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from ..core.codec import utc_now
from ..types import Message, ScorePayload, SpanRecord, StorageResource, StorageThread


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def sample_thread(*, resource_id: str | None = None, **overrides: Any) -> StorageThread:
    now = utc_now()
    fields: dict[str, Any] = {
        "id": uid("thread"),
        "resource_id": resource_id or uid("resource"),
        "title": "Test Thread",
        "metadata": {"key": "value"},
        "created_at": now,
        "updated_at": now,
    }
    return StorageThread(**{**fields, **overrides})


def sample_message(
    thread: StorageThread,
    *,
    text: str | None = None,
    created_at: datetime | None = None,
    resource_id: str | None = None,
    role: str = "user",
    metadata: dict[str, Any] | None = None,
) -> Message:
    body = text if text is not None else f"Sample content {uuid.uuid4()}"
    content: dict[str, Any] = {"format": 2, "parts": [{"type": "text", "text": body}], "content": body}
    if metadata is not None:
        content["metadata"] = metadata
    return Message(
        id=str(uuid.uuid4()),
        role=role,
        content=content,
        created_at=created_at or utc_now(),
        thread_id=thread.id,
        resource_id=resource_id or thread.resource_id,
        type="v2",
    )


def timed_messages(
    thread: StorageThread, count: int, *, start: datetime | None = None, step_s: int = 1
) -> list[Message]:
    """``count`` messages one ``step_s`` apart, oldest first, texts ``message 0`` … ``message N``."""
    base = start or utc_now()
    return [
        sample_message(thread, text=f"message {i}", created_at=base + timedelta(seconds=step_s * (i + 1)))
        for i in range(count)
    ]


def sample_resource(**overrides: Any) -> StorageResource:
    now = utc_now()
    fields: dict[str, Any] = {
        "id": uid("resource"),
        "working_memory": "Sample working memory content",
        "metadata": {"key": "value", "test": True},
        "created_at": now,
        "updated_at": now,
    }
    return StorageResource(**{**fields, **overrides})


def sample_snapshot(status: str, *, step_id: str | None = None, run_id: str | None = None) -> dict[str, Any]:
    now_ms = int(utc_now().timestamp() * 1000)
    step = step_id or uid("step")
    return {
        "runId": run_id or uid("run"),
        "status": status,
        "value": {},
        "context": {
            "input": {},
            step: {"status": status, "payload": {}, "startedAt": now_ms, "endedAt": now_ms},
        },
        "activePaths": [],
        "activeStepsPath": {},
        "suspendedPaths": {},
        "resumeLabels": {},
        "waitingPaths": {},
        "serializedStepGraph": [],
        "timestamp": now_ms,
    }


def sample_score(*, scorer_id: str | None = None, **overrides: Any) -> ScorePayload:
    fields: dict[str, Any] = {
        "scorer_id": scorer_id or uid("scorer"),
        "entity_id": uid("entity"),
        "entity_type": "AGENT",
        "run_id": uid("run"),
        "score": 0.75,
        "reason": "looks right",
        "scorer": {"id": "scorer", "name": "Sample scorer"},
        "entity": {"id": "agent-1", "name": "Agent"},
        "source": "LIVE",
        "input": [{"role": "user", "content": "hi"}],
        "output": {"text": "hello"},
        "metadata": {"env": "test"},
    }
    return ScorePayload(**{**fields, **overrides})


def sample_span(*, trace_id: str | None = None, parent_span_id: str | None = None, **overrides: Any) -> SpanRecord:
    now = utc_now()
    fields: dict[str, Any] = {
        "trace_id": trace_id or uid("trace"),
        "span_id": uid("span"),
        "parent_span_id": parent_span_id,
        "name": "agent run",
        "span_type": "agent_run",
        "is_event": False,
        "started_at": now,
        "ended_at": now + timedelta(milliseconds=250),
        "entity_type": "agent",
        "entity_id": "agent-1",
        "entity_name": "Support agent",
        "user_id": "user-1",
        "environment": "test",
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "output": {"text": "hello"},
        "attributes": {"model": "gpt"},
        "metadata": {"tenant": "acme"},
    }
    return SpanRecord(**{**fields, **overrides})


def sample_agent(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": uid("agent"),
        "name": "Support agent",
        "instructions": "Be helpful.",
        "model": {"provider": "openai", "name": "gpt-4o"},
    }
    return {**fields, **overrides}
