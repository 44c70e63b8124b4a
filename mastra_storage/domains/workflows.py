"""``WorkflowsStorage``: workflow run snapshots, so a suspended run resumes after a restart.

A backend subclasses it and implements the ``_hooks`` with its own queries; arguments reach them
validated.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from ..core.lifecycle import DomainStore, operation
from ..core.paging import Window, window
from ..core.transfer import RecordKind
from ..core.validate import check_datetime, optional_text, require_id
from ..types import PerPage, WorkflowRun, WorkflowRunsResult
from .workflow_rules import check_run, check_state_update, check_step_update


@dataclass(frozen=True)
class RunQuery:
    """A validated ``list_workflow_runs``: equality on the given fields, ``created_at`` within
    ``start``..``end``, newest first; ``win`` None means every run."""

    workflow_name: str | None
    resource_id: str | None
    status: str | None
    start: datetime | None
    end: datetime | None
    win: Window | None


class WorkflowsStorage(DomainStore):
    """Workflow run snapshots (Mastra's ``WorkflowRunState`` JSON), keyed by workflow name and run id."""

    domain = "workflows"
    record_kinds: ClassVar[dict[str, RecordKind]] = {"runs": RecordKind(WorkflowRun, ("workflow_name", "run_id"))}

    # A backend that keeps the snapshot as JSON text gets, in ``_persist``'s run, the snapshot as a
    # ``msgspec.Raw`` of the JSON its check encoded, rather than encoding the checked copy again
    # (a 5.5 KB snapshot on PostgreSQL: 48,600 instructions fewer per persist, of ~674,000).
    writes_snapshot_text: ClassVar[bool] = False

    async def _import(self, kind: str, records: list[Any]) -> None:
        for run in records:
            await self._persist(run)

    def supports_concurrent_updates(self) -> bool:
        """Whether concurrent ``update_workflow_results`` calls on one run all survive (True here:
        every backend merges step results atomically)."""
        return True

    @operation
    async def persist_workflow_snapshot(
        self,
        *,
        workflow_name: str,
        run_id: str,
        snapshot: Mapping[str, Any],
        resource_id: str | None = None,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Inserts or replaces the run's snapshot. An existing run keeps its ``created_at``, and its
        stored ``resource_id`` when none is given."""
        run, text = check_run(workflow_name, run_id, snapshot, resource_id, created_at, updated_at)
        if self.writes_snapshot_text:  # the text the check encoded, written as it is (msgspec writes a Raw verbatim)
            run = msgspec.structs.replace(run, snapshot=msgspec.Raw(text))
        await self._persist(run)

    @operation
    async def load_workflow_snapshot(self, *, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        """The run's snapshot, or None."""
        require_id(workflow_name, "workflow_name")
        require_id(run_id, "run_id")
        return await self._load(workflow_name, run_id)

    @operation
    async def update_workflow_results(
        self,
        *,
        workflow_name: str,
        run_id: str,
        step_id: str,
        result: Mapping[str, Any],
        request_context: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Merges one step's result into ``snapshot.context[step_id]`` (foreach outputs merge by slot)
        and ``request_context`` into ``snapshot.requestContext``; returns the whole context.

        Atomic: concurrent results of one run all survive. A missing run starts from an empty snapshot.
        """
        step, ctx = check_step_update(workflow_name, run_id, step_id, result, request_context)
        return await self._update_results(workflow_name, run_id, step_id, step, ctx)

    @operation
    async def update_workflow_state(
        self,
        *,
        workflow_name: str,
        run_id: str,
        updates: Mapping[str, Any],
        expected_status: str | Sequence[str] | None = None,
    ) -> dict[str, Any] | None:
        """Merges ``updates`` shallowly into the snapshot and returns it; None if the run is missing or
        its status is not ``expected_status`` (one status or several) — a compare-and-set."""
        changes = check_state_update(workflow_name, run_id, updates, expected_status)
        return await self._update_state(workflow_name, run_id, changes, expected_status)

    @operation
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
    ) -> WorkflowRunsResult:
        """Runs newest first, filtered by the given fields and ``created_at`` range; paged only when
        both ``page`` and ``per_page`` are given (``total`` counts every match)."""
        query = RunQuery(
            optional_text(workflow_name, "workflow_name"),
            optional_text(resource_id, "resource_id"),
            optional_text(status, "status"),
            check_datetime(from_date, "from_date"),
            check_datetime(to_date, "to_date"),
            None if page is None or per_page is None else window(page, per_page),
        )
        runs, total = await self._run_page(query)
        return WorkflowRunsResult(runs=runs, total=total)

    @operation
    async def get_workflow_run_by_id(self, *, run_id: str, workflow_name: str | None = None) -> WorkflowRun | None:
        """The run ``run_id`` (of ``workflow_name`` when given; else the newest with that id), or None."""
        require_id(run_id, "run_id")
        return await self._get_run(run_id, optional_text(workflow_name, "workflow_name"))

    @operation
    async def delete_workflow_run_by_id(self, *, run_id: str, workflow_name: str) -> None:
        """Deletes the run; a missing run is a no-op."""
        require_id(run_id, "run_id")
        require_id(workflow_name, "workflow_name")
        await self._delete_run(run_id, workflow_name)

    # ------------------------------------------------------------ what a backend writes

    @abc.abstractmethod
    async def _persist(self, run: WorkflowRun) -> None:
        """Upserts a validated run (its snapshot a ``msgspec.Raw`` where ``writes_snapshot_text``)."""

    @abc.abstractmethod
    async def _load(self, workflow_name: str, run_id: str) -> dict[str, Any] | None: ...
    @abc.abstractmethod
    async def _update_results(
        self, workflow_name: str, run_id: str, step_id: str, result: dict[str, Any], request_context: dict[str, Any]
    ) -> dict[str, Any]:
        """Reads the snapshot (or ``empty_snapshot``), ``apply_step_result``, writes it — atomically."""

    @abc.abstractmethod
    async def _update_state(
        self, workflow_name: str, run_id: str, changes: dict[str, Any], expected: str | Sequence[str] | None
    ) -> dict[str, Any] | None:
        """Reads the snapshot, checks ``status_matches``, writes the merge — atomically."""

    @abc.abstractmethod
    async def _run_page(self, q: RunQuery) -> tuple[list[WorkflowRun], int]: ...
    @abc.abstractmethod
    async def _get_run(self, run_id: str, workflow_name: str | None) -> WorkflowRun | None: ...
    @abc.abstractmethod
    async def _delete_run(self, run_id: str, workflow_name: str) -> None: ...
