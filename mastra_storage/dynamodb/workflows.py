"""Workflow run snapshots on DynamoDB: one item per run, merged under a version check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..core.codec import from_iso, iso, later_than
from ..core.paging import window
from ..domains.workflow_rules import apply_step_result, empty_run, status_matches
from ..domains.workflows import RunQuery, WorkflowsStorage
from ..types import WorkflowRun
from .base import DynamoDomain, Kept, Partition, optimistic
from .connection import Item
from .counters import Write
from .items import Expr, esc, keys_of, s, time_bounds, when


def _kept(run: WorkflowRun, item: Item) -> None:
    """What an upsert kept on the item wins over the payload it wrote: creation time and resource."""
    if "ca" in item:
        run.created_at = from_iso(item["ca"]["S"])
    if "rid" in item:
        run.resource_id = item["rid"]["S"]


def run_key(workflow_name: str, run_id: str) -> tuple[str, str]:
    return f"WFRUN#{esc(run_id)}", f"WF#{esc(workflow_name)}"


class WorkflowsDynamoDB(DynamoDomain, WorkflowsStorage):
    """Workflow snapshots on DynamoDB. Step results and state updates are read-modify-writes that
    land only if the run's version is unchanged, retried otherwise — concurrent steps all survive."""

    entities: ClassVar[tuple[str, ...]] = ("workflow_snapshot",)
    retention_entities: ClassVar[dict[str, str]] = {"workflowSnapshot": "workflow_snapshot"}
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {"runs": ("workflow_snapshot", _kept)}

    async def _items(self, run: WorkflowRun) -> list[Item]:
        pk, sk = run_key(run.workflow_name, run.run_id)
        items = await self.items(pk, sk, "workflow_snapshot", run, run.created_at)
        order = f"{when(run.created_at)}#{esc(run.workflow_name)}#{esc(run.run_id)}"
        main = items[0]
        main.update(
            gsi1pk=s(f"WFRUNS#W#{esc(run.workflow_name)}"),
            gsi1sk=s(order),
            gsi2pk=s("WFRUNS"),
            gsi2sk=s(order),
            st=s(str(run.snapshot.get("status", ""))),
        )
        if run.resource_id is not None:
            main.update(gsi3pk=s(f"WFRUNS#R#{esc(run.resource_id)}"), gsi3sk=s(order), rid=s(run.resource_id))
        return items

    async def _run(self, workflow_name: str, run_id: str) -> tuple[WorkflowRun, Item] | None:
        return await self.read(*run_key(workflow_name, run_id), "workflow_snapshot", WorkflowRun, _kept)

    async def _persist(self, run: WorkflowRun) -> None:
        main, *parts = await self._items(run)
        if parts:  # a split record's items are written together, under the version check
            await optimistic(lambda: self._replace(run))
            return
        # An existing run keeps its creation time (and its resource, if none is given): one
        # UpdateItem when this store wrote the run lately, else one transaction with the counters.
        once: dict[str, Any] = {key: main[key] for key in ("gsi1sk", "gsi2sk", "gsi3sk") if key in main}
        # A run that gains a resource is ordered in that list by its original creation time.
        write = Write("merge", [main], None, {"ca": s(iso(run.created_at)), **once}, derive={"gsi3sk": "gsi2sk"})
        await self.counting.save(write)

    async def _replace(self, run: WorkflowRun) -> None:
        found = await self._run(run.workflow_name, run.run_id)
        if found is not None:  # an upsert keeps the run's creation time and, if none is given, its resource
            run.created_at = found[0].created_at
            run.resource_id = run.resource_id if run.resource_id is not None else found[0].resource_id
        await self.replace(await self._items(run), found[1] if found else None)

    async def _load(self, workflow_name: str, run_id: str) -> dict[str, Any] | None:
        found = await self._run(workflow_name, run_id)
        return found[0].snapshot if found else None

    async def _update_results(
        self, workflow_name: str, run_id: str, step_id: str, result: dict[str, Any], request_context: dict[str, Any]
    ) -> dict[str, Any]:
        async def attempt() -> dict[str, Any]:
            found = await self._run(workflow_name, run_id)
            if found is None:
                run = empty_run(workflow_name, run_id)
            else:
                run = found[0]
                run.updated_at = later_than(run.updated_at)
            context = apply_step_result(run.snapshot, step_id, result, request_context)
            await self.replace(await self._items(run), found[1] if found else None)
            return context

        return await optimistic(attempt)

    async def _update_state(
        self, workflow_name: str, run_id: str, changes: dict[str, Any], expected: str | Sequence[str] | None
    ) -> dict[str, Any] | None:
        async def attempt() -> dict[str, Any] | None:
            found = await self._run(workflow_name, run_id)
            if found is None or not status_matches(found[0].snapshot, expected):
                return None
            run, old = found
            run.snapshot = {**run.snapshot, **changes}
            run.updated_at = later_than(run.updated_at)
            # The version check makes the status test and the write one step: a concurrent change
            # of status sends this round back to re-read and re-test.
            await self.replace(await self._items(run), old)
            return run.snapshot

        return await optimistic(attempt)

    async def _run_page(self, q: RunQuery) -> tuple[list[WorkflowRun], int]:
        lo, hi = time_bounds(q.start, q.end)
        if q.workflow_name is not None:
            part = Partition("gsi1", f"WFRUNS#W#{esc(q.workflow_name)}", lo, hi)
        elif q.resource_id is not None:
            part = Partition("gsi3", f"WFRUNS#R#{esc(q.resource_id)}", lo, hi)
        else:
            part = Partition("gsi2", "WFRUNS", lo, hi)

        def expr() -> Expr:
            e = self.expr("workflow_snapshot")
            if q.workflow_name is not None and q.resource_id is not None:
                e.equals("rid", q.resource_id)
            if q.status is not None:
                e.equals("st", q.status)
            return e

        win = q.win or window(0, False)
        found = await self.page([part], expr, win, forward=False)
        return await self.decode(found.items, WorkflowRun, _kept), found.total or 0

    async def _get_run(self, run_id: str, workflow_name: str | None) -> WorkflowRun | None:
        if workflow_name is not None:
            found = await self._run(workflow_name, run_id)
            return found[0] if found else None
        e = self.expr("workflow_snapshot")
        e.equals("e", "workflow_snapshot")  # not the part items in the same partition
        items = await self.conn.query(**Partition(None, run_key("", run_id)[0]).request(e))
        runs = await self.decode(items, WorkflowRun, _kept)
        return max(runs, key=lambda r: r.created_at, default=None)

    async def _delete_run(self, run_id: str, workflow_name: str) -> None:
        pk, sk = run_key(workflow_name, run_id)
        found = await self.conn.get({"pk": s(pk), "sk": s(sk)})
        if found is not None:
            await self.counting.commit([Write("delete", [found], found)])
        await self.conn.batch_write(deletes=keys_of(await self.related_parts(pk, sk)))  # leftovers of a larger one
