"""What only the DynamoDB backend has: table setup checks, request counts, TTL, large items, case-
preserving keys — all against DynamoDB Local, counting the requests the client really sends."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from mastra_storage import BackendError, MastraStorage, SchemaVersionError, StorageInitError, ValidationError
from mastra_storage.core.coalesce import GROUP_LIMIT
from mastra_storage.core.codec import utc_now
from mastra_storage.dynamodb import DynamoDBStore, MemoryDynamoDB, TableSetupError
from mastra_storage.dynamodb.items import s
from mastra_storage.dynamodb.table import definition
from mastra_storage.libsql import LibSQLStore
from mastra_storage.testing.samples import sample_agent, sample_message, sample_score, sample_span, sample_thread
from mastra_storage.types import TtlConfig

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table, requests_sent
from .loop_ticker import ticker

DOMAINS = ("memory", "workflows", "scores", "observability", "agents")
TTL_ENTITIES = ("thread", "message", "resource", "workflow_snapshot", "score", "span", "agent")
TTL = {name: TtlConfig(enabled=True, default_ttl_seconds=3600) for name in TTL_ENTITIES}


def _store(table: str, **kw: Any) -> DynamoDBStore:
    return DynamoDBStore(id="ddb", table_name=table, endpoint_url=DYNAMODB_URL, credentials=CREDENTIALS, **kw)


@pytest.fixture
async def store() -> AsyncIterator[DynamoDBStore]:
    table = new_table()
    ddb = _store(table, create_table=True, ttl=TTL)
    await ddb.init()
    yield ddb
    await ddb.close()
    await drop_table(table)


async def _raw(store: DynamoDBStore) -> Any:
    return await store.connection.client()


async def test_init_without_the_table_says_how_to_create_it() -> None:
    ddb = _store(new_table())
    with pytest.raises(StorageInitError) as err:
        await ddb.init()
    cause = err.value.failures["memory"]
    assert isinstance(cause, TableSetupError)
    assert "does not exist" in str(cause) and "docs/dynamodb.md" in str(cause) and "create_table=True" in str(cause)
    await ddb.close()


async def test_init_names_every_missing_gsi() -> None:
    table = new_table()
    ddb = _store(table)
    spec = definition(table)
    spec["GlobalSecondaryIndexes"] = spec["GlobalSecondaryIndexes"][:2]
    spec["AttributeDefinitions"] = [
        a for a in spec["AttributeDefinitions"] if a["AttributeName"][:4] not in ("gsi3", "gsi4")
    ]
    await (await _raw(ddb)).create_table(**spec)
    try:
        with pytest.raises(StorageInitError) as err:
            await ddb.init()
        message = str(err.value.failures["workflows"])
        assert "GSI gsi3" in message and "GSI gsi4" in message and "GSI gsi1 " not in message
    finally:
        await ddb.close()
        await drop_table(table)


async def test_create_table_builds_the_documented_layout_and_enables_ttl(store: DynamoDBStore) -> None:
    client = await _raw(store)
    table = (await client.describe_table(TableName=store.connection.table))["Table"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == ["gsi1", "gsi2", "gsi3", "gsi4"]
    ttl = (await client.describe_time_to_live(TableName=store.connection.table))["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl" and ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")


async def test_ttl_settings_are_validated() -> None:
    with pytest.raises(ValidationError, match="unknown ttl entity"):
        _store("table-x", ttl={"trace": TtlConfig(enabled=True)})
    with pytest.raises(ValidationError, match="one TTL attribute"):
        _store(
            "table-x",
            ttl={"thread": TtlConfig(enabled=True), "message": {"enabled": True, "attribute_name": "expires"}},
        )


async def test_ten_messages_are_one_request_and_large_batches_are_chunked(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    sent = await requests_sent(store)
    await store.memory.save_messages(messages=[sample_message(thread) for _ in range(10)])
    assert sent == Counter({"TransactWriteItems": 1})
    sent.clear()
    await store.memory.save_messages(messages=[sample_message(thread) for _ in range(250)])
    assert sent == Counter({"TransactWriteItems": 3})  # 99 actions per transaction with the thread's bump
    assert (await store.memory.list_messages(thread_id=thread.id, per_page=1)).total == 260


async def test_concurrent_lists_of_one_page_share_its_requests(store: DynamoDBStore) -> None:
    resource = "res-shared"
    for _ in range(3):
        await store.memory.save_thread(thread=sample_thread(resource_id=resource))
    alone = await store.memory.list_threads(resource_id=resource, per_page=2)
    sent = await requests_sent(store)
    await store.memory.list_threads(resource_id=resource, per_page=2)
    one_page = sum(sent.values())  # a Query for the page, a read of its counter
    sent.clear()
    got = await asyncio.gather(*(store.memory.list_threads(resource_id=resource, per_page=2) for _ in range(8)))
    # The first alone, the 7 that arrived while it ran as one read: two pages' requests, not eight.
    assert got == [alone] * 8 and sum(sent.values()) == 2 * one_page, sent
    sent.clear()
    pages = await asyncio.gather(*(store.memory.list_threads(resource_id=resource, page=p, per_page=2) for p in (0, 1)))
    assert [len(p.threads) for p in pages] == [2, 1] and sum(sent.values()) == 2 * one_page  # other pages: their own


async def test_concurrent_gets_go_out_together(store: DynamoDBStore) -> None:
    threads = [await store.memory.save_thread(thread=sample_thread()) for _ in range(40)]
    sent = await requests_sent(store)
    got = await asyncio.gather(*(store.memory.get_thread_by_id(thread_id=t.id) for t in threads))
    # The first alone, the 39 that arrived while it ran in groups of GROUP_LIMIT keys (40 GetItems before).
    assert got == threads and sent == Counter({"GetItem": 1, "BatchGetItem": math.ceil(39 / GROUP_LIMIT)}), sent
    sent.clear()
    assert await store.memory.get_thread_by_id(thread_id=threads[0].id) == threads[0]
    assert sent == Counter({"GetItem": 1})


async def test_concurrent_read_modify_writes_share_transactions_and_lose_nothing(store: DynamoDBStore) -> None:
    mem = store.memory
    ids = [f"res-{i}" for i in range(16)]
    for rid in ids:
        await mem.update_resource(resource_id=rid, working_memory="start")
    sent = await requests_sent(store)
    await asyncio.gather(*(mem.update_resource(resource_id=rid, working_memory=f"wm {rid}") for rid in ids))
    # Reads grouped as before; the writes too. Each wave of reads answers together and its writes
    # follow: at most one of them alone (when nothing is in flight), the rest GROUP_LIMIT to a
    # transaction — at most 5 transactions for the 16 (16 before).
    reads = math.ceil(15 / GROUP_LIMIT)
    assert (sent["GetItem"], sent["BatchGetItem"]) == (1, reads), sent
    assert sent["TransactWriteItems"] <= 1 + 2 * reads, sent
    assert [(await mem.get_resource_by_id(resource_id=rid)).working_memory for rid in ids] == [  # type: ignore[union-attr]
        f"wm {rid}" for rid in ids
    ]
    # Four writers to each of four resources: groups fail where an item changed since its read, and
    # only those writes read again — every merge lands.
    await asyncio.gather(
        *(mem.update_resource(resource_id=ids[r], metadata={f"k{k}": k}) for k in range(4) for r in range(4))
    )
    for rid in ids[:4]:
        found = await mem.get_resource_by_id(resource_id=rid)
        assert found is not None and found.metadata == {"k0": 0, "k1": 1, "k2": 2, "k3": 3} and found.working_memory


async def test_persisting_a_snapshot_is_one_request_that_keeps_the_run_created_at(store: DynamoDBStore) -> None:
    created = utc_now() - timedelta(days=2)
    wf = store.workflows
    await wf.persist_workflow_snapshot(
        workflow_name="wf", run_id="r", snapshot={"status": "running"}, created_at=created
    )
    sent = await requests_sent(store)
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"status": "success"})
    assert sent == Counter({"UpdateItem": 1})
    run = await wf.get_workflow_run_by_id(run_id="r", workflow_name="wf")
    assert run is not None and run.created_at == created and run.snapshot == {"status": "success"}
    # A resource given later: listed under it, in the order of the run's creation.
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="newer", snapshot={}, resource_id="owner")
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={}, resource_id="owner")
    listed = await wf.list_workflow_runs(resource_id="owner")
    assert [r.run_id for r in listed.runs] == ["newer", "r"] and listed.runs[1].created_at == created
    await wf.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"status": "done"})
    again = await wf.get_workflow_run_by_id(run_id="r")
    assert again is not None and again.resource_id == "owner" and again.created_at == created


async def test_no_list_scans(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    await store.memory.save_messages(messages=[sample_message(thread) for _ in range(3)])
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r1", snapshot={"status": "running"})
    score = await store.scores.save_score(score=sample_score())
    await store.observability.create_span(span=sample_span())
    await store.agents.create(agent=sample_agent())
    sent = await requests_sent(store)
    await store.memory.list_threads()
    await store.memory.list_threads(resource_id=thread.resource_id, order_by="updated_at")
    await store.memory.list_messages(thread_id=[thread.id, "other"], per_page=2)
    await store.memory.list_messages_by_resource_id(resource_id=thread.resource_id)
    await store.workflows.list_workflow_runs()
    await store.workflows.list_workflow_runs(status="running", page=0, per_page=5)
    await store.workflows.get_workflow_run_by_id(run_id="r1")
    await store.scores.list_scores_by_scorer_id(scorer_id=score.scorer_id, source="LIVE")
    await store.scores.list_scores_by_entity_id(entity_id=score.entity_id, entity_type="AGENT")
    await store.observability.list_traces(filters={"has_child_error": False})
    await store.observability.list_traces(order_by="ended_at")
    await store.agents.list(status="draft")
    assert "Scan" not in sent and sent["Query"] > 10


async def test_keys_keep_their_case(store: DynamoDBStore) -> None:
    upper = await store.memory.save_thread(thread=sample_thread(id="Thread-A", resource_id="Owner"))
    lower = await store.memory.save_thread(thread=sample_thread(id="thread-a", resource_id="owner"))
    assert await store.memory.get_thread_by_id(thread_id="Thread-A") == upper
    assert await store.memory.get_thread_by_id(thread_id="thread-a") == lower
    assert [t.id for t in (await store.memory.list_threads(resource_id="Owner")).threads] == ["Thread-A"]
    await store.workflows.persist_workflow_snapshot(workflow_name="WF", run_id="Run", snapshot={"n": 1})
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="run", snapshot={"n": 2})
    assert await store.workflows.load_workflow_snapshot(workflow_name="WF", run_id="Run") == {"n": 1}
    assert (await store.workflows.list_workflow_runs(workflow_name="wf")).total == 1


async def test_separators_in_ids_do_not_collide(store: DynamoDBStore) -> None:
    await store.workflows.persist_workflow_snapshot(workflow_name="a#b", run_id="c", snapshot={"n": 1})
    await store.workflows.persist_workflow_snapshot(workflow_name="a", run_id="b#c", snapshot={"n": 2})
    assert (await store.workflows.list_workflow_runs(workflow_name="a")).total == 1
    assert await store.workflows.load_workflow_snapshot(workflow_name="a#b", run_id="c") == {"n": 1}


async def test_expired_items_are_left_out_of_every_read(store: DynamoDBStore) -> None:
    client = await _raw(store)
    table = store.connection.table
    thread = await store.memory.save_thread(thread=sample_thread())
    keep, gone = sample_message(thread), sample_message(thread)
    await store.memory.save_messages(messages=[keep, gone])
    item = (await client.get_item(TableName=table, Key={"pk": s(f"MSG#{gone.id}"), "sk": s("MSG")}))["Item"]
    assert 3500 < int(item["ttl"]["N"]) - int(item["c"]["N"]) // 1000 <= 3600  # now + default_ttl_seconds

    async def expire(pk: str, sk: str) -> None:  # what time passing does; DynamoDB deletes lazily
        await client.update_item(
            TableName=table,
            Key={"pk": s(pk), "sk": s(sk)},
            UpdateExpression="SET #t = :past",
            ExpressionAttributeNames={"#t": "ttl"},
            ExpressionAttributeValues={":past": {"N": "1000"}},
        )

    await expire(f"MSG#{gone.id}", "MSG")
    listed = await store.memory.list_messages(thread_id=thread.id)
    assert [m.id for m in listed.messages] == [keep.id] and listed.total == 1
    assert [m.id for m in await store.memory.list_messages_by_id(message_ids=[keep.id, gone.id])] == [keep.id]
    await expire(f"THREAD#{thread.id}", "THREAD")
    assert await store.memory.get_thread_by_id(thread_id=thread.id) is None
    assert (await store.memory.list_threads(resource_id=thread.resource_id)).total == 0
    score = await store.scores.save_score(score=sample_score())
    await expire(f"SCORE#{score.id}", "SCORE")
    assert await store.scores.get_score_by_id(id=score.id) is None
    assert (await store.scores.list_scores_by_run_id(run_id=score.run_id)).total == 0
    await store.memory.save_resource(resource={"id": "user"})
    await expire("RESOURCE#user", "RESOURCE")
    assert await store.memory.get_resource_by_id(resource_id="user") is None
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={})
    await expire("WFRUN#r", "WF#wf")
    assert await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="r") is None
    assert (await store.workflows.list_workflow_runs(workflow_name="wf")).total == 0
    span = sample_span()
    await store.observability.create_span(span=span)
    await expire(f"TRACE#{span.trace_id}", f"SPAN#{span.span_id}")
    assert await store.observability.get_trace(trace_id=span.trace_id) is None
    assert (await store.observability.list_traces()).total == 0
    agent = await store.agents.create(agent=sample_agent())
    await expire(f"AGENT#{agent.id}", "AGENT")
    assert await store.agents.get_by_id(id=agent.id) is None
    assert (await store.agents.list()).total == 0


async def test_a_two_megabyte_snapshot_is_split_and_read_back(store: DynamoDBStore) -> None:
    blob = secrets.token_hex(1024 * 1024)  # 2 MB of text that barely compresses
    snapshot = {"status": "running", "context": {"big": {"output": blob}}}
    await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="big", snapshot=snapshot)
    assert await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="big") == snapshot
    partition = await store.connection.query(  # every page: the parts are ~350 KB each
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": s("WFRUN#big")}
    )
    main = next(i for i in partition if i["sk"]["S"] == "WF#wf")
    assert int(main["n"]["N"]) == len(partition) > 3 and "z" in main
    context = await store.workflows.update_workflow_results(
        workflow_name="wf", run_id="big", step_id="next", result={"status": "success"}, request_context={}
    )
    assert context["big"]["output"] == blob and context["next"] == {"status": "success"}
    run = await store.workflows.get_workflow_run_by_id(run_id="big")
    assert run is not None and run.snapshot["context"]["big"]["output"] == blob
    await store.workflows.delete_workflow_run_by_id(run_id="big", workflow_name="wf")
    left = await store.connection.query(
        KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": s("WFRUN#big")}
    )
    assert left == []


async def test_long_message_content_is_compressed(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    message = sample_message(thread, text="all work and no play " * 50_000)  # ~1 MB, compresses well
    await store.memory.save_messages(messages=[message])
    item = (await (await _raw(store)).get_item(
        TableName=store.connection.table, Key={"pk": s(f"MSG#{message.id}"), "sk": s("MSG")}
    ))["Item"]  # fmt: skip
    assert "z" in item and "n" not in item and len(item["d"]["B"]) < 100_000
    (stored,) = (await store.memory.list_messages(thread_id=thread.id)).messages
    assert stored == message


async def test_region_endpoint_and_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fromenv")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fromenv")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", DYNAMODB_URL)
    table = new_table()
    memory = MemoryDynamoDB(table_name=table, create_table=True)
    try:
        await memory.init()
        client = await memory.conn.client()
        assert client.meta.region_name == "eu-west-1"
        saved = await memory.save_thread(thread=sample_thread())
        assert await memory.get_thread_by_id(thread_id=saved.id) == saved
    finally:
        await memory.close()
        await drop_table(table)


async def test_close_closes_the_one_shared_client(store: DynamoDBStore) -> None:
    client = await store.connection.client()
    assert store.workflows.conn is store.memory.conn is store.connection
    assert await store.scores.conn.client() is client
    await store.close()
    assert store.connection._client is None


async def test_prune_deletes_old_records_and_their_parts(store: DynamoDBStore) -> None:
    old = utc_now() - timedelta(days=40)
    thread = await store.memory.save_thread(thread=sample_thread(created_at=old, updated_at=old))
    stale = [sample_message(thread, created_at=old + timedelta(seconds=i)) for i in range(30)]
    fresh = sample_message(thread)
    await store.memory.save_messages(messages=[*stale, fresh])
    await store.workflows.persist_workflow_snapshot(
        workflow_name="wf", run_id="old", snapshot={"blob": secrets.token_hex(600_000)}, created_at=old
    )
    results = await store.prune(
        retention={"memory": {"messages": "30d"}, "workflows": {"workflowSnapshot": timedelta(days=30)}}
    )
    counts = {(r.domain, r.table): (r.deleted, r.done) for r in results}
    assert counts[("memory", "messages")] == (30, True)
    assert counts[("workflows", "workflowSnapshot")] == (1, True)  # one run: its part items go with it
    assert [m.id for m in (await store.memory.list_messages(thread_id=thread.id)).messages] == [fresh.id]
    assert await store.memory.get_thread_by_id(thread_id=thread.id) is not None  # threads were not asked for
    assert (
        await store.connection.query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": s("WFRUN#old")}
        )
        == []
    )


async def test_bad_connection_settings_are_rejected_before_any_request() -> None:
    with pytest.raises(ValidationError, match="table_name"):
        _store("no spaces allowed")
    with pytest.raises(ValidationError, match="credentials"):
        DynamoDBStore(id="x", table_name="mastra", credentials={"access_key": "a"})
    with pytest.raises(ValidationError, match="table_name is required"):
        MemoryDynamoDB()


async def test_an_unreachable_endpoint_raises_a_wrapped_error() -> None:
    memory = MemoryDynamoDB(
        table_name="mastra", endpoint_url="http://127.0.0.1:9", credentials=CREDENTIALS, create_table=True
    )
    memory.conn.settings.max_attempts = 1
    with pytest.raises(BackendError) as err:
        await memory.get_thread_by_id(thread_id="t")
    assert err.value.__cause__ is not None and "MASTRA_STORAGE_DYNAMODB" in err.value.id
    await memory.close()


async def _leave_unprocessed(store: DynamoDBStore, operation: str, field: str, request_field: str) -> Counter[str]:
    """Makes the service's first ``operation`` answer say part of the request was left unprocessed —
    what DynamoDB does under throttling, which DynamoDB Local never does. A write the server did
    apply is harmless to re-send; items of keys left unprocessed are taken out of the answer, as
    the service would not have returned them."""
    client = await store.connection.client()
    sent: Counter[str] = Counter()
    request: dict[str, Any] = {}

    def remember(params: dict[str, Any], **_: Any) -> None:
        sent[operation] += 1
        request.update(params)

    def leave_some(parsed: dict[str, Any], **_: Any) -> None:
        if sent[operation] == 1:
            table, entries = next(iter(request["RequestItems"].items()))
            if request_field == "":
                parsed[field] = {table: entries[:3]}
                return
            left = entries[request_field][:3]
            parsed[field] = {table: {**entries, request_field: left}}
            # What the service leaves unprocessed it does not return: drop those from the answer.
            keys = {(k["pk"]["S"], k["sk"]["S"]) for k in left}
            answer = parsed["Responses"][table]
            answer[:] = [i for i in answer if (i["pk"]["S"], i["sk"]["S"]) not in keys]

    client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", remember)
    client.meta.events.register(f"after-call.dynamodb.{operation}", leave_some)
    return sent


async def test_unprocessed_deletes_are_retried(store: DynamoDBStore) -> None:
    root = sample_span()
    children = [sample_span(trace_id=root.trace_id, parent_span_id=root.span_id) for _ in range(6)]
    await store.observability.batch_create_spans(spans=[root, *children])
    sent = await _leave_unprocessed(store, "BatchWriteItem", "UnprocessedItems", "")
    await store.observability.batch_delete_traces(trace_ids=[root.trace_id])  # child spans: BatchWriteItem
    assert sent["BatchWriteItem"] == 2  # the batch, then the three items "left unprocessed"
    assert await store.observability.get_trace(trace_id=root.trace_id) is None


async def test_unprocessed_keys_are_fetched_again(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    messages = [sample_message(thread) for _ in range(8)]
    await store.memory.save_messages(messages=messages)
    sent = await _leave_unprocessed(store, "BatchGetItem", "UnprocessedKeys", "Keys")
    found = await store.memory.list_messages_by_id(message_ids=[m.id for m in messages])
    assert sent["BatchGetItem"] == 2
    assert sorted(m.id for m in found) == sorted(m.id for m in messages)  # no duplicates, none missing


async def test_transactions_stay_under_four_megabytes(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    # ~680 KB each after compression (the text is in the content twice), so each is split in two
    # items, and twelve are more than one transaction may carry: the service rejects a transaction
    # over 4 MB, so this call succeeding means every chunk stayed under it.
    messages = [sample_message(thread, text=secrets.token_hex(300_000)) for _ in range(12)]
    sent = await requests_sent(store)
    await store.memory.save_messages(messages=messages)
    assert sent["TransactWriteItems"] == 3  # 5 + 5 + 2 messages, ~3.4 MB at most each
    stored = await store.memory.list_messages_by_id(message_ids=[m.id for m in messages])
    assert {m.id: m.content for m in stored} == {m.id: m.content for m in messages}


async def test_a_record_too_large_even_split_is_rejected_and_nothing_written(store: DynamoDBStore) -> None:
    huge = {"blob": secrets.token_hex(4 * 1024 * 1024)}  # ~4.3 MB after compression
    with pytest.raises(ValidationError, match="at most"):
        await store.workflows.persist_workflow_snapshot(workflow_name="wf", run_id="huge", snapshot=huge)
    assert await store.workflows.load_workflow_snapshot(workflow_name="wf", run_id="huge") is None


async def test_a_huge_span_is_stored_whole(store: DynamoDBStore) -> None:
    trace = "big-trace"
    small = [sample_span(trace_id=trace, parent_span_id="root") for _ in range(30)]
    huge = sample_span(trace_id=trace, span_id="root", output={"blob": secrets.token_hex(400_000)})
    await store.observability.batch_create_spans(spans=[*small, huge])
    got = await store.observability.get_trace(trace_id=trace)
    assert got is not None and len(got.spans) == 31
    root = await store.observability.get_root_span(trace_id=trace)
    assert root is not None and root.output == huge.output


async def test_a_dynamodb_domain_composes_with_other_backends() -> None:
    table = new_table()
    memory = MemoryDynamoDB(table_name=table, endpoint_url=DYNAMODB_URL, credentials=CREDENTIALS, create_table=True)
    storage = MastraStorage(id="app", default=LibSQLStore(id="local", url=":memory:"), domains={"memory": memory})
    try:
        async with storage:
            assert await storage.get_store("memory") is memory
            thread = await memory.save_thread(thread=sample_thread())
            workflows = await storage.get_store("workflows")
            assert workflows is not None and not isinstance(workflows, MemoryDynamoDB)
            await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"n": 1})
            assert await memory.get_thread_by_id(thread_id=thread.id) == thread
        assert memory.conn._client is None  # closed with the composite
    finally:
        await drop_table(table)


async def test_a_selective_filter_costs_a_few_queries(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    messages = [sample_message(thread, metadata={"n": i}) for i in range(600)]
    await store.memory.save_messages(messages=messages)
    sent = await requests_sent(store)
    found = await store.memory.list_messages(thread_id=thread.id, metadata={"n": 17})
    assert [m.id for m in found.messages] == [messages[17].id] and found.total == 1
    assert sent["Query"] <= 5  # pages evaluating 100, 400, then the rest; one COUNT


async def test_the_largest_ids_fit_every_key() -> None:
    """Escaping triples '#' and '%' inside keys, and some keys hold two ids: the id rule counts them
    as three bytes, so the largest ids every backend accepts fit DynamoDB's keys too."""
    table = new_table()
    async with _store(table, create_table=True) as store:
        trace, span = "#" * 85, "%" * 85
        await store.observability.create_span(span=sample_span(trace_id=trace, span_id=span))
        assert await store.observability.get_span(trace_id=trace, span_id=span) is not None
        await store.scores.save_score(score=sample_score(trace_id=trace, span_id=span, entity_id="#" * 85))
        with pytest.raises(ValidationError):
            await store.observability.create_span(span=sample_span(trace_id="#" * 86, span_id=span))
        await store.dangerously_clear_all()
    await drop_table(table)


