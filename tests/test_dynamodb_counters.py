"""DynamoDB list totals kept in per-key counters (docs/dynamodb.md §4): a page and its total in two
requests whatever the items under the key, and counters that stay exact under re-saves, moves,
deletes, concurrent writers in two clients, cancellation and migration from a table written before
counters existed. Every check compares the counters with the items actually in the table."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from mastra_storage.core.coalesce import GROUP_LIMIT
from mastra_storage.core.codec import utc_now
from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.testing.samples import sample_agent, sample_message, sample_score, sample_span, sample_thread
from mastra_storage.types import MessageUpdate, Page, TtlConfig, WorkflowRunsResult

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table, requests_sent

DOMAINS = ("memory", "workflows", "scores", "observability", "agents")


def _store(table: str, **kw: Any) -> DynamoDBStore:
    return DynamoDBStore(id="ddb", table_name=table, endpoint_url=DYNAMODB_URL, credentials=CREDENTIALS, **kw)


@pytest.fixture
async def table() -> AsyncIterator[str]:
    name = new_table()
    yield name
    await drop_table(name)


@pytest.fixture
async def store(table: str) -> AsyncIterator[DynamoDBStore]:
    ddb = _store(table, create_table=True)
    await ddb.init()
    yield ddb
    await ddb.close()


async def _scan(store: DynamoDBStore) -> list[dict[str, Any]]:
    client = await store.connection.client()
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {"TableName": store.connection.table}
    while True:
        page = await client.scan(**request)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def audit(store: DynamoDBStore) -> dict[str, int]:
    """Asserts that every counter equals the number of items in its group (read from a Scan of the
    whole table), and returns the counts."""
    items = await _scan(store)
    kept: Counter[str] = Counter()
    truth: Counter[str] = Counter()
    for item in items:
        if item["e"]["S"].startswith("counter."):
            kept[item["pk"]["S"].removeprefix("COUNT#")] += int(item["cnt"]["N"])
    for domain in DOMAINS:
        counting = getattr(store, domain).counting
        for item in items:
            if item["e"]["S"] in getattr(store, domain).entities:
                truth.update(counting.groups(item))
    assert +kept == +truth, {g: (kept[g], truth[g]) for g in set(kept) | set(truth) if kept[g] != truth[g]}
    return dict(truth)


async def test_a_page_and_its_total_are_two_requests_whatever_the_items(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    base = utc_now() - timedelta(hours=1)
    for start in range(0, 600, 100):
        batch = [sample_message(thread, created_at=base + timedelta(seconds=i)) for i in range(start, start + 100)]
        await store.memory.save_messages(messages=batch)
    for i in range(150):
        await store.scores.save_score(score=sample_score(scorer_id="sc", run_id="run", entity_id="e"))
        await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"run-{i}", snapshot={"i": i})
    await store.observability.batch_create_spans(spans=[sample_span() for _ in range(120)])
    for _ in range(3):
        await store.memory.save_thread(thread=sample_thread(resource_id="r"))

    sent = await requests_sent(store)
    page = await store.memory.list_messages(thread_id=thread.id, per_page=20)
    assert (len(page.messages), page.total, sent) == (20, 600, Counter({"Query": 1, "BatchGetItem": 1}))
    calls: dict[str, tuple[Awaitable[Page | WorkflowRunsResult], int]] = {
        "runs": (store.workflows.list_workflow_runs(workflow_name="wf", per_page=20), 150),
        "all runs": (store.workflows.list_workflow_runs(per_page=20), 150),
        "scores": (store.scores.list_scores_by_scorer_id(scorer_id="sc", per_page=20), 150),
        "by run": (store.scores.list_scores_by_run_id(run_id="run", per_page=20), 150),
        "traces": (store.observability.list_traces(per_page=20), 120),
        "threads": (store.memory.list_threads(resource_id="r", per_page=2), 4),
    }
    for name, (call, total) in calls.items():
        sent.clear()
        result = await call
        assert (result.total, sent) == (total, Counter({"Query": 1, "BatchGetItem": 1})), name
    sent.clear()  # a filtered list still counts what it matches: the counters only know whole keys
    filtered = await store.workflows.list_workflow_runs(workflow_name="wf", status="nope", per_page=20)
    assert filtered.total == 0 and sent["BatchGetItem"] == 0
    await audit(store)


async def test_resaves_moves_and_deletes_keep_every_counter_exact(store: DynamoDBStore) -> None:
    mem = store.memory
    a = await mem.save_thread(thread=sample_thread(resource_id="r1"))
    b = await mem.save_thread(thread=sample_thread(resource_id="r1"))
    messages = [sample_message(a) for _ in range(12)]
    await mem.save_messages(messages=messages)
    await mem.save_messages(messages=messages[:5])  # re-saves: no double count
    await mem.save_thread(thread=a)  # a re-saved thread
    await mem.update_messages(messages=[MessageUpdate(id=m.id, thread_id=b.id) for m in messages[:3]])
    counts = await audit(store)
    assert (counts["MSGS#T#" + a.id], counts["MSGS#T#" + b.id], counts["MSGS#R#r1"]) == (9, 3, 12)
    assert (await mem.list_messages(thread_id=b.id, per_page=1)).total == 3

    await mem.save_thread(thread=sample_thread(id=a.id, resource_id="r2"))  # the thread moves resource
    assert (await mem.list_threads(resource_id="r1")).total == 1
    assert (await mem.list_threads(resource_id="r2")).total == 1
    await mem.delete_messages(message_ids=[m.id for m in messages[3:6]])
    await mem.delete_messages(message_ids=[m.id for m in messages[3:6]])  # again: nothing more
    clone = await mem.clone_thread(source_thread_id=a.id)
    assert (await mem.list_messages(thread_id=clone.thread.id, per_page=1)).total == 6
    await mem.delete_thread(thread_id=a.id)
    counts = await audit(store)
    assert counts.get("MSGS#T#" + a.id, 0) == 0 and counts["MSGS#T#" + clone.thread.id] == 6
    leftover = [i for i in await _scan(store) if i["pk"]["S"] == "COUNT#MSGS#T#" + a.id]
    assert leftover == []  # a deleted thread's message counter goes with it

    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="x", snapshot={"s": 1})
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="x", snapshot={"s": 2})
    await store.workflows.persist_workflow_snapshot(
        workflow_name="wf", run_id="x", snapshot={"s": 3}, resource_id="res"
    )  # gains a resource: joins that list
    await store.workflows.update_workflow_results(
        workflow_name="wf", run_id="y", step_id="s", result={"status": "success"}, request_context={}
    )  # creates the run
    assert (await store.workflows.list_workflow_runs(resource_id="res")).total == 1
    assert (await store.workflows.list_workflow_runs(workflow_name="wf")).total == 2
    await store.workflows.delete_workflow_run_by_id(run_id="x", workflow_name="wf")
    payload = sample_score(scorer_id="s1")
    saved = await store.scores.save_score(score=payload)
    await store.scores.save_score(score=msgspec.structs.replace(payload, id=saved.id))  # saved again: counted once
    agent = await store.agents.create(agent=sample_agent())
    await store.agents.update(id=agent.id, status="published")
    assert (await store.agents.list()).total == 1
    await store.agents.delete(id=agent.id)
    root = sample_span()
    await store.observability.create_span(span=root)
    await store.observability.create_span(span=root)  # a retried create
    await store.observability.update_span(trace_id=root.trace_id, span_id=root.span_id, updates={"name": "n"})
    assert (await store.observability.list_traces()).total == 1
    await store.observability.batch_delete_traces(trace_ids=[root.trace_id])
    counts = await audit(store)
    assert (counts.get("AGENTS", 0), counts.get("ROOTS", 0), counts["WFRUNS"], counts["SCORES#S#s1"]) == (0, 0, 1, 1)


async def test_a_batch_that_turns_out_to_move_records_between_many_groups_is_split(store: DynamoDBStore) -> None:
    # 60 messages, each in a thread of its own, re-saved into one thread: planned as new (60 items
    # and 2 counters), they turn out to leave 60 groups — more than one transaction holds.
    threads = [await store.memory.save_thread(thread=sample_thread(resource_id="r")) for _ in range(60)]
    messages = [sample_message(t) for t in threads]
    await store.memory.save_messages(messages=messages)
    target = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    sent = await requests_sent(store)
    moved = [msgspec.structs.replace(m, thread_id=target.id) for m in messages]
    await store.memory.save_messages(messages=moved)
    assert sent["TransactWriteItems"] >= 3  # the guess, then the batch in two transactions
    counts = await audit(store)
    assert (counts["MSGS#T#" + target.id], counts.get("MSGS#T#" + threads[0].id, 0), counts["MSGS#R#r"]) == (60, 0, 60)


async def test_prune_and_clear_move_the_counters(store: DynamoDBStore) -> None:
    old = utc_now() - timedelta(days=40)
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    stale = [sample_message(thread, created_at=old + timedelta(seconds=i)) for i in range(10)]
    await store.memory.save_messages(messages=[*stale, sample_message(thread), sample_message(thread)])
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="old", snapshot={}, created_at=old)
    await store.prune(retention={"memory": {"messages": "30d"}, "workflows": {"workflowSnapshot": "30d"}})
    counts = await audit(store)
    assert (counts["MSGS#T#" + thread.id], counts.get("WFRUNS", 0)) == (2, 0)
    assert (await store.memory.list_messages(thread_id=thread.id, per_page=1)).total == 2
    await store.memory.dangerously_clear_all()  # the domain's counters go with its items
    assert await audit(store) == {}
    assert (await store.memory.list_threads()).total == 0


async def test_a_run_that_gains_a_resource_keeps_its_creation_order(store: DynamoDBStore) -> None:
    wf = store.workflows
    start = utc_now() - timedelta(hours=1)
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="early", snapshot={}, created_at=start)
    later = start + timedelta(minutes=10)
    await wf.persist_workflow_snapshot(
        workflow_name="wf", run_id="late", snapshot={}, resource_id="res", created_at=later
    )
    sent = await requests_sent(store)
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="early", snapshot={"s": 2}, resource_id="res")
    # The in-place update fails (the run joins a list), the counted transaction lands; no fix-up after.
    assert sent == Counter({"UpdateItem": 1, "TransactWriteItems": 1})
    page = await wf.list_workflow_runs(resource_id="res")
    assert [r.run_id for r in page.runs] == ["late", "early"] and page.total == 2  # newest first, by creation
    assert (await audit(store))["WFRUNS#R#res"] == 2


async def test_a_merge_guessed_new_is_a_put_of_what_the_update_would_create(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    message = sample_message(thread, metadata={"k": "v"})
    write = await store.memory._message_write(message)
    (action,) = write.actions()
    assert list(action) == ["Put"]
    await store.memory.conn.transact([action])
    put_made = await store.memory.conn.get(write.items[0])
    await store.memory.conn.transact([{"Delete": {"Key": {k: put_made[k] for k in ("pk", "sk")}}}])  # type: ignore[index]
    (update,) = write.actions("attribute_not_exists(pk)", {})  # the merge as an Update on an absent item
    assert list(update) == ["Update"]
    await store.memory.conn.transact([update])
    assert await store.memory.conn.get(write.items[0]) == put_made


async def test_merges_of_records_written_elsewhere_go_in_place_once_one_is_found(table: str) -> None:
    one, two = _store(table, create_table=True), _store(table)
    await one.init()
    await two.init()
    for i in range(5):
        await one.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"r{i}", snapshot={})
    sent = await requests_sent(two)
    await two.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r0", snapshot={"s": 1})
    assert sent == Counter({"TransactWriteItems": 2}), sent  # guessed new; learned it is not
    sent.clear()
    for i in range(1, 5):  # runs it never wrote, now first tried in place
        await two.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=f"r{i}", snapshot={"s": 1})
    assert sent == Counter({"UpdateItem": 4}), sent
    sent.clear()
    await two.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="new-1", snapshot={})
    await two.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="new-2", snapshot={})
    # The first new run: the in-place try learns it is absent; the next is guessed new again.
    assert sent == Counter({"UpdateItem": 1, "TransactWriteItems": 2}), sent
    runs = await one.workflows.list_workflow_runs(workflow_name="wf")
    assert runs.total == 7 and all(r.snapshot == {"s": 1} for r in runs.runs if r.run_id.startswith("r"))
    assert (await audit(two))["WFRUNS#W#wf"] == 7
    await one.close()
    await two.close()


async def test_saves_in_flight_together_share_a_transaction_and_count_exactly(store: DynamoDBStore) -> None:
    old = [await store.memory.save_thread(thread=sample_thread(resource_id="a")) for _ in range(5)]
    sent = await requests_sent(store)
    moved = [msgspec.structs.replace(t, resource_id="b") for t in old]  # re-saves that change lists
    new = [sample_thread(resource_id="ab"[i % 2]) for i in range(20)]
    runs = [f"run-{i}" for i in range(12)]
    await asyncio.gather(
        *(store.memory.save_thread(thread=t) for t in [*moved, *new]),
        *(store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=r, snapshot={}) for r in runs),
        *(store.scores.save_score(score=sample_score(scorer_id="judge")) for _ in range(12)),
    )
    # One save of each kind alone, the rest in shared transactions of GROUP_LIMIT records (again
    # where a re-save learned what its key held): far fewer than the 49 of one per save.
    groups = 3 + math.ceil(24 / GROUP_LIMIT) + 2 * math.ceil(11 / GROUP_LIMIT)
    assert groups <= sent["TransactWriteItems"] <= groups + 4 < 49, sent
    counts = await audit(store)
    assert (counts["THREADS#R#a"], counts["THREADS#R#b"], counts["THREADS"]) == (10, 15, 25)
    assert counts["WFRUNS#W#wf"] == 12
    assert (await store.scores.list_scores_by_scorer_id(scorer_id="judge", per_page=1)).total == 12


async def _cancel_every_other(calls: list[Awaitable[Any]], turns: int) -> list[bool]:
    """Starts ``calls``, lets the loop run ``turns`` turns, then cancels every other one (the
    first goes out alone, the rest share groups); whether each call ended cancelled."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    for _ in range(turns):
        await asyncio.sleep(0)
    for task in tasks[1::2]:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [task.cancelled() for task in tasks]


