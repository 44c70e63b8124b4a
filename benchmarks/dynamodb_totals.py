"""What a DynamoDB list page with its total costs as the items under the key grow: the total read
from the key's counters (the default) next to the total counted with ``Select=COUNT`` (what the
store does for an entity with TTL on, and what it did for every list before counters).

For each size, one thread holds that many messages; ``list_messages(thread_id, per_page=20)`` is
called sequentially and the median latency and the requests per call are reported. Needs the
DynamoDB Local of ``make services``.

    python -m benchmarks.dynamodb_totals [--quick] [--markdown FILE] [--endpoint http://127.0.0.1:8000]
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections import Counter
from typing import Any

from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.testing.samples import sample_message, sample_thread
from mastra_storage.types import TtlConfig

from .harness import arguments, publish

CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}


async def _requests(store: DynamoDBStore) -> Counter[str]:
    sent: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    (await store.connection.client()).meta.events.register("before-call.dynamodb.*", count)
    return sent


async def measure(endpoint: str, sizes: list[int], calls: int) -> list[tuple[int, str, float, float]]:
    table = f"totals_{uuid.uuid4().hex[:8]}"
    kept = DynamoDBStore(id="kept", table_name=table, endpoint_url=endpoint, credentials=CREDENTIALS, create_table=True)
    # Same table, TTL on for messages: its lists count their totals.
    counted = DynamoDBStore(
        id="counted",
        table_name=table,
        endpoint_url=endpoint,
        credentials=CREDENTIALS,
        ttl={"message": TtlConfig(enabled=True, default_ttl_seconds=86_400)},
    )
    rows = []
    try:
        await kept.init()
        await counted.init()
        for size in sizes:
            thread = await kept.memory.save_thread(thread=sample_thread())
            for start in range(0, size, 100):
                batch = [sample_message(thread) for _ in range(min(100, size - start))]
                await counted.memory.save_messages(messages=batch)  # TTL set: both stores read them
            for label, store in (("counters", kept), ("Select=COUNT", counted)):
                sent = await _requests(store)
                took = []
                for _ in range(calls):
                    start_at = time.perf_counter()
                    page = await store.memory.list_messages(thread_id=thread.id, per_page=20)
                    took.append(time.perf_counter() - start_at)
                    assert page.total == size
                rows.append((size, label, statistics.median(took) * 1000, sum(sent.values()) / calls))
    finally:
        await counted.close()
        await kept.close()
        client_store = DynamoDBStore(id="drop", table_name=table, endpoint_url=endpoint, credentials=CREDENTIALS)
        await (await client_store.connection.client()).delete_table(TableName=table)
        await client_store.close()
    return rows


def main() -> None:
    args = arguments(__doc__ or "", endpoint="http://127.0.0.1:8000")
    sizes = [20, 200, 2_000] if args.quick else [20, 200, 2_000, 20_000]
    rows = asyncio.run(measure(args.endpoint, sizes, 10 if args.quick else 30))
    lines = [
        "### DynamoDB Local — list 20 messages with the total, by messages in the thread",
        "",
        "| messages in the thread | total from | median ms per call | requests per call |",
        "|---:|---|---:|---:|",
    ]
    lines += [f"| {size:,} | {label} | {ms:.1f} | {requests:.1f} |" for size, label, ms, requests in rows]
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    main()
