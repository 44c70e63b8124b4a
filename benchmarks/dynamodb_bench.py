"""The common workload on DynamoDB Local, next to raw aioboto3 calls doing the same work (the floor).

The floor sends the same requests mastra_storage sends (same item shapes, key layout and
expressions, on its own table of the same definition) and decodes the JSON it reads; it skips
validation, records, key escaping, TTL filters and retries. ``ratio`` = floor ops/s / our ops/s.
Needs the DynamoDB Local of ``make services``.

    python -m benchmarks.dynamodb_bench [--quick] [--markdown FILE] [--endpoint http://127.0.0.1:8000]
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

import aioboto3
import msgspec

from mastra_storage.core.codec import iso, utc_now
from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.dynamodb.table import definition

from .harness import Result, arguments, publish, table
from .workload import Data, Operations, include_target, make_data, operations, ours, run_pairs, score_fields

TARGET = 1.3
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


def S(value: str) -> dict[str, str]:
    return {"S": value}


def N(value: int) -> dict[str, str]:
    return {"N": str(value)}


def floor(client: Any, name: str, d: Data) -> Operations:
    """The same workload as plain aioboto3 requests."""

    def ms() -> int:
        return int(time.time() * 1000)

    def counted(item: dict[str, Any], *groups: str) -> list[dict[str, Any]]:
        """A new item's Put and +1 on one shard of each list counter (what the store sends)."""
        put = {"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        return [put, *(add(group) for group in groups)]

    def add(group: str) -> dict[str, Any]:
        return {"Update": {
            "TableName": name, "Key": {"pk": S(f"COUNT#{group}"), "sk": S(str(random.randrange(4)))},
            "UpdateExpression": "ADD cnt :d SET e = :e", "ExpressionAttributeValues": {":d": N(1), ":e": S("counter")},
        }}  # fmt: skip

    async def save_thread(i: int) -> None:
        now = iso(utc_now())
        order = S(f"{now}#t{i}")
        body = {"id": f"t{i}", "resourceId": "r", "title": "t", "metadata": {"i": i}, "createdAt": now,
                "updatedAt": now}  # fmt: skip
        await client.transact_write_items(TransactItems=counted({
            "pk": S(f"THREAD#t{i}"), "sk": S("THREAD"), "e": S("thread"), "d": {"B": _enc.encode(body)},
            "c": N(ms()), "u": S(now), "meta": {"M": {"i": N(i)}}, "gsi1pk": S("THREADS#R#r"), "gsi1sk": order,
            "gsi2pk": S("THREADS#R#r"), "gsi2sk": order, "gsi3pk": S("THREADS"), "gsi3sk": order,
            "gsi4pk": S("THREADS"), "gsi4sk": order, "v": N(1),
        }, "THREADS#R#r", "THREADS"))  # fmt: skip

    message_update = (
        "SET #d = :d, #e = :e, gsi1pk = :g1, gsi2pk = :g2, r = :r, meta = :meta, ca = if_not_exists(ca, :ca), "
        "gsi1sk = if_not_exists(gsi1sk, :o), gsi2sk = if_not_exists(gsi2sk, :o), c = if_not_exists(c, :c), "
        "v = if_not_exists(v, :zero) + :one REMOVE z, n"
    )

    async def save_messages(i: int) -> None:
        actions: list[dict[str, Any]] = []
        for m in d.batches[i]:
            created = iso(m["created_at"])
            body = {"id": m["id"], "role": m["role"], "content": m["content"], "createdAt": created,
                    "threadId": m["thread_id"], "resourceId": m["resource_id"], "type": "v2"}  # fmt: skip
            actions.append({"Update": {
                "TableName": name, "Key": {"pk": S(f"MSG#{m['id']}"), "sk": S("MSG")},
                "UpdateExpression": message_update, "ExpressionAttributeNames": {"#d": "d", "#e": "e"},
                "ConditionExpression": "attribute_not_exists(pk)",
                "ExpressionAttributeValues": {
                    ":d": {"B": _enc.encode(body)}, ":e": S("message"), ":g1": S("MSGS#T#t0"), ":g2": S("MSGS#R#r"),
                    ":r": S("r"), ":meta": {"M": {}}, ":ca": S(created), ":o": S(f"{created}#{m['id']}"),
                    ":c": N(ms()), ":zero": N(0), ":one": N(1),
                },
            }})  # fmt: skip
        now = iso(utc_now())
        actions.append({"Update": {
            "TableName": name, "Key": {"pk": S("THREAD#t0"), "sk": S("THREAD")},
            "UpdateExpression": "SET u = :u, gsi2sk = :k, gsi4sk = :k ADD v :one",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": {":u": S(now), ":k": S(f"{now}#t0"), ":one": N(1)},
        }})  # fmt: skip
        await client.transact_write_items(TransactItems=[*actions, add("MSGS#T#t0"), add("MSGS#R#r")])

    async def page(pk: str, index: str = "gsi1") -> None:
        # The page and its total (the counter's four shards) together, as the store sends them.
        response, shards = await asyncio.gather(
            client.query(
                TableName=name, IndexName=index, KeyConditionExpression="gsi1pk = :pk",
                ExpressionAttributeValues={":pk": S(pk)}, ScanIndexForward=False, Limit=20,
            ),
            client.batch_get_item(RequestItems={name: {
                "Keys": [{"pk": S(f"COUNT#{pk}"), "sk": S(str(shard))} for shard in range(4)], "ConsistentRead": True,
            }}),
        )  # fmt: skip
        [_dec.decode(item["d"]["B"]) for item in response["Items"][:20]]
        sum(int(item["cnt"]["N"]) for item in shards["Responses"].get(name, []))

    async def last20(i: int) -> None:
        await page("MSGS#T#t0")

    async def with_include(i: int) -> None:
        target = (await client.get_item(
            TableName=name, Key={"pk": S(f"MSG#{include_target(i)}"), "sk": S("MSG")}, ConsistentRead=True
        ))["Item"]  # fmt: skip
        for op, limit, forward in (("<=", 3, False), (">", 2, True)):
            found = await client.query(
                TableName=name, IndexName="gsi1", KeyConditionExpression=f"gsi1pk = :pk AND gsi1sk {op} :at",
                ExpressionAttributeValues={":pk": target["gsi1pk"], ":at": target["gsi1sk"]},
                ScanIndexForward=forward, Limit=max(limit, 25),
            )  # fmt: skip
            [_dec.decode(item["d"]["B"]) for item in found["Items"][:limit]]
        await page("MSGS#T#t0")

    snapshot_update = (
        "SET #d = :d, #e = :e, gsi1pk = :g1, gsi2pk = :g2, st = :st, ca = if_not_exists(ca, :ca), "
        "gsi1sk = if_not_exists(gsi1sk, :o), gsi2sk = if_not_exists(gsi2sk, :o), c = if_not_exists(c, :c), "
        "v = if_not_exists(v, :zero) + :one REMOVE z, n"
    )

    async def persist(i: int) -> None:
        run = f"run-{i % 100}"
        now = iso(utc_now())
        body = {"workflowName": "wf", "runId": run, "snapshot": d.snapshot, "createdAt": now, "updatedAt": now}
        update = {
            "TableName": name, "Key": {"pk": S(f"WFRUN#{run}"), "sk": S("WF#wf")}, "UpdateExpression": snapshot_update,
            "ExpressionAttributeNames": {"#d": "d", "#e": "e"},
            "ExpressionAttributeValues": {
                ":d": {"B": _enc.encode(body)}, ":e": S("workflow_snapshot"), ":g1": S("WFRUNS#W#wf"),
                ":g2": S("WFRUNS"), ":st": S("suspended"), ":ca": S(now), ":o": S(f"{now}#wf#{run}"), ":c": N(ms()),
                ":zero": N(0), ":one": N(1),
            },
        }  # fmt: skip
        try:  # a run written before: updated in place if still in the same lists
            same = "attribute_exists(pk) AND gsi1pk = :g1 AND gsi2pk = :g2"
            await client.update_item(**update, ConditionExpression=same)
        except client.exceptions.ConditionalCheckFailedException:  # a new run: created with its counters
            create = {"Update": {**update, "ConditionExpression": "attribute_not_exists(pk)"}}
            await client.transact_write_items(TransactItems=[create, add("WFRUNS#W#wf"), add("WFRUNS")])

    async def load(i: int) -> None:
        item = await client.get_item(
            TableName=name, Key={"pk": S(f"WFRUN#run-{i % 100}"), "sk": S("WF#wf")}, ConsistentRead=True
        )
        _dec.decode(item["Item"]["d"]["B"])

    fields = score_fields(d)

    async def save_score(i: int) -> None:
        score_id = str(uuid.uuid4())
        now = iso(utc_now())
        order = S(f"{now}#{time.time_ns():020d}#{score_id}")
        body = {**{k: v for k, v in fields.items() if v is not None}, "id": score_id, "createdAt": now,
                "updatedAt": now}  # fmt: skip
        await client.transact_write_items(TransactItems=counted({
            "pk": S(f"SCORE#{score_id}"), "sk": S("SCORE"), "e": S("score"), "d": {"B": _enc.encode(body)},
            "c": N(ms()), "gsi1pk": S("SCORES#S#relevancy"), "gsi1sk": order, "gsi2pk": S("SCORES#RUN#run"),
            "gsi2sk": order, "gsi3pk": S("SCORES#E#AGENT#agent"), "gsi3sk": order, "sid": S("relevancy"),
            "rid": S("run"), "eid": S("agent"), "et": S("AGENT"), "src": S("LIVE"), "v": N(1),
        }, "SCORES#S#relevancy", "SCORES#RUN#run", "SCORES#E#AGENT#agent"))  # fmt: skip

    async def list_scores(i: int) -> None:
        await page("SCORES#S#relevancy")

    async def create_spans(i: int) -> None:
        now = iso(utc_now())
        items, roots = [], []
        for sp in d.span_batches[i]:
            ended = iso(sp.ended_at or sp.started_at)
            body = {"traceId": sp.trace_id, "spanId": sp.span_id, "parentSpanId": sp.parent_span_id, "name": sp.name,
                    "spanType": sp.span_type, "startedAt": iso(sp.started_at), "endedAt": ended,
                    "attributes": sp.attributes, "input": sp.input, "output": sp.output, "metadata": sp.metadata,
                    "createdAt": now, "updatedAt": now}  # fmt: skip
            item = {"pk": S(f"TRACE#{sp.trace_id}"), "sk": S(f"SPAN#{sp.span_id}"), "e": S("span"),
                    "d": {"B": _enc.encode(body)}, "c": N(ms()), "sa": N(0), "ea": N(0)}  # fmt: skip
            if sp.parent_span_id is None:
                start = S(f"{iso(sp.started_at)}#{sp.trace_id}#{sp.span_id}")
                item.update(gsi1pk=S("ROOTS"), gsi1sk=start, gsi2pk=S("ROOTS"), gsi2sk=start, st=S("success"),
                            meta={"M": {"tenant": S("t")}}, scope={"M": {}}, v=N(1))  # fmt: skip
                roots.append(item)  # a trace's root: in a transaction with the traces counter
            else:
                item["par"] = S(sp.parent_span_id)
                items.append({"PutRequest": {"Item": item}})
        sends = [client.batch_write_item(RequestItems={name: items[k : k + 25]}) for k in range(0, len(items), 25)]
        sends += [client.transact_write_items(TransactItems=counted(root, "ROOTS")) for root in roots]
        await asyncio.gather(*sends)

    async def get_trace(i: int) -> None:
        found = await client.query(
            TableName=name, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": S(f"TRACE#trace-{i % d.spans_n}")}, ConsistentRead=True,
        )  # fmt: skip
        [_dec.decode(item["d"]["B"]) for item in found["Items"]]

    return operations(
        save_thread, save_messages, last20, with_include, persist, load, save_score, list_scores, create_spans,
        get_trace, d,
    )  # fmt: skip


async def run(quick: bool, endpoint: str) -> list[Result]:
    d = make_data(100 if quick else 200)
    ours_table, floor_table = f"bench_{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    store = DynamoDBStore(
        id="bench", table_name=ours_table, endpoint_url=endpoint, credentials=CREDENTIALS, create_table=True
    )
    await store.init()
    session = aioboto3.Session()
    async with session.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint, **CREDENTIALS) as client:
        await client.create_table(**definition(floor_table))
        try:
            return await run_pairs(ours(store, d), floor(client, floor_table, d))
        finally:
            await store.close()
            for name in (ours_table, floor_table):
                await client.delete_table(TableName=name)


def main() -> None:
    args = arguments("DynamoDB Local workload vs raw aioboto3", endpoint="http://127.0.0.1:8000")
    results = asyncio.run(run(args.quick, args.endpoint))
    publish(
        table(f"DynamoDB Local 1.25 (aioboto3) vs raw aioboto3 - target <= {TARGET}x", results, TARGET), args.markdown
    )


if __name__ == "__main__":
    main()
