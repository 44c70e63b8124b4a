"""A cancelled call on the embedded engine has committed wholly or left no trace, and the connection
stays usable: every write method is cancelled at every stage it goes through on the writer thread.

The stages are found, not guessed: an execution tracer on the writer connection records the
statements a method runs (``BEGIN IMMEDIATE`` … ``COMMIT``), then the writer is held at each of them
in turn while the caller is cancelled. A caller cancelled while its unit is still queued (the writer
held by another unit) must leave no trace; one cancelled while its unit runs must find it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from mastra_storage import ConflictError
from mastra_storage.libsql import LibSQLStore
from mastra_storage.libsql.local import LocalConnection, LocalEngine
from mastra_storage.testing.samples import sample_agent, sample_snapshot, sample_span, sample_thread, timed_messages

State = Literal["all", "none"]


def whole(new: int, old: int, total: int) -> State:
    """``all`` when every part changed, ``none`` when none did; a mix fails the test."""
    assert new + old == total, f"{new} changed, {old} unchanged of {total}"
    assert new in (0, total), f"half-written: {new} of {total} parts changed"
    return "all" if new == total else "none"


@dataclass
class Scenario:
    prepare: Callable[[LibSQLStore, int], Awaitable[None]]
    call: Callable[[LibSQLStore, int], Awaitable[object]]
    state: Callable[[LibSQLStore, int], Awaitable[State]]


async def _nothing(store: LibSQLStore, n: int) -> None:
    return None


async def _thread_with_messages(store: LibSQLStore, n: int) -> None:
    thread = await store.memory.save_thread(thread=sample_thread(id=f"t{n}", title="old", metadata={"v": 0}))
    await store.memory.save_messages(messages=timed_messages(thread, 3))


async def _message_texts(store: LibSQLStore, thread_id: str) -> list[str]:
    return [m.content["content"] for m in (await store.memory.list_messages(thread_id=thread_id)).messages]


async def _update_messages(store: LibSQLStore, n: int) -> object:
    messages = (await store.memory.list_messages(thread_id=f"t{n}")).messages
    return await store.memory.update_messages(
        messages=[{"id": m.id, "content": {"format": 2, "parts": [], "content": "new"}} for m in messages]
    )


async def _updated_messages(store: LibSQLStore, n: int) -> State:
    texts = await _message_texts(store, f"t{n}")
    return whole(texts.count("new"), len(texts) - texts.count("new"), 3)


async def _delete_messages(store: LibSQLStore, n: int) -> None:
    ids = [m.id for m in (await store.memory.list_messages(thread_id=f"t{n}")).messages]
    await store.memory.delete_messages(message_ids=ids)


async def _deleted_messages(store: LibSQLStore, n: int) -> State:
    left = len(await _message_texts(store, f"t{n}"))
    return whole(3 - left, left, 3)


async def _updated_thread(store: LibSQLStore, n: int) -> State:
    thread = await store.memory.get_thread_by_id(thread_id=f"t{n}")
    assert thread is not None
    new = int(thread.title == "new") + int(thread.metadata == {"v": 1})
    return whole(new, int(thread.title == "old") + int(thread.metadata == {"v": 0}), 2)


async def _cloned(store: LibSQLStore, n: int) -> State:
    clone = await store.memory.get_thread_by_id(thread_id=f"clone{n}")
    copies = len(await _message_texts(store, f"clone{n}"))
    return whole(int(clone is not None) + copies, 4 - int(clone is not None) - copies, 4)


async def _deleted_thread(store: LibSQLStore, n: int) -> State:
    thread = await store.memory.get_thread_by_id(thread_id=f"t{n}")
    left = len(await _message_texts(store, f"t{n}"))
    return whole(4 - left - int(thread is not None), left + int(thread is not None), 4)


async def _resource(store: LibSQLStore, n: int) -> None:
    await store.memory.save_resource(resource={"id": f"r{n}", "working_memory": "old", "metadata": {"v": 0}})


async def _updated_resource(store: LibSQLStore, n: int) -> State:
    res = await store.memory.get_resource_by_id(resource_id=f"r{n}")
    assert res is not None
    new = int(res.working_memory == "new") + int(res.metadata == {"v": 1})
    return whole(new, int(res.working_memory == "old") + int(res.metadata == {"v": 0}), 2)


async def _thread(store: LibSQLStore, n: int) -> None:
    await store.memory.save_thread(thread=sample_thread(id=f"t{n}"))


async def _saved_messages(store: LibSQLStore, n: int) -> State:
    saved = len(await _message_texts(store, f"t{n}"))
    return whole(saved, 5 - saved, 5)


async def _run(store: LibSQLStore, n: int) -> None:
    await store.workflows.persist_workflow_snapshot(
        workflow_name="wf", run_id=f"run{n}", snapshot=sample_snapshot("running", step_id="first")
    )


async def _snapshot(store: LibSQLStore, n: int) -> dict[str, Any]:
    snapshot = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id=f"run{n}")
    assert snapshot is not None
    return snapshot


async def _step_result(store: LibSQLStore, n: int) -> State:
    context = (await _snapshot(store, n))["context"]
    return whole(int("second" in context), int("second" not in context), 1)


async def _run_state(store: LibSQLStore, n: int) -> State:
    snapshot = await _snapshot(store, n)
    done = int(snapshot["status"] == "success") + int(snapshot.get("result") == {"ok": True})
    return whole(done, int(snapshot["status"] == "running") + int("result" not in snapshot), 2)


async def _agent(store: LibSQLStore, n: int) -> None:
    await store.agents.create(agent=sample_agent(id=f"a{n}"))


async def _created_agent(store: LibSQLStore, n: int) -> State:
    agent = await store.agents.get_by_id(id=f"a{n}")
    versions = await store.agents.count_versions(agent_id=f"a{n}")
    return whole(int(agent is not None) + versions, 2 - int(agent is not None) - versions, 2)


async def _new_version(store: LibSQLStore, n: int) -> State:
    versions = await store.agents.count_versions(agent_id=f"a{n}")
    return whole(versions - 1, 2 - versions, 1)


async def _updated_agent(store: LibSQLStore, n: int) -> State:
    agent = await store.agents.get_by_id(id=f"a{n}")
    assert agent is not None
    changed = int(agent.status == "archived") + int(agent.metadata == {"v": 1})
    return whole(changed, int(agent.status != "archived") + int(agent.metadata != {"v": 1}), 2)


async def _traces(store: LibSQLStore, n: int) -> None:
    await store.observability.batch_create_spans(
        spans=[sample_span(trace_id=f"tr{n}-{k}", span_id=f"s{i}") for k in range(2) for i in range(3)]
    )


async def _deleted_traces(store: LibSQLStore, n: int) -> State:
    left = [await store.observability.get_trace(trace_id=f"tr{n}-{k}") for k in range(2)]
    spans = sum(len(trace.spans) for trace in left if trace is not None)
    return whole(6 - spans, spans, 6)


SCENARIOS: dict[str, Scenario] = {
    "update_thread": Scenario(
        _thread_with_messages,
        lambda s, n: s.memory.update_thread(id=f"t{n}", title="new", metadata={"v": 1}),
        _updated_thread,
    ),
    "update_messages": Scenario(_thread_with_messages, _update_messages, _updated_messages),
    "delete_messages": Scenario(_thread_with_messages, _delete_messages, _deleted_messages),
    "clone_thread": Scenario(
        _thread_with_messages, lambda s, n: s.memory.clone_thread(source_thread_id=f"t{n}", new_thread_id=f"clone{n}"),
        _cloned,
    ),
    "delete_thread": Scenario(_thread_with_messages, lambda s, n: s.memory.delete_thread(thread_id=f"t{n}"),
                              _deleted_thread),
    "save_messages": Scenario(
        _thread, lambda s, n: s.memory.save_messages(messages=timed_messages(sample_thread(id=f"t{n}"), 5)),
        _saved_messages,
    ),
    "update_resource": Scenario(
        _resource,
        lambda s, n: s.memory.update_resource(resource_id=f"r{n}", working_memory="new", metadata={"v": 1}),
        _updated_resource,
    ),
    "update_workflow_results": Scenario(
        _run,
        lambda s, n: s.workflows.update_workflow_results(
            workflow_name="wf", run_id=f"run{n}", step_id="second", result={"status": "success"}, request_context={}
        ),
        _step_result,
    ),
    "update_workflow_state": Scenario(
        _run,
        lambda s, n: s.workflows.update_workflow_state(
            workflow_name="wf", run_id=f"run{n}", updates={"status": "success", "result": {"ok": True}}
        ),
        _run_state,
    ),
    "agents.create": Scenario(_nothing, lambda s, n: s.agents.create(agent=sample_agent(id=f"a{n}")), _created_agent),
    "agents.create_version": Scenario(
        _agent, lambda s, n: s.agents.create_version(agent_id=f"a{n}", config={"instructions": "v2"}), _new_version
    ),
    "agents.update": Scenario(
        _agent, lambda s, n: s.agents.update(id=f"a{n}", status="archived", metadata={"v": 1}), _updated_agent
    ),
    "batch_delete_traces": Scenario(
        _traces, lambda s, n: s.observability.batch_delete_traces(trace_ids=[f"tr{n}-0", f"tr{n}-1"]),
        _deleted_traces,
    ),
}  # fmt: skip


class WriterPause:
    """An execution tracer on the writer connection (apsw's ``exec_trace``, called before each
    statement runs): records the statements of the next write transaction and, if asked, holds the
    writer thread at statement ``at`` until released."""

    def __init__(self, at: int | None = None, *, keep: bool = False) -> None:
        self.at = at
        self.keep = keep  # go on recording after the first transaction
        self.statements: list[str] = []
        self.reached = threading.Event()
        self.release = threading.Event()
        self._in_tx = False

    def __call__(self, cursor: object, sql: str, bindings: object) -> bool:
        self.see(sql.strip())
        return True  # go on and run it

    def see(self, sql: str) -> None:
        if sql.startswith("BEGIN IMMEDIATE") and not self.statements:
            self._in_tx = True
        if not self._in_tx:
            return
        self.statements.append(sql)
        if sql.startswith(("COMMIT", "ROLLBACK")) and not sql.startswith("ROLLBACK TO"):
            self._in_tx = self.keep
        if self.at == len(self.statements) - 1:
            self.reached.set()
            assert self.release.wait(10)


def engine_of(store: LibSQLStore) -> LocalEngine:
    conn = store.memory.db
    assert isinstance(conn, LocalConnection)
    return conn.engine


async def trace_writer(engine: LocalEngine, callback: WriterPause | None) -> None:
    await engine.write(lambda db: setattr(db, "exec_trace", callback))


async def hold_writer(
    engine: LocalEngine, callback: WriterPause | None = None
) -> tuple[asyncio.Future[bool], threading.Event]:
    """Occupies the writer thread with a unit that waits for the returned gate (and, if given, sets
    the trace callback that will see the next transaction)."""
    started, gate = threading.Event(), threading.Event()

    def hold(db: Any) -> bool:
        if callback is not None:
            db.exec_trace = callback
        started.set()
        return gate.wait(10)

    blocker = asyncio.ensure_future(engine.write(hold))
    assert await asyncio.to_thread(started.wait, 10)
    return blocker, gate


async def wait_queued(engine: LocalEngine, count: int) -> None:
    """Lets the loop run until ``count`` units wait in the writer's queue."""
    for _ in range(10_000):
        if engine._writes.qsize() >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError("the unit never reached the writer's queue")


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_cancelled_writes_commit_wholly_or_leave_no_trace(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]
    url = f"file:{tmp_path / 'cancel.db'}"
    expected: dict[int, State] = {}
    store = LibSQLStore(id="c", url=url)
    await store.init()
    engine = engine_of(store)

    # Run 0, not cancelled: which statements the method runs on the writer.
    await scenario.prepare(store, 0)
    recorder = WriterPause()
    await trace_writer(engine, recorder)
    await scenario.call(store, 0)
    await trace_writer(engine, None)
    stages = recorder.statements
    assert stages[0] == "BEGIN IMMEDIATE" and stages[-1] == "COMMIT", stages
    expected[0] = "all"

    # Run 1: cancelled while its unit waits behind another one: no trace.
    await scenario.prepare(store, 1)
    blocker, gate = await hold_writer(engine)
    task = asyncio.ensure_future(scenario.call(store, 1))
    await wait_queued(engine, 1)
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await blocker
    expected[1] = "none"

    # Runs 2…: the writer held at each statement while the caller is cancelled: committed wholly.
    for k, sql in enumerate(stages):
        n = k + 2
        await scenario.prepare(store, n)
        pause = WriterPause(at=k)
        await trace_writer(engine, pause)
        task = asyncio.ensure_future(scenario.call(store, n))
        assert await asyncio.to_thread(pause.reached.wait, 10), f"never reached {sql!r}"
        task.cancel()
        pause.release.set()
        with pytest.raises(asyncio.CancelledError):  # never a spurious BackendError
            await task
        await trace_writer(engine, None)
        expected[n] = "all"

    for n, state in expected.items():
        assert await scenario.state(store, n) == state, (n, stages[n - 2] if n >= 2 else "queued")
    # The connection is not left inside a transaction: the same method runs again, to completion.
    n = len(expected)
    await scenario.prepare(store, n)
    await scenario.call(store, n)
    expected[n] = "all"
    await store.close()

    async with LibSQLStore(id="c", url=url) as reopened:
        for n, state in expected.items():
            assert await scenario.state(reopened, n) == state


