"""Workflow run snapshots on libSQL, in Mastra's ``mastra_workflow_snapshot`` table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._base import operation
from .._codec import dumps, iso, loads, utc_now
from .._sql.pagination import window
from .._sql.params import Params, where
from .._sql.schema import WORKFLOW_SNAPSHOT
from .._validate import check_datetime, require_id
from .._workflow_rules import (
    apply_step_result,
    check_run,
    check_state_update,
    check_step_update,
    empty_snapshot,
    status_matches,
)
from ..types import PerPage, WorkflowRun, WorkflowRunsResult
from .base import LibSQLDomain
from .codec import RowCodec
from .connection import Tx

RUN = RowCodec(WorkflowRun, WORKFLOW_SNAPSHOT, columns={"workflow_name": "workflow_name", "run_id": "run_id"})

_UPSERT = (
    f"INSERT INTO mastra_workflow_snapshot ({RUN.columns}) VALUES ({RUN.placeholders}) "
    "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = excluded.snapshot, "
    '"updatedAt" = excluded."updatedAt", "resourceId" = COALESCE(excluded."resourceId", "resourceId")'
)
_LOAD = "SELECT json(snapshot) FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?"


class WorkflowsLibSQL(LibSQLDomain):
    """Workflow snapshots on a libSQL/SQLite database; step results merge atomically."""

    tables = (WORKFLOW_SNAPSHOT,)
    indexes = (
        "CREATE INDEX IF NOT EXISTS idx_workflow_snapshot_name_created_at "
        'ON mastra_workflow_snapshot (workflow_name, "createdAt")',
        'CREATE INDEX IF NOT EXISTS idx_workflow_snapshot_created_at ON mastra_workflow_snapshot ("createdAt")',
        "CREATE INDEX IF NOT EXISTS idx_workflow_snapshot_resource_created_at "
        'ON mastra_workflow_snapshot ("resourceId", "createdAt")',
        "CREATE INDEX IF NOT EXISTS idx_workflow_snapshot_run_id ON mastra_workflow_snapshot (run_id)",
    )
    domain: ClassVar[str] = "workflows"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "workflowSnapshot": ("mastra_workflow_snapshot", "updatedAt"),
    }

    def supports_concurrent_updates(self) -> bool:
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
        run = check_run(workflow_name, run_id, snapshot, resource_id, created_at, updated_at)
        await self.db.execute(_UPSERT, RUN.params(run))

    @operation
    async def load_workflow_snapshot(self, *, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        require_id(workflow_name, "workflow_name")
        require_id(run_id, "run_id")
        rows = await self.db.query(_LOAD, (workflow_name, run_id))
        return loads(rows[0][0]) if rows and rows[0][0] is not None else None

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
        step, ctx = check_step_update(workflow_name, run_id, step_id, result, request_context)

        def body(tx: Tx) -> dict[str, Any]:
            rows = tx.query(_LOAD, (workflow_name, run_id))
            snapshot = loads(rows[0][0]) if rows and rows[0][0] is not None else empty_snapshot(run_id)
            context = apply_step_result(snapshot, step_id, step, ctx)
            now = utc_now()
            tx.execute(
                f"INSERT INTO mastra_workflow_snapshot ({RUN.columns}) VALUES ({RUN.placeholders}) "
                "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = excluded.snapshot",
                RUN.params(
                    WorkflowRun(
                        workflow_name=workflow_name,
                        run_id=run_id,
                        snapshot=snapshot,
                        created_at=now,
                        updated_at=now,
                    )
                ),
            )
            return context

        return await self.db.transaction(body)

    @operation
    async def update_workflow_state(
        self,
        *,
        workflow_name: str,
        run_id: str,
        updates: Mapping[str, Any],
        expected_status: str | Sequence[str] | None = None,
    ) -> dict[str, Any] | None:
        changes = check_state_update(workflow_name, run_id, updates, expected_status)

        def body(tx: Tx) -> dict[str, Any] | None:
            rows = tx.query(_LOAD, (workflow_name, run_id))
            if not rows or rows[0][0] is None:
                return None
            snapshot = loads(rows[0][0])
            if not status_matches(snapshot, expected_status):
                return None
            snapshot = {**snapshot, **changes}
            tx.execute(
                "UPDATE mastra_workflow_snapshot SET snapshot = ? WHERE workflow_name = ? AND run_id = ?",
                (dumps(snapshot), workflow_name, run_id),
            )
            return snapshot

        return await self.db.transaction(body)

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
        p = Params()
        clauses: list[str] = []
        if workflow_name is not None:
            clauses.append(f"workflow_name = {p(workflow_name)}")
        if resource_id is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        if status is not None:
            clauses.append(f"json_extract(snapshot, '$.status') = {p(status)}")
        start, end = check_datetime(from_date, "from_date"), check_datetime(to_date, "to_date")
        if start is not None:
            clauses.append(f'"createdAt" >= {p(iso(start))}')
        if end is not None:
            clauses.append(f'"createdAt" <= {p(iso(end))}')
        sql = f'SELECT {RUN.select} FROM mastra_workflow_snapshot{where(clauses)} ORDER BY "createdAt" DESC, rowid DESC'
        if page is None or per_page is None:
            runs = RUN.decode_all(await self.db.query(sql, p.values))
            return WorkflowRunsResult(runs=runs, total=len(runs))
        count_sql = f"SELECT COUNT(*) FROM mastra_workflow_snapshot{where(clauses)}"
        records, total = await self.paged(sql, count_sql, p.values, window(page, per_page), RUN.decode_all)
        return WorkflowRunsResult(runs=records, total=total)

    @operation
    async def get_workflow_run_by_id(self, *, run_id: str, workflow_name: str | None = None) -> WorkflowRun | None:
        require_id(run_id, "run_id")
        p = Params()
        clauses = [f"run_id = {p(run_id)}"]
        if workflow_name is not None:
            clauses.append(f"workflow_name = {p(workflow_name)}")
        rows = await self.db.query(
            f'SELECT {RUN.select} FROM mastra_workflow_snapshot{where(clauses)} ORDER BY "createdAt" DESC LIMIT 1',
            p.values,
        )
        return RUN.decode(rows[0]) if rows else None

    @operation
    async def delete_workflow_run_by_id(self, *, run_id: str, workflow_name: str) -> None:
        require_id(run_id, "run_id")
        require_id(workflow_name, "workflow_name")
        await self.db.execute(
            "DELETE FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?",
            (workflow_name, run_id),
        )