async def test_item_format_versions_are_recorded_once_and_an_up_to_date_init_is_cheap(store: DynamoDBStore) -> None:
    client = await _raw(store)
    table = store.connection.table
    ledger = await client.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "MIGRATION"}}
    )
    assert sorted(item["sk"]["S"] for item in ledger["Items"]) == sorted(
        f"{d}#00000{v}" for d in DOMAINS for v in (1, 2)
    )
    assert await store.migrate() == []
    again = _store(table)
    sent = await requests_sent(again)
    await again.init()  # up to date: each domain's ledger read (the table was checked when first migrated)
    await again.close()
    assert sent == Counter({"Query": len(DOMAINS)})
    await store.dangerously_clear_all()  # the ledger is not a domain's record: it stays
    assert await store.migrate(dry_run=True) == []


async def test_a_table_migrated_by_a_newer_release_is_refused(store: DynamoDBStore) -> None:
    client = await _raw(store)
    future = {"pk": {"S": "MIGRATION"}, "sk": {"S": "scores#000007"}, "e": {"S": "migration"}, "v": {"N": "7"}}
    await client.put_item(TableName=store.connection.table, Item={**future, "name": {"S": "x"}, "cs": {"S": "x"}})
    newer = _store(store.connection.table)
    with pytest.raises(StorageInitError) as caught:
        await newer.init()
    await newer.close()
    assert isinstance(caught.value.failures["scores"], SchemaVersionError)
    assert set(caught.value.failures) == {"scores"}