async def test_cancellations_at_random_moments_lose_no_acknowledged_write(tmp_path: Path) -> None:
    """Read-modify-writes under ``wait_for`` with tiny timeouts, interleaved with acknowledged writes:
    every step result is wholly there or not, versions stay numbered 1..N, and every acknowledged
    write survives close and reopen."""
    url = f"file:{tmp_path / 'random.db'}"
    rng = random.Random(7)
    acknowledged: list[str] = []
    async with LibSQLStore(id="r", url=url) as store:
        await store.workflows.persist_workflow_snapshot(
            workflow_name="wf", run_id="run", snapshot=sample_snapshot("running", step_id="first")
        )
        await store.agents.create(agent=sample_agent(id="agent"))
        for i in range(300):
            calls: list[Awaitable[object]] = [
                store.workflows.update_workflow_results(
                    workflow_name="wf", run_id="run", step_id=f"step{i}", result={"status": "success", "i": i},
                    request_context={},
                ),
                store.agents.create_version(agent_id="agent", config={"instructions": f"v{i}"}),
            ]  # fmt: skip
            for call in calls:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call, timeout=rng.choice([0, 1e-5, 1e-4, 5e-4]))
            thread = await store.memory.save_thread(thread=sample_thread(id=f"ack{i}"))
            acknowledged.append(thread.id)
    async with LibSQLStore(id="r", url=url) as store:
        for thread_id in acknowledged:
            assert await store.memory.get_thread_by_id(thread_id=thread_id) is not None
        snapshot = await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="run")
        assert snapshot is not None
        for step, result in snapshot["context"].items():
            if step.startswith("step"):
                assert result == {"status": "success", "i": int(step[4:])}
        versions = (await store.agents.list_versions(agent_id="agent", per_page=False)).versions
        assert sorted(v.version_number for v in versions) == list(range(1, len(versions) + 1))
        assert len(versions) > 1
        # Still fully usable after all that: a transaction-backed call succeeds.
        await store.agents.create_version(agent_id="agent", config={"instructions": "last"})


