"""Conformance tests for ``WorkflowsStorage`` (reference §10 workflows/index.ts)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from ..core.codec import utc_now
from ..domains import WorkflowsStorage
from ..errors import ValidationError
from .samples import sample_snapshot, uid


class WorkflowsConformance:
    """Behaviour every ``WorkflowsStorage`` must have; needs a ``backend`` fixture (see package docs)."""

    @pytest.fixture
    async def workflows(self, backend: Any) -> WorkflowsStorage:
        store: WorkflowsStorage = await backend.get_store("workflows")
        return store

    async def _persist(self, workflows: WorkflowsStorage, name: str, status: str = "success", **kw: Any) -> str:
        run_id = uid("run")
        await workflows.persist_workflow_snapshot(
            workflow_name=name, run_id=run_id, snapshot=sample_snapshot(status, run_id=run_id), **kw
        )
        return run_id

    async def test_snapshot_round_trips(self, workflows: WorkflowsStorage) -> None:
        snapshot = sample_snapshot("suspended")
        snapshot["context"]["deep"] = {"list": [1, "two", None, {"x": 1.5}], "unicode": "héllo 🎉"}
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="run-1", snapshot=snapshot)
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id="run-1") == snapshot
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id="missing") is None
        partial = {"status": "running", "context": {}}
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="run-2", snapshot=partial)
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id="run-2") == partial

    async def test_concurrent_loads_each_get_their_own_snapshot(self, workflows: WorkflowsStorage) -> None:
        # Loads in flight together (a backend may fetch them in one request) answer as one by one;
        # a run id under another workflow name is another run.
        runs = [("wf-a", await self._persist(workflows, "wf-a")) for _ in range(3)]
        runs.append(("wf-b", runs[0][1]))
        await workflows.persist_workflow_snapshot(workflow_name="wf-b", run_id=runs[0][1], snapshot={"status": "b"})
        expected = [await workflows.load_workflow_snapshot(workflow_name=w, run_id=r) for w, r in runs]
        asks = [*runs, runs[0], ("wf-a", "missing"), ("wf-c", runs[1][1])]
        got = await asyncio.gather(*(workflows.load_workflow_snapshot(workflow_name=w, run_id=r) for w, r in asks))
        assert got == [*expected, expected[0], None, None]
        assert expected[3] == {"status": "b"} and expected[0] != expected[3]
        assert got[0] is not None and got[0] is not got[4]  # each caller owns its snapshot
        got[0]["status"] = "changed by one caller"
        assert got[4] == expected[0]

    async def test_concurrent_lists_of_one_page_each_get_their_own_runs(self, workflows: WorkflowsStorage) -> None:
        # Lists in flight together may share one read of a page; each caller owns what it gets.
        for _ in range(3):
            await self._persist(workflows, "wf-a")
        await self._persist(workflows, "wf-b")
        asks = [("wf-a", 0), ("wf-a", 0), ("wf-a", 1), ("wf-b", 0), ("wf-a", 0)]
        expected = [await workflows.list_workflow_runs(workflow_name=w, page=p, per_page=2) for w, p in asks]
        got = await asyncio.gather(
            *(workflows.list_workflow_runs(workflow_name=w, page=p, per_page=2) for w, p in asks)
        )
        assert got == expected and [len(g.runs) for g in got] == [2, 2, 1, 1, 2] and got[3].total == 1
        first, last = got[1].runs[0], got[4].runs[0]  # (the first call went out alone)
        assert first == last and first is not last and first.snapshot is not last.snapshot
        first.snapshot["status"] = "changed by one caller"
        assert last == expected[0].runs[0]

    async def test_concurrent_persists_each_land_whole(self, workflows: WorkflowsStorage) -> None:
        # Persists in flight together (a backend may write them in one statement) land as one by one.
        runs = [(uid("run"), sample_snapshot("running")) for _ in range(12)]
        for i, (_, snapshot) in enumerate(runs):
            snapshot["context"]["text"] = f"quote ' \" \\ {i} 🎉 \u2028"
        await asyncio.gather(*(
            workflows.persist_workflow_snapshot(workflow_name="wf", run_id=r, snapshot=s, resource_id=f"user-{i % 2}")
            for i, (r, s) in enumerate(runs)
        ))  # fmt: skip
        for i, (run_id, snapshot) in enumerate(runs):
            run = await workflows.get_workflow_run_by_id(run_id=run_id, workflow_name="wf")
            assert run is not None and run.snapshot == snapshot and run.resource_id == f"user-{i % 2}"
        # Again without a resource: each run keeps its own.
        done = {"status": "done"}
        await asyncio.gather(
            *(workflows.persist_workflow_snapshot(workflow_name="wf", run_id=r, snapshot=done) for r, _ in runs)
        )
        listed = await workflows.list_workflow_runs(workflow_name="wf", resource_id="user-1")
        assert listed.total == 6 and all(run.snapshot == {"status": "done"} for run in listed.runs)

    async def test_persist_upserts_and_keeps_created_at_and_resource(self, workflows: WorkflowsStorage) -> None:
        created = utc_now() - timedelta(hours=1)
        await workflows.persist_workflow_snapshot(
            workflow_name="wf",
            run_id="r",
            snapshot={"status": "running"},
            resource_id="user-1",
            created_at=created,
        )
        await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"status": "success"})
        run = await workflows.get_workflow_run_by_id(run_id="r", workflow_name="wf")
        assert run is not None
        assert run.snapshot == {"status": "success"} and run.resource_id == "user-1" and run.created_at == created
        assert run.updated_at > created
        assert (await workflows.list_workflow_runs()).total == 1

    async def test_invalid_snapshot_input(self, workflows: WorkflowsStorage) -> None:
        with pytest.raises(ValidationError):
            await workflows.persist_workflow_snapshot(workflow_name="", run_id="r", snapshot={})
        with pytest.raises(ValidationError):
            await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot="nope")  # type: ignore[arg-type]
        assert (await workflows.list_workflow_runs()).total == 0

    async def test_list_runs_filters_and_pages(self, workflows: WorkflowsStorage) -> None:
        assert (await workflows.list_workflow_runs()).runs == []
        base = utc_now() - timedelta(days=10)
        runs = []
        for i, (name, status) in enumerate([("a", "success"), ("a", "failed"), ("b", "success")]):
            at = base + timedelta(days=i)
            runs.append(
                await self._persist(workflows, name, status, created_at=at, updated_at=at, resource_id=f"res-{i % 2}")
            )
        everything = await workflows.list_workflow_runs()
        assert [r.run_id for r in everything.runs] == runs[::-1] and everything.total == 3
        assert {r.run_id for r in (await workflows.list_workflow_runs(workflow_name="a")).runs} == set(runs[:2])
        assert [r.run_id for r in (await workflows.list_workflow_runs(status="failed")).runs] == [runs[1]]
        ranged = await workflows.list_workflow_runs(
            from_date=base + timedelta(days=1), to_date=base + timedelta(days=2)
        )
        assert [r.run_id for r in ranged.runs] == [runs[2], runs[1]]
        by_resource = await workflows.list_workflow_runs(resource_id="res-0")
        assert {r.run_id for r in by_resource.runs} == {runs[0], runs[2]}
        assert (await workflows.list_workflow_runs(resource_id="nobody")).runs == []
        first = await workflows.list_workflow_runs(page=0, per_page=2)
        second = await workflows.list_workflow_runs(page=1, per_page=2)
        assert (len(first.runs), first.total, len(second.runs), second.total) == (2, 3, 1, 3)
        for run in everything.runs:
            assert run.created_at.tzinfo is not None and isinstance(run.snapshot, dict)

    async def test_get_and_delete_run(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", resource_id="res")
        run = await workflows.get_workflow_run_by_id(run_id=run_id)
        assert run is not None and run.workflow_name == "wf" and run.resource_id == "res"
        assert await workflows.get_workflow_run_by_id(run_id=run_id, workflow_name="other") is None
        assert await workflows.get_workflow_run_by_id(run_id="missing") is None
        await workflows.delete_workflow_run_by_id(run_id=run_id, workflow_name="wf")
        assert await workflows.get_workflow_run_by_id(run_id=run_id) is None
        await workflows.delete_workflow_run_by_id(run_id=run_id, workflow_name="wf")

    async def test_update_workflow_results(self, workflows: WorkflowsStorage) -> None:
        assert workflows.supports_concurrent_updates()
        run_id = await self._persist(workflows, "wf", "running")
        context = await workflows.update_workflow_results(
            workflow_name="wf",
            run_id=run_id,
            step_id="s1",
            result={"status": "success", "output": 1},
            request_context={"a": 1},
        )
        assert context["s1"] == {"status": "success", "output": 1} and "input" in context
        context = await workflows.update_workflow_results(
            workflow_name="wf",
            run_id=run_id,
            step_id="s1",
            result={"status": "success", "output": 2},
            request_context={"b": 2},
        )
        assert context["s1"]["output"] == 2
        snapshot = await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id)
        assert snapshot is not None and snapshot["requestContext"] == {"a": 1, "b": 2}

    async def test_update_results_creates_a_missing_run(self, workflows: WorkflowsStorage) -> None:
        context = await workflows.update_workflow_results(
            workflow_name="wf",
            run_id="new-run",
            step_id="s",
            result={"status": "success"},
            request_context={},
        )
        assert context == {"s": {"status": "success"}}
        snapshot = await workflows.load_workflow_snapshot(workflow_name="wf", run_id="new-run")
        assert snapshot is not None and snapshot["status"] == "pending" and snapshot["runId"] == "new-run"

    async def test_foreach_outputs_merge_by_slot(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", "running")
        pending = {"__mastra_pending__": True}

        async def write(output: list[Any]) -> dict[str, Any]:
            return await workflows.update_workflow_results(
                workflow_name="wf",
                run_id=run_id,
                step_id="loop",
                result={"status": "running", "output": output},
                request_context={},
            )

        await write([pending, pending, pending])
        await write([None, "b", None])
        context = await write(["a", None, None])
        assert context["loop"]["output"] == ["a", "b", None]

    async def test_concurrent_step_results_all_survive(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", "running")
        await asyncio.gather(
            *(
                workflows.update_workflow_results(
                    workflow_name="wf",
                    run_id=run_id,
                    step_id=f"step-{i}",
                    result={"status": "success", "output": i},
                    request_context={f"k{i}": i},
                )
                for i in range(20)
            )
        )
        snapshot = await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id)
        assert snapshot is not None
        assert all(snapshot["context"][f"step-{i}"]["output"] == i for i in range(20))
        assert snapshot["requestContext"] == {f"k{i}": i for i in range(20)}

    async def test_update_workflow_state(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", "running")
        before = await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id)
        assert before is not None
        state = await workflows.update_workflow_state(
            workflow_name="wf", run_id=run_id, updates={"status": "suspended", "suspendedPaths": {"s": [0]}}
        )
        assert state is not None and state["status"] == "suspended" and state["context"] == before["context"]
        assert await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id) == state
        assert (
            await workflows.update_workflow_state(workflow_name="wf", run_id="missing", updates={"status": "x"}) is None
        )

    async def test_update_state_compare_and_set(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", "suspended")
        refused = await workflows.update_workflow_state(
            workflow_name="wf", run_id=run_id, updates={"status": "success"}, expected_status="running"
        )
        assert refused is None
        snapshot = await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id)
        assert snapshot is not None and snapshot["status"] == "suspended"
        accepted = await workflows.update_workflow_state(
            workflow_name="wf",
            run_id=run_id,
            updates={"status": "running"},
            expected_status=["waiting", "suspended"],
        )
        assert accepted is not None and accepted["status"] == "running"

    async def test_concurrent_resumes_only_one_wins(self, workflows: WorkflowsStorage) -> None:
        run_id = await self._persist(workflows, "wf", "suspended")
        outcomes = await asyncio.gather(
            *(
                workflows.update_workflow_state(
                    workflow_name="wf",
                    run_id=run_id,
                    updates={"status": "running", "resumedBy": i},
                    expected_status="suspended",
                )
                for i in range(10)
            )
        )
        winners = [o for o in outcomes if o is not None]
        assert len(winners) == 1
        snapshot = await workflows.load_workflow_snapshot(workflow_name="wf", run_id=run_id)
        assert snapshot is not None and snapshot["resumedBy"] == winners[0]["resumedBy"]
