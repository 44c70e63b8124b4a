"""The five domain interfaces every backend implements (API.md section 3).

Inputs may be the record Structs or plain mappings with snake_case keys; every method takes
keyword-only arguments and every I/O method is a coroutine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from ..core.lifecycle import DomainStore
from ..types import (
    AgentCreate,
    AgentVersion,
    CloneThreadResult,
    DateRange,
    IncludeContext,
    ListAgentsResult,
    ListAgentVersionsResult,
    ListMessagesResult,
    ListScoresResult,
    ListThreadsResult,
    ListTracesResult,
    Message,
    MessageUpdate,
    PerPage,
    PruneResult,
    ResolvedAgent,
    ScorePayload,
    ScoreRow,
    SpanRecord,
    SpanUpdate,
    StorageResource,
    StorageThread,
    StoredAgent,
    Trace,
    TracesFilter,
    WorkflowRun,
    WorkflowRunsResult,
)
from .memory import MemoryStorage

__all__ = [
    "DOMAINS",
    "AgentsStorage",
    "DomainName",
    "DomainStore",
    "MemoryStorage",
    "ObservabilityStorage",
    "ScoresStorage",
    "WorkflowsStorage",
]

DomainName = Literal["memory", "workflows", "scores", "observability", "agents"]
DOMAINS: tuple[DomainName, ...] = ("memory", "workflows", "scores", "observability", "agents")
Direction = Literal["ASC", "DESC"]
MetadataFilter = Mapping[str, str | int | float | bool | None]
Retention = Mapping[str, Any]


@runtime_checkable
class WorkflowsStorage(Protocol):
    async def persist_workflow_snapshot(
        self,
        *,
        workflow_name: str,
        run_id: str,
        snapshot: Mapping[str, Any],
        resource_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> None: ...
    async def load_workflow_snapshot(self, *, workflow_name: str, run_id: str) -> dict[str, Any] | None: ...
    async def update_workflow_results(
        self,
        *,
        workflow_name: str,
        run_id: str,
        step_id: str,
        result: Mapping[str, Any],
        request_context: Mapping[str, Any],
    ) -> dict[str, Any]: ...
    async def update_workflow_state(
        self,
        *,
        workflow_name: str,
        run_id: str,
        updates: Mapping[str, Any],
        expected_status: str | Sequence[str] | None = None,
    ) -> dict[str, Any] | None: ...
    async def list_workflow_runs(
        self,
        *,
        workflow_name: str | None = None,
        resource_id: str | None = None,
        status: str | None = None,
        from_date: datetime | None = None,
        to_date: datetime | None = None,
        page: int | None = None,
        per_page: PerPage | None = None,
    ) -> WorkflowRunsResult: ...
    async def get_workflow_run_by_id(self, *, run_id: str, workflow_name: str | None = None) -> WorkflowRun | None: ...
    async def delete_workflow_run_by_id(self, *, run_id: str, workflow_name: str) -> None: ...
    def supports_concurrent_updates(self) -> bool: ...


@runtime_checkable
class ScoresStorage(Protocol):
    async def save_score(self, *, score: ScorePayload | Mapping[str, Any]) -> ScoreRow: ...
    async def get_score_by_id(self, *, id: str) -> ScoreRow | None: ...
    async def list_scores_by_scorer_id(
        self,
        *,
        scorer_id: str,
        entity_id: str | None = None,
        entity_type: str | None = None,
        source: str | None = None,
        page: int = 0,
        per_page: PerPage = 100,
    ) -> ListScoresResult: ...
    async def list_scores_by_run_id(
        self, *, run_id: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult: ...
    async def list_scores_by_entity_id(
        self, *, entity_id: str, entity_type: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult: ...
    async def list_scores_by_span(
        self, *, trace_id: str, span_id: str, page: int = 0, per_page: PerPage = 100
    ) -> ListScoresResult: ...


@runtime_checkable
class ObservabilityStorage(Protocol):
    async def create_span(self, *, span: SpanRecord | Mapping[str, Any]) -> None: ...
    async def batch_create_spans(self, *, spans: Sequence[SpanRecord | Mapping[str, Any]]) -> None: ...
    async def update_span(self, *, trace_id: str, span_id: str, updates: Mapping[str, Any]) -> None: ...
    async def batch_update_spans(self, *, updates: Sequence[SpanUpdate | Mapping[str, Any]]) -> None: ...
    async def get_span(self, *, trace_id: str, span_id: str) -> SpanRecord | None: ...
    async def get_root_span(self, *, trace_id: str) -> SpanRecord | None: ...
    async def get_trace(self, *, trace_id: str) -> Trace | None: ...
    async def list_traces(
        self,
        *,
        filters: TracesFilter | Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: PerPage = 10,
        order_by: Literal["started_at", "ended_at"] = "started_at",
        direction: Direction = "DESC",
    ) -> ListTracesResult: ...
    async def batch_delete_traces(self, *, trace_ids: Sequence[str]) -> None: ...


@runtime_checkable
class AgentsStorage(Protocol):
    async def create(self, *, agent: AgentCreate | Mapping[str, Any]) -> StoredAgent: ...
    async def get_by_id(self, *, id: str) -> StoredAgent | None: ...
    async def get_by_id_resolved(
        self, *, id: str, status: str | None = None, version_id: str | None = None
    ) -> ResolvedAgent | None: ...
    async def update(
        self,
        *,
        id: str,
        status: str | None = None,
        active_version_id: str | None = None,
        author_id: str | None = None,
        visibility: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StoredAgent: ...
    async def delete(self, *, id: str) -> None: ...
    async def list(
        self,
        *,
        status: str | None = None,
        author_id: str | None = None,
        metadata: MetadataFilter | None = None,
        page: int = 0,
        per_page: PerPage = 100,
        order_by: Literal["created_at", "updated_at"] = "created_at",
        direction: Direction = "DESC",
    ) -> ListAgentsResult: ...
    async def create_version(
        self,
        *,
        agent_id: str,
        config: Mapping[str, Any],
        change_message: str | None = None,
        version_number: int | None = None,
    ) -> AgentVersion: ...
    async def get_version(self, *, id: str) -> AgentVersion | None: ...
    async def get_version_by_number(self, *, agent_id: str, version_number: int) -> AgentVersion | None: ...
    async def get_latest_version(self, *, agent_id: str) -> AgentVersion | None: ...
    async def list_versions(
        self, *, agent_id: str, page: int = 0, per_page: PerPage = 100, direction: Direction = "DESC"
    ) -> ListAgentVersionsResult: ...
    async def delete_version(self, *, id: str) -> None: ...
    async def count_versions(self, *, agent_id: str) -> int: ...