async def test_cancelled_callers_of_a_shared_transaction_leave_the_counters_exact(store: DynamoDBStore) -> None:
    kept: list[str] = []
    for turns in range(0, 60, 4):  # every stage: waiting for the group, sent, committed
        threads = [sample_thread(resource_id="r") for _ in range(8)]
        cancelled = await _cancel_every_other([store.memory.save_thread(thread=t) for t in threads], turns)
        kept += [t.id for t, gone in zip(threads, cancelled, strict=True) if not gone]
    counts = await audit(store)  # each cancelled save is wholly there (with its counters) or not at all
    listed = await store.memory.list_threads(resource_id="r", per_page=False)
    assert set(kept) <= {t.id for t in listed.threads} and counts["THREADS#R#r"] == listed.total


async def test_message_saves_in_flight_together_share_transactions(store: DynamoDBStore) -> None:
    mem = store.memory
    busy = await mem.save_thread(thread=sample_thread(resource_id="r"))
    batches = [[sample_message(busy) for _ in range(10)] for _ in range(16)]
    sent = await requests_sent(store)
    await asyncio.gather(*(mem.save_messages(messages=b) for b in batches))
    # The first alone, the other 15 in groups of GROUP_LIMIT calls: 80 messages, two counters and
    # the bump in one transaction.
    assert sent == Counter({"TransactWriteItems": 1 + math.ceil(15 / GROUP_LIMIT)}), sent
    listed = await mem.list_messages(thread_id=busy.id, per_page=False)
    assert {m.id for m in listed.messages} == {m.id for b in batches for m in b} and listed.total == 160
    assert (await mem.get_thread_by_id(thread_id=busy.id)).updated_at > busy.updated_at  # type: ignore[union-attr]
    # Calls that do not fit one transaction together are split between transactions, each call's
    # messages whole in one: 15 actions each (12 messages, two counters, a bump), 6 per transaction.
    threads = [await mem.save_thread(thread=sample_thread(resource_id=f"r{i}")) for i in range(9)]
    sent.clear()
    await asyncio.gather(*(mem.save_messages(messages=[sample_message(t) for _ in range(12)]) for t in threads))
    assert sent == Counter({"TransactWriteItems": 1 + math.ceil(8 / 6)}), sent
    counts = await audit(store)
    assert [counts["MSGS#T#" + t.id] for t in threads] == [12] * 9 and counts["MSGS#T#" + busy.id] == 160


