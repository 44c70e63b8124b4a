"""Workflow run snapshots on PostgreSQL, in Mastra's ``mastra_workflow_snapshot`` table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._base import operation
from .._codec import dumps, loads, utc_now
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
from .base import PGDomain
from .codec import PGRowCodec
from .sqlfrag import bump

RUN = PGRowCodec(WorkflowRun, WORKFLOW_SNAPSHOT, columns={"workflow_name": "workflow_name", "run_id": "run_id"})


class WorkflowsPG(PGDomain):
    """Workflow snapshots on PostgreSQL; step results merge under a row lock."""

    tables = (WORKFLOW_SNAPSHOT,)
    domain: ClassVar[str] = "workflows"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "workflowSnapshot": ("mastra_workflow_snapshot", "updatedAt"),
    }

    def supports_concurrent_updates(self) -> bool:
        return True

    def indexes(self) -> list[str]:
        x, t = self.object_name, self.t("mastra_workflow_snapshot")
        return [
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_workflow_snapshot_name_createdat_idx")}" '
            f'ON {t} (workflow_name, "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_workflow_snapshot_resourceid_createdat_idx")}" '
            f'ON {t} ("resourceId", "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_workflow_snapshot_createdat_idx")}" ON {t} ("createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_workflow_snapshot_run_id_idx")}" ON {t} (run_id)',
        ]

    def _upsert(self) -> str:
        return (
            f"INSERT INTO {self.t('mastra_workflow_snapshot')} ({RUN.columns}) VALUES ({RUN.placeholders()}) "
            "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, "
            '"updatedAt" = EXCLUDED."updatedAt", "updatedAtZ" = EXCLUDED."updatedAtZ", '
            '"resourceId" = COALESCE(EXCLUDED."resourceId", mastra_workflow_snapshot."resourceId")'
        )

    def _load(self, lock: bool) -> str:
        return f"SELECT snapshot FROM {self.t('mastra_workflow_snapshot')} WHERE workflow_name = $1 AND run_id = $2" + (
            " FOR UPDATE" if lock else ""
        )

    async def _store(self, conn: Any, workflow_name: str, run_id: str, snapshot: dict[str, Any]) -> None:
        """Writes a merged snapshot back (inside the transaction that locked the row)."""
        await conn.execute(
            f"UPDATE {self.t('mastra_workflow_snapshot')} SET snapshot = $3::jsonb, {bump('updatedAt', '$4')} "
            "WHERE workflow_name = $1 AND run_id = $2",
            workflow_name,
            run_id,
            dumps(snapshot),
            utc_now().replace(tzinfo=None),
        )

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
        await self.execute(self._upsert(), *RUN.params(run))

    @operation
    async def load_workflow_snapshot(self, *, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        require_id(workflow_name, "workflow_name")
        require_id(run_id, "run_id")
        rows = await self.fetch(self._load(False), workflow_name, run_id)
        return loads(rows[0][0]) if rows else None

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

        async def body(conn: Any) -> dict[str, Any]:
            # Make sure the row exists, then lock it: concurrent step results queue up on the lock.
            now = utc_now()
            empty = WorkflowRun(
                workflow_name=workflow_name,
                run_id=run_id,
                snapshot=empty_snapshot(run_id),
                created_at=now,
                updated_at=now,
            )
            await conn.execute(
                f"INSERT INTO {self.t('mastra_workflow_snapshot')} ({RUN.columns}) VALUES ({RUN.placeholders()}) "
                "ON CONFLICT (workflow_name, run_id) DO NOTHING",
                *RUN.params(empty),
            )
            snapshot = loads(await conn.fetchval(self._load(True), workflow_name, run_id))
            context = apply_step_result(snapshot, step_id, step, ctx)
            await self._store(conn, workflow_name, run_id, snapshot)
            return context

        return await self.transaction(body)

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

        async def body(conn: Any) -> dict[str, Any] | None:
            raw = await conn.fetchval(self._load(True), workflow_name, run_id)
            if raw is None:
                return None
            snapshot = loads(raw)
            if not status_matches(snapshot, expected_status):
                return None
            snapshot = {**snapshot, **changes}
            await self._store(conn, workflow_name, run_id, snapshot)
            return snapshot

        # A retry after a lost COMMIT could fail its own expected_status guard: never blind.
        return await self.transaction(body, idempotent=expected_status is None)

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
        p = Params("numeric")
        clauses: list[str] = []
        if workflow_name is not None:
            clauses.append(f"workflow_name = {p(workflow_name)}")
        if resource_id is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        if status is not None:
            clauses.append(f"snapshot ->> 'status' = {p(status)}")
        start, end = check_datetime(from_date, "from_date"), check_datetime(to_date, "to_date")
        if start is not None:
            clauses.append(f'"createdAt" >= {p(start.replace(tzinfo=None))}')
        if end is not None:
            clauses.append(f'"createdAt" <= {p(end.replace(tzinfo=None))}')
        table = self.t("mastra_workflow_snapshot")
        sql = f'SELECT {RUN.select} FROM {table}{where(clauses)} ORDER BY "createdAt" DESC, run_id DESC'
        if page is None or per_page is None:
            runs = RUN.decode_all(await self.fetch(sql, *p.values))
            return WorkflowRunsResult(runs=runs, total=len(runs))
        rows, total = await self.paged(
            sql, f"SELECT COUNT(*) FROM {table}{where(clauses)}", p.values, window(page, per_page)
        )
        return WorkflowRunsResult(runs=RUN.decode_all(rows), total=total)

    @operation
    async def get_workflow_run_by_id(self, *, run_id: str, workflow_name: str | None = None) -> WorkflowRun | None:
        require_id(run_id, "run_id")
        p = Params("numeric")
        clauses = [f"run_id = {p(run_id)}"]
        if workflow_name is not None:
            clauses.append(f"workflow_name = {p(workflow_name)}")
        rows = await self.fetch(
            f"SELECT {RUN.select} FROM {self.t('mastra_workflow_snapshot')}{where(clauses)} "
            'ORDER BY "createdAt" DESC LIMIT 1',
            *p.values,
        )
        return RUN.decode(rows[0]) if rows else None

    @operation
    async def delete_workflow_run_by_id(self, *, run_id: str, workflow_name: str) -> None:
        require_id(run_id, "run_id")
        require_id(workflow_name, "workflow_name")
        await self.execute(
            f"DELETE FROM {self.t('mastra_workflow_snapshot')} WHERE workflow_name = $1 AND run_id = $2",
            workflow_name,
            run_id,
        )