async def test_a_dry_run_on_a_missing_table_lists_and_creates_nothing() -> None:
    table = new_table()
    ddb = _store(table, create_table=True)
    steps = await ddb.migrate(dry_run=True)
    client = await _raw(ddb)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        await client.describe_table(TableName=table)
    await ddb.close()
    assert [(s.domain, s.version, s.applied) for s in steps] == [(d, v, False) for d in DOMAINS for v in (1, 2)]


async def test_an_imported_page_of_threads_goes_in_batches(store: DynamoDBStore) -> None:
    threads = [sample_thread(resource_id="r1") for _ in range(60)]
    sent = await requests_sent(store)
    await store.memory.import_records(kind="threads", records=threads)
    assert sent == Counter({"TransactWriteItems": 1})  # 60 puts and two counters, not a PutItem per thread
    assert await store.memory.count_records(kind="threads") == 60
    assert await store.memory.get_thread_by_id(thread_id=threads[7].id) == threads[7]


async def test_a_new_client_does_not_hold_up_the_event_loop(store: DynamoDBStore) -> None:
    # aiobotocore's own HTTP session loads the CA bundle (~50 ms) on the loop for every client;
    # this package's loads it once per process on a worker thread.
    async with ticker() as delays:
        for _ in range(3):
            another = _store(store.connection.table)
            await another.init()
            assert await another.memory.get_thread_by_id(thread_id="none") is None
            await another.close()
    assert max(delays) < 0.04, f"the loop was blocked for {max(delays) * 1000:.0f} ms"


