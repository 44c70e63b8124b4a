"""Workflow run snapshots on PostgreSQL, in Mastra's ``mastra_workflow_snapshot`` table."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import WORKFLOW_SNAPSHOT
from ..core.coalesce import Coalescer, WriteGroups
from ..core.codec import dumps, loads, utc_now
from ..domains.workflow_rules import apply_step_result, empty_run, status_matches
from ..domains.workflows import RunQuery, WorkflowsStorage
from ..types import DateRange, WorkflowRun
from .base import PGDomain
from .codec import ColumnCodec
from .sqlfrag import bump, date_range

RUN = ColumnCodec(WorkflowRun, WORKFLOW_SNAPSHOT, columns={"workflow_name": "workflow_name", "run_id": "run_id"})


def _naive_now() -> datetime:
    return utc_now().replace(tzinfo=None)


class WorkflowsPG(PGDomain, WorkflowsStorage):
    """Workflow snapshots on PostgreSQL; step results merge under a row lock."""

    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "workflowSnapshot": ("mastra_workflow_snapshot", "updatedAt"),
    }

    codecs = (RUN,)
    writes_snapshot_text = True  # a snapshot goes out as the JSON its check encoded

    _UPSERT = (
        "ON CONFLICT (workflow_name, run_id) DO UPDATE SET snapshot = EXCLUDED.snapshot, "
        '"updatedAt" = EXCLUDED."updatedAt", "updatedAtZ" = EXCLUDED."updatedAtZ", '
        '"resourceId" = COALESCE(EXCLUDED."resourceId", mastra_workflow_snapshot."resourceId")'
    )

    def _load_sql(self, lock: bool) -> str:
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
            _naive_now(),
        )

    @functools.cached_property
    def _run_writes(self) -> WriteGroups[tuple[str, str], WorkflowRun]:
        return self.upserts(RUN, self._UPSERT)

    async def _persist(self, run: WorkflowRun) -> None:
        # Concurrent persists of different runs go out as one statement (core/coalesce.py).
        await self._run_writes.write((run.workflow_name, run.run_id), run)

    @functools.cached_property
    def _snapshot_reads(self) -> Coalescer[tuple[str, str], str]:
        return Coalescer(self._snapshot_rows)

    async def _snapshot_rows(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if len(keys) == 1:  # alone by equality: the array form costs a lone read ~10% more
            rows = await self.fetch(self._load_sql(False), *keys[0])
            return {keys[0]: rows[0][0]} if rows else {}
        sql = (
            f"SELECT w.workflow_name, w.run_id, w.snapshot FROM {self.t('mastra_workflow_snapshot')} AS w "
            "JOIN unnest($1::text[], $2::text[]) AS k(workflow_name, run_id) "
            "ON w.workflow_name = k.workflow_name AND w.run_id = k.run_id"
        )
        rows = await self.fetch(sql, [name for name, _ in keys], [run for _, run in keys])
        return {(row[0], row[1]): row[2] for row in rows}

    async def _load(self, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        # Concurrent loads share one statement; each caller decodes its own snapshot from the text.
        text = await self._snapshot_reads.get((workflow_name, run_id))
        return None if text is None else loads(text)

    async def _update_results(
        self, workflow_name: str, run_id: str, step_id: str, result: dict[str, Any], request_context: dict[str, Any]
    ) -> dict[str, Any]:
        if not isinstance(result.get("output"), list):
            # One statement: the step's result set into the snapshot server-side. The upsert locks
            # the row, so concurrent step results apply one after another and none is lost.
            fresh = empty_run(workflow_name, run_id)
            apply_step_result(fresh.snapshot, step_id, result, request_context)  # what a new run starts as
            n = RUN.width
            rows = await self.fetch(
                self._merge_sql(n), *RUN.params(fresh), step_id, dumps(result), dumps(request_context), _naive_now()
            )
            if rows:
                context: dict[str, Any] = loads(rows[0][0])
                return context

        # A foreach step's output merges slot by slot (merge_step_result): read, merge and write the
        # snapshot under its row lock. So does a stored snapshot that is not a JSON object.
        async def body(conn: Any) -> dict[str, Any]:
            empty = empty_run(workflow_name, run_id)
            await conn.execute(
                f"INSERT INTO {self.t('mastra_workflow_snapshot')} ({RUN.columns}) VALUES ({RUN.placeholders()}) "
                "ON CONFLICT (workflow_name, run_id) DO NOTHING",
                *RUN.params(empty),
            )
            snapshot = loads(await conn.fetchval(self._load_sql(True), workflow_name, run_id))
            context = apply_step_result(snapshot, step_id, result, request_context)
            await self._store(conn, workflow_name, run_id, snapshot)
            return context

        return await self.transaction(body)

    def _merge_sql(self, n: int) -> str:
        """Upsert of a run whose snapshot gets ``context[$n+1] = $n+2`` and ``requestContext ||= $n+3``."""

        def obj(path: str) -> str:
            value = f"w.snapshot->'{path}'"
            return f"CASE WHEN jsonb_typeof({value}) = 'object' THEN {value} ELSE '{{}}'::jsonb END"

        context = f"{obj('context')} || jsonb_build_object(${n + 1}::text, ${n + 2}::jsonb)"
        request_context = f"{obj('requestContext')} || ${n + 3}::jsonb"
        return (
            f"INSERT INTO {self.t('mastra_workflow_snapshot')} AS w ({RUN.columns}) VALUES ({RUN.placeholders()}) "
            "ON CONFLICT (workflow_name, run_id) DO UPDATE SET "
            f"snapshot = jsonb_set(jsonb_set(w.snapshot, '{{context}}', {context}), "
            f"'{{requestContext}}', {request_context}), "
            f"{bump('updatedAt', f'${n + 4}', 'w')} WHERE jsonb_typeof(w.snapshot) = 'object' "
            "RETURNING w.snapshot->'context'"
        )

    async def _update_state(
        self, workflow_name: str, run_id: str, changes: dict[str, Any], expected: str | Sequence[str] | None
    ) -> dict[str, Any] | None:
        async def body(conn: Any) -> dict[str, Any] | None:
            raw = await conn.fetchval(self._load_sql(True), workflow_name, run_id)
            if raw is None:
                return None
            snapshot = loads(raw)
            if not status_matches(snapshot, expected):
                return None
            snapshot = {**snapshot, **changes}
            await self._store(conn, workflow_name, run_id, snapshot)
            return snapshot

        # A retry after a lost COMMIT could fail its own expected_status guard: never blind.
        return await self.transaction(body, idempotent=expected is None)

    async def _run_page(self, q: RunQuery) -> tuple[list[WorkflowRun], int]:
        p = Params("numeric")
        equal = {"workflow_name": q.workflow_name, '"resourceId"': q.resource_id, "snapshot ->> 'status'": q.status}
        clauses = [f"{column} = {p(value)}" for column, value in equal.items() if value is not None]
        clauses += date_range('"createdAt"', DateRange(start=q.start, end=q.end), p)
        table = self.t("mastra_workflow_snapshot")
        if q.win is None:
            sql = f'SELECT {RUN.select} FROM {table}{where(clauses)} ORDER BY "createdAt" DESC, run_id DESC'
            runs = RUN.decode_all(await self.fetch(sql, *p.values))
            return runs, len(runs)
        order = '"createdAt" DESC, run_id DESC'
        rows, total = await self.paged(RUN.select, table, where(clauses), order, p.values, q.win)
        return RUN.decode_all(rows), total

    async def _get_run(self, run_id: str, workflow_name: str | None) -> WorkflowRun | None:
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

    async def _delete_run(self, run_id: str, workflow_name: str) -> None:
        await self.execute(
            f"DELETE FROM {self.t('mastra_workflow_snapshot')} WHERE workflow_name = $1 AND run_id = $2",
            workflow_name,
            run_id,
        )