def test_an_unclosed_store_does_not_break_the_next_event_loop(tmp_path: Path) -> None:
    """A script or CLI calls ``asyncio.run`` twice and forgets ``close()`` the first time."""
    url = f"file:{tmp_path / 'loops.db'}"

    async def first() -> LibSQLStore:
        store = LibSQLStore(id="first", url=url)
        await store.memory.save_thread(thread=sample_thread(id="from-first"))
        await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="run", step_id="a", result={"status": "success"}, request_context={}
        )
        return store  # never closed

    async def second() -> None:
        store = LibSQLStore(id="second", url=url)
        assert await store.memory.get_thread_by_id(thread_id="from-first") is not None
        await store.memory.save_thread(thread=sample_thread(id="from-second"))
        context = await store.workflows.update_workflow_results(
            workflow_name="wf", run_id="run", step_id="b", result={"status": "success"}, request_context={}
        )
        assert set(context) >= {"a", "b"}
        await store.close()

    leftover = asyncio.run(first())
    asyncio.run(second())
    asyncio.run(second())  # and once more, with the first loop long gone
    asyncio.run(leftover.close())  # closing from yet another loop works too


async def test_stores_of_one_file_with_different_options_share_the_writer(tmp_path: Path) -> None:
    """Different retry and busy-timeout settings on one file: still one writer, never ``database is locked``."""
    url = f"file:{tmp_path / 'mixed.db'}"
    patient = LibSQLStore(id="a", url=url, busy_timeout_ms=5000, max_retries=5)
    hasty = LibSQLStore(id="b", url=url, busy_timeout_ms=0, max_retries=0, initial_backoff_ms=0)
    await patient.init()
    await hasty.init()
    assert engine_of(patient) is engine_of(hasty)
    thread = await patient.memory.save_thread(thread=sample_thread(id="mixed"))

    async def write(store: LibSQLStore, k: int) -> None:
        for i in range(20):
            await store.memory.save_messages(messages=timed_messages(thread, 5))
            await store.workflows.update_workflow_results(
                workflow_name="wf", run_id="run", step_id=f"s{k}-{i}", result={"status": "success"}, request_context={}
            )

    await asyncio.gather(*(write(store, k) for k, store in enumerate([patient, hasty] * 4)))
    assert (await hasty.memory.list_messages(thread_id="mixed", per_page=1)).total == 8 * 20 * 5
    snapshot = await patient.workflows.load_workflow_snapshot(workflow_name="wf", run_id="run")
    assert snapshot is not None and len(snapshot["context"]) == 8 * 20
    await patient.close()
    await hasty.close()