async def test_a_shared_message_transaction_the_service_refuses_is_retried_call_by_call(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    shared = sample_message(thread)
    # Two calls of one group write the same message: one transaction may not touch an item twice.
    batches = [[sample_message(thread)], *([shared, sample_message(thread)] for _ in range(2))]
    batches += [[sample_message(thread)] for _ in range(5)]
    sent = await requests_sent(store)
    await asyncio.gather(*(store.memory.save_messages(messages=b) for b in batches))
    # The first alone, the refused group, each of its calls alone, and the later of the two saves of
    # the shared message once more (it guessed the message new, and learns it is not).
    assert sent == Counter({"TransactWriteItems": 1 + 1 + 7 + 1}), sent
    listed = await store.memory.list_messages(thread_id=thread.id, per_page=False)
    assert {m.id for m in listed.messages} == {m.id for b in batches for m in b} and listed.total == 9
    assert (await audit(store))["MSGS#T#" + thread.id] == 9


async def test_cancelled_callers_of_a_shared_message_transaction_land_whole_or_not_at_all(
    store: DynamoDBStore,
) -> None:
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    kept: list[list[str]] = []
    gone: list[list[str]] = []
    for turns in range(0, 60, 4):  # every stage: waiting for the group, sent, committed
        batches = [[sample_message(thread) for _ in range(5)] for _ in range(8)]
        cancelled = await _cancel_every_other([store.memory.save_messages(messages=b) for b in batches], turns)
        for batch, was_cancelled in zip(batches, cancelled, strict=True):
            (gone if was_cancelled else kept).append([m.id for m in batch])
    listed = await store.memory.list_messages(thread_id=thread.id, per_page=False)
    present = {m.id for m in listed.messages}
    assert all(set(ids) <= present for ids in kept)
    assert all(set(ids) <= present or not set(ids) & present for ids in gone)  # a cancelled call: all or nothing
    assert (await audit(store))["MSGS#T#" + thread.id] == listed.total == len(present)


async def test_concurrent_writers_in_two_clients_count_each_record_once(table: str) -> None:
    one, two = _store(table, create_table=True), _store(table)
    await one.init()
    await two.init()
    thread = await one.memory.save_thread(thread=sample_thread(resource_id="r"))
    messages = [sample_message(thread) for _ in range(40)]
    # The same 40 messages saved and re-saved by both clients at once, in overlapping batches.
    batches = [messages[i : i + 10] for i in range(0, 40, 5)]
    await asyncio.gather(*(s.memory.save_messages(messages=b) for b in batches for s in (one, two)))
    runs = [f"run-{i}" for i in range(10)]
    await asyncio.gather(
        *(
            s.workflows.persist_workflow_snapshot(workflow_name="wf", run_id=r, snapshot={"by": k})
            for r in runs
            for k, s in enumerate((one, two, one))
        )
    )
    threads = [sample_thread(resource_id="r") for _ in range(10)]
    await asyncio.gather(*(s.memory.save_thread(thread=t) for t in threads for s in (one, two)))
    await asyncio.gather(*(s.memory.delete_messages(message_ids=[m.id for m in messages[:20]]) for s in (one, two)))
    counts = await audit(one)
    assert (counts["MSGS#T#" + thread.id], counts["WFRUNS#W#wf"], counts["THREADS#R#r"]) == (20, 10, 11)
    await one.close()
    await two.close()


async def _cancel_at(store: DynamoDBStore, event: str, call: Awaitable[Any]) -> None:
    """Runs ``call`` until the client reaches ``event`` (a botocore event), and cancels it there."""
    client = await store.connection.client()
    reached, hold = asyncio.Event(), asyncio.Event()

    async def gate(**_: Any) -> None:
        reached.set()
        await hold.wait()

    client.meta.events.register(event, gate)
    task = asyncio.ensure_future(call)
    try:
        await asyncio.wait({task, asyncio.ensure_future(reached.wait())}, return_when=asyncio.FIRST_COMPLETED)
        assert reached.is_set(), "the call ended before reaching the event"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        client.meta.events.unregister(event, gate)


@pytest.mark.parametrize(
    ("stage", "lands"),
    [("before-send.dynamodb.TransactWriteItems", False), ("after-call.dynamodb.TransactWriteItems", True)],
)
async def test_a_cancelled_write_moves_its_counters_with_it_or_not_at_all(
    store: DynamoDBStore, stage: str, lands: bool
) -> None:
    mem = store.memory
    thread = await mem.save_thread(thread=sample_thread(resource_id="r"))
    kept = [sample_message(thread) for _ in range(4)]
    await mem.save_messages(messages=kept)
    expected = 4
    new = [sample_message(thread) for _ in range(5)]
    await _cancel_at(store, stage, mem.save_messages(messages=new))  # new messages
    expected += 5 if lands else 0
    # A batch with re-saves: its first transaction guesses them new and fails, whatever the stage;
    # cancelled there, the batch leaves no trace.
    await _cancel_at(store, stage, mem.save_messages(messages=[*kept, sample_message(thread)]))
    await _cancel_at(store, stage, mem.delete_messages(message_ids=[kept[0].id]))
    expected -= 1 if lands else 0
    run = store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={})
    await _cancel_at(store, stage, run)
    counts = await audit(store)
    listed = await mem.list_messages(thread_id=thread.id, per_page=False)
    assert len(listed.messages) == counts["MSGS#T#" + thread.id] == listed.total == expected
    assert counts.get("WFRUNS#W#wf", 0) == (1 if lands else 0)
    await mem.save_messages(messages=new)  # the connection and the counters still work
    assert (await mem.list_messages(thread_id=thread.id, per_page=1)).total == expected + (0 if lands else 5)
    await audit(store)