async def test_a_list_page_reads_only_what_its_records_are_built_from(store: DynamoDBStore) -> None:
    thread = await store.memory.save_thread(thread=sample_thread())
    saved = {m.id: m for m in [sample_message(thread) for _ in range(3)]}
    await store.memory.save_messages(messages=list(saved.values()))
    client = await store.connection.client()
    asked: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        asked.append(dict(params))

    client.meta.events.register("provide-client-params.dynamodb.Query", remember)
    page = await store.memory.list_messages(thread_id=thread.id, per_page=2)
    assert len(page.messages) == 2 and all(m == saved[m.id] for m in page.messages)  # whole records
    (query,) = [q for q in asked if "ProjectionExpression" in q]
    names = query["ExpressionAttributeNames"]
    projected = {names.get(ref, ref) for ref in query["ProjectionExpression"].split(", ")}
    assert projected == {"pk", "sk", "d", "z", "n", "u", "ca", "rid", "st", "gsi1sk"}


async def test_every_request_carries_one_fixed_user_agent(store: DynamoDBStore) -> None:
    # botocore rebuilds its structured User-Agent twice per request unless one is supplied.
    client = await store.connection.client()
    agents: list[str] = []

    def remember(request: Any, **_: Any) -> None:
        agents.append(request.headers["User-Agent"].decode())

    client.meta.events.register("before-send.dynamodb.*", remember)
    thread = await store.memory.save_thread(thread=sample_thread())
    await store.memory.save_messages(messages=[sample_message(thread)])
    await store.memory.list_messages(thread_id=thread.id)
    assert len(agents) >= 3 and len(set(agents)) == 1
    assert agents[0].startswith("mastra-storage/") and "ua/2.1" not in agents[0]