async def test_one_failing_unit_in_a_group_rolls_back_alone(tmp_path: Path) -> None:
    """Concurrent writes share a transaction; the one that fails (a conflict) leaves the others committed."""
    async with LibSQLStore(id="g", url=f"file:{tmp_path / 'group.db'}") as store:
        await store.agents.create(agent=sample_agent(id="taken"))
        engine = engine_of(store)
        recorder = WriterPause(keep=True)  # sees what the writer runs next: the group
        blocker, gate = await hold_writer(engine, recorder)
        calls = [store.agents.create(agent=sample_agent(id=f"ok{i}")) for i in range(5)]
        calls.insert(2, store.agents.create(agent=sample_agent(id="taken")))
        tasks = [asyncio.ensure_future(call) for call in calls]
        await wait_queued(engine, len(tasks))
        gate.set()  # the six queued units now run as one group
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await blocker
        assert [type(r).__name__ for r in results].count("ConflictError") == 1
        assert isinstance(results[2], ConflictError)
        # Back to back first; the conflict rolls that back; then a SAVEPOINT per unit, one undone, one COMMIT.
        statements = recorder.statements
        assert statements.count("BEGIN IMMEDIATE") == 2 and statements.count("ROLLBACK") == 1
        assert statements.count("SAVEPOINT unit") == 6 and statements.count("ROLLBACK TO unit") == 1
        assert statements.count("COMMIT") == 1 and statements[-1] == "COMMIT"
        for i in range(5):
            assert await store.agents.count_versions(agent_id=f"ok{i}") == 1
        assert (await store.agents.list()).total == 6