async def test_a_table_written_before_counters_is_backfilled_by_migration_2(table: str) -> None:
    store = _store(table, create_table=True)
    await store.init()
    thread = await store.memory.save_thread(thread=sample_thread(resource_id="r"))
    await store.memory.save_messages(messages=[sample_message(thread) for _ in range(30)])
    await store.scores.save_score(score=sample_score(scorer_id="s"))
    client = await store.connection.client()
    # What an earlier release left: the items, no counters, the ledger at version 1.
    for item in await _scan(store):
        if item["e"]["S"].startswith("counter.") or item["sk"]["S"].endswith("#000002"):
            await client.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    await store.close()

    newer = _store(table)
    assert [(s.domain, s.version) for s in await newer.migrate(dry_run=True)] == [(d, 2) for d in DOMAINS]
    await newer.init()
    assert (await newer.memory.list_messages(thread_id=thread.id, per_page=5)).total == 30
    counts = await audit(newer)
    assert (counts["MSGS#T#" + thread.id], counts["THREADS"], counts["SCORES#S#s"]) == (30, 1, 1)
    # A counter gone wrong (items deleted behind the store's back) is repaired by rebuild_counters.
    await client.delete_item(TableName=table, Key={"pk": {"S": "THREAD#" + thread.id}, "sk": {"S": "THREAD"}})
    assert (await newer.rebuild_counters()).get("THREADS", 0) == 0
    await audit(newer)
    await newer.close()


async def test_with_ttl_on_totals_are_counted_and_leave_expired_items_out(table: str) -> None:
    store = _store(table, create_table=True, ttl={"message": TtlConfig(enabled=True, default_ttl_seconds=3600)})
    await store.init()
    thread = await store.memory.save_thread(thread=sample_thread())
    messages = [sample_message(thread) for _ in range(4)]
    await store.memory.save_messages(messages=messages)
    client = await store.connection.client()
    key = {"pk": {"S": "MSG#" + messages[0].id}, "sk": {"S": "MSG"}}
    await client.update_item(  # expired, not yet deleted by DynamoDB's sweeper
        TableName=table, Key=key, UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "ttl"}, ExpressionAttributeValues={":t": {"N": "1"}},
    )  # fmt: skip
    sent = await requests_sent(store)
    assert (await store.memory.list_messages(thread_id=thread.id, per_page=2)).total == 3
    assert sent["BatchGetItem"] == 0 and sent["Query"] == 2  # the page and a count
    await store.close()
