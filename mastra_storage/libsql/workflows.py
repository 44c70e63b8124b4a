"""Workflow run snapshots on libSQL, in Mastra's ``mastra_workflow_snapshot`` table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import WORKFLOW_SNAPSHOT
from ..core.codec import dumps, loads
from ..domains.workflow_rules import apply_step_result, empty_run, empty_snapshot, status_matches
from ..domains.workflows import RunQuery, WorkflowsStorage
from ..types import DateRange, WorkflowRun
from .base import LibSQLDomain
from .codec import RowCodec
from .connection import Tx
from .sqlfrag import date_range

RUN = RowCodec(WorkflowRun, WORKFLOW_SNAPSHOT, columns={"workflow_name": "workflow_name", "run_id": "run_id"})

_UPSERT = (
    f"INSERT INTO mastra_workflow_snapshot ({RUN.columns}) VALUES ({RUN.placeholders()}) "
    "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = excluded.snapshot, "
    '"updatedAt" = excluded."updatedAt", "resourceId" = COALESCE(excluded."resourceId", "resourceId")'
)
# Text as stored; only Mastra's binary JSON is rendered (json() on text parsed and re-rendered 5 KB
# snapshots: load snapshot 13,900 -> 16,900 calls/s with 16 callers).
_LOAD = (
    "SELECT CASE WHEN typeof(snapshot) = 'blob' THEN json(snapshot) ELSE snapshot END "
    "FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?"
)


class WorkflowsLibSQL(LibSQLDomain, WorkflowsStorage):
    """Workflow snapshots on a libSQL/SQLite database; step results merge atomically."""

    codecs = (RUN,)
    writes_snapshot_text = True  # a snapshot goes out as the JSON its check encoded
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "workflowSnapshot": ("mastra_workflow_snapshot", "updatedAt"),
    }

    async def _persist(self, run: WorkflowRun) -> None:
        await self.db.execute(_UPSERT, RUN.params(run))

    async def _load(self, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        rows = await self.db.query(_LOAD, (workflow_name, run_id))
        return loads(rows[0][0]) if rows and rows[0][0] is not None else None

    async def _update_results(
        self, workflow_name: str, run_id: str, step_id: str, result: dict[str, Any], request_context: dict[str, Any]
    ) -> dict[str, Any]:
        def body(tx: Tx) -> dict[str, Any]:
            rows = tx.query(_LOAD, (workflow_name, run_id))
            snapshot = loads(rows[0][0]) if rows and rows[0][0] is not None else empty_snapshot(run_id)
            context = apply_step_result(snapshot, step_id, result, request_context)
            run = empty_run(workflow_name, run_id)  # the row to insert if none exists
            run.snapshot = snapshot
            tx.execute(
                f"INSERT INTO mastra_workflow_snapshot ({RUN.columns}) VALUES ({RUN.placeholders()}) "
                "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = excluded.snapshot",
                RUN.params(run),
            )
            return context

        return await self.db.transaction(body)

    async def _update_state(
        self, workflow_name: str, run_id: str, changes: dict[str, Any], expected: str | Sequence[str] | None
    ) -> dict[str, Any] | None:
        def body(tx: Tx) -> dict[str, Any] | None:
            rows = tx.query(_LOAD, (workflow_name, run_id))
            if not rows or rows[0][0] is None:
                return None
            snapshot = loads(rows[0][0])
            if not status_matches(snapshot, expected):
                return None
            snapshot = {**snapshot, **changes}
            tx.execute(
                "UPDATE mastra_workflow_snapshot SET snapshot = ? WHERE workflow_name = ? AND run_id = ?",
                (dumps(snapshot), workflow_name, run_id),
            )
            return snapshot

        return await self.db.transaction(body)

    async def _run_page(self, q: RunQuery) -> tuple[list[WorkflowRun], int]:
        p = Params()
        equal = {"workflow_name": q.workflow_name, '"resourceId"': q.resource_id,
                 "json_extract(snapshot, '$.status')": q.status}  # fmt: skip
        clauses = [f"{column} = {p(value)}" for column, value in equal.items() if value is not None]
        clauses += date_range('"createdAt"', DateRange(start=q.start, end=q.end), p)
        sql = f'SELECT {RUN.select} FROM mastra_workflow_snapshot{where(clauses)} ORDER BY "createdAt" DESC, rowid DESC'
        if q.win is None:
            runs = RUN.decode_all(await self.db.query(sql, p.values))
            return runs, len(runs)
        count_sql = f"SELECT COUNT(*) FROM mastra_workflow_snapshot{where(clauses)}"
        return await self.paged(sql, count_sql, p.values, q.win, RUN.decode_all)

    async def _get_run(self, run_id: str, workflow_name: str | None) -> WorkflowRun | None:
        p = Params()
        clauses = [f"run_id = {p(run_id)}"]
        if workflow_name is not None:
            clauses.append(f"workflow_name = {p(workflow_name)}")
        rows = await self.db.query(
            f'SELECT {RUN.select} FROM mastra_workflow_snapshot{where(clauses)} ORDER BY "createdAt" DESC LIMIT 1',
            p.values,
        )
        return RUN.decode(rows[0]) if rows else None

    async def _delete_run(self, run_id: str, workflow_name: str) -> None:
        await self.db.execute(
            "DELETE FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?",
            (workflow_name, run_id),
        )
