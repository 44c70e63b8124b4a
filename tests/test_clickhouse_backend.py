"""What only the ClickHouse backend has: columnar batch inserts, row TTL, latest-version reads,
composition with other backends, one chdb path per process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mastra_storage import BackendError, MastraStorage, SchemaVersionError, StorageInitError, ValidationError
from mastra_storage.clickhouse import ClickhouseStore, SpanBatchWriter
from mastra_storage.core.codec import utc_now
from mastra_storage.core.migrations import LEDGER_TABLE
from mastra_storage.libsql import LibSQLStore, MemoryLibSQL
from mastra_storage.testing.samples import sample_score, sample_span, sample_thread

from .chdb_engine import chdb_path
from .loop_ticker import ticker
from .standins.clickhouse_http import ClickhouseHttpStandIn

LEDGER_COLUMNS = ["domain", "version", "name", "checksum", "applied_at"]


@pytest.fixture
async def store() -> AsyncIterator[ClickhouseStore]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    ch = ClickhouseStore(id="ch", url=f"chdb://{chdb_path()}", database=database, ttl={"spans": "7d", "scores": "90d"})
    await ch.init()
    yield ch
    await ch.transport.command(f"DROP DATABASE IF EXISTS `{database}`")
    await ch.close()


async def test_ten_thousand_spans_are_one_insert(store: ClickhouseStore) -> None:
    day = utc_now().replace(hour=12)
    spans = [
        sample_span(trace_id=f"trace-{i // 10}", started_at=day + timedelta(milliseconds=i)) for i in range(10_000)
    ]
    await store.observability.batch_create_spans(spans=spans)
    _, parts = await store.transport.query(
        "SELECT count(), sum(rows) FROM system.parts "
        "WHERE database = {db:String} AND table = 'mastra_ai_spans' AND active",
        {"db": store.observability.database},
    )
    assert parts[0][0] == 1 and parts[0][1] == 10_000  # one insert wrote one part
    trace = await store.observability.get_trace(trace_id="trace-7")
    assert trace is not None and len(trace.spans) == 10
    assert all(s.started_at.tzinfo is not None for s in trace.spans)


async def test_reads_see_the_latest_version_without_optimize(store: ClickhouseStore) -> None:
    span = sample_span(name="v1", ended_at=None)
    await store.observability.create_span(span=span)
    for name in ("v2", "v3"):
        await store.observability.update_span(trace_id=span.trace_id, span_id=span.span_id, updates={"name": name})
    fetched = await store.observability.get_span(trace_id=span.trace_id, span_id=span.span_id)
    assert fetched is not None and fetched.name == "v3"
    listed = await store.observability.list_traces(filters={"trace_id": span.trace_id})
    assert [s.name for s in listed.spans] == ["v3"] and listed.total == 1
    _, versions = await store.transport.query(
        f"SELECT count() FROM {store.observability.t('mastra_ai_spans')} WHERE spanId = {{s:String}}",
        {"s": span.span_id},
    )
    assert versions[0][0] >= 1


async def test_row_ttl_comes_from_the_ttl_option(store: ClickhouseStore) -> None:
    _, rows = await store.transport.query(f"SHOW CREATE TABLE {store.observability.t('mastra_ai_spans')}")
    assert "TTL" in rows[0][0] and "604800" in rows[0][0]
    _, rows = await store.transport.query(f"SHOW CREATE TABLE {store.scores.t('mastra_scorers')}")
    assert "7776000" in rows[0][0]


async def test_composes_with_other_backends(store: ClickhouseStore, tmp_path: Path) -> None:
    storage = MastraStorage(
        id="mixed",
        default=LibSQLStore(id="local", url=f"file:{tmp_path / 'local.db'}"),
        domains={"observability": store.observability, "scores": store.scores,
                 "memory": MemoryLibSQL(url=f"file:{tmp_path / 'memory.db'}")},
    )  # fmt: skip
    async with storage:
        assert await storage.get_store("observability") is store.observability
        memory, observability = await storage.get_store("memory"), await storage.get_store("observability")
        assert memory is not None and observability is not None
        thread = await memory.save_thread(thread=sample_thread())
        span = sample_span(thread_id=thread.id)
        await observability.create_span(span=span)
        assert (await observability.list_traces(filters={"thread_id": thread.id})).total == 1


async def test_one_chdb_path_per_process(store: ClickhouseStore) -> None:
    other = ClickhouseStore(id="other", url="chdb:///tmp/another-chdb-path")
    with pytest.raises(Exception, match="one data path per process"):
        await other.init()
    with pytest.raises(ValidationError):
        ClickhouseStore(id="bad", url="tcp://localhost:9000")


async def _count(store: ClickhouseStore) -> int:
    _, rows = await store.transport.query(f"SELECT count() FROM {store.observability.t('mastra_ai_spans')} FINAL")
    return int(rows[0][0])


async def test_batch_writer_flushes_on_size(store: ClickhouseStore) -> None:
    async with SpanBatchWriter(store.observability, max_batch=100, flush_interval=60) as writer:
        for _ in range(250):
            await writer.create_span(span=sample_span())
        assert await _count(store) == 200 and writer.pending == 50
    assert await _count(store) == 250  # close() flushed the rest


async def test_batch_writer_flushes_on_interval(store: ClickhouseStore) -> None:
    writer = SpanBatchWriter(store.observability, max_batch=10_000, flush_interval=0.05)
    await writer.create_span(span=sample_span())
    deadline = asyncio.get_running_loop().time() + 10
    while await _count(store) == 0:  # poll until the timer has flushed (bounded)
        assert asyncio.get_running_loop().time() < deadline, "the interval flush never happened"
        await asyncio.sleep(0.01)
    assert writer.pending == 0
    await writer.close()
    with pytest.raises(ValidationError):
        await writer.create_span(span=sample_span())


async def test_batch_writer_rejects_bad_spans_and_keeps_failed_batches(store: ClickhouseStore) -> None:
    writer = SpanBatchWriter(store.observability, max_batch=1000, flush_interval=60)
    with pytest.raises(ValidationError):
        await writer.create_span(span={"trace_id": "t", "span_id": "s"})
    await writer.create_span(span=sample_span())
    await store.transport.command(f"DROP TABLE {store.observability.t('mastra_ai_spans')}")
    with pytest.raises(BackendError):
        await writer.flush()
    assert writer.pending == 1  # not lost
    for statement in store.observability.ddl():  # the table is restored (the ledger says it was created)
        await store.transport.command(statement)
    await writer.close()
    assert await _count(store) == 1


async def test_a_big_batch_leaves_the_event_loop_free(store: ClickhouseStore) -> None:
    """Validating and laying out 20,000 spans is CPU work; a ticker asking for 1 ms sleeps meanwhile
    is never held up for long."""
    batch = [sample_span(trace_id=f"big-{i // 10}") for i in range(20_000)]
    # The first insert of the process loads the driver's insert codecs (imports hold the GIL): once.
    await store.observability.batch_create_spans(spans=[sample_span()])
    async with ticker() as delays:
        await asyncio.sleep(0)
        await store.observability.batch_create_spans(spans=batch)
    assert await _count(store) == 20_001
    assert max(delays) < 0.05, f"the loop was blocked for {max(delays) * 1000:.0f} ms"


async def test_span_instances_are_validated_on_the_columnar_path(store: ClickhouseStore) -> None:
    from datetime import datetime

    good = sample_span(trace_id="checked")
    bad_batches: list[list[Any]] = []
    for field, value in (("name", 123), ("tags", ["ok", 1]), ("metadata", ["not", "a", "dict"]),
                         ("attributes", object()), ("span_id", "  "), ("started_at", "yesterday"),
                         ("is_event", "no")):  # fmt: skip
        bad = sample_span(trace_id="checked")
        setattr(bad, field, value)
        bad_batches.append([good, bad])
    for batch in bad_batches:
        with pytest.raises(ValidationError):
            await store.observability.batch_create_spans(spans=batch)
    assert await store.observability.get_trace(trace_id="checked") is None  # nothing written
    naive = sample_span(trace_id="naive")
    moment = datetime.now().replace(microsecond=678_999)  # naive (taken as UTC), with microseconds
    naive.started_at = moment
    await store.observability.batch_create_spans(spans=[naive])
    trace = await store.observability.get_trace(trace_id="naive")
    expected = moment.replace(microsecond=678_000).isoformat() + "+00:00"
    assert trace is not None and trace.spans[0].started_at.isoformat() == expected


def test_an_unclosed_store_does_not_break_the_next_event_loop(clickhouse_http: ClickhouseHttpStandIn) -> None:
    """chdb and the HTTP client alike: ``asyncio.run`` twice, the first store never closed."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    urls = [f"chdb://{chdb_path()}", clickhouse_http.url]

    async def first(url: str) -> None:
        store = ClickhouseStore(id="first", url=url, database=database)
        await store.observability.batch_create_spans(spans=[sample_span(trace_id=f"t-{url[:4]}")])

    async def second(url: str) -> None:
        store = ClickhouseStore(id="second", url=url, database=database)
        assert await store.observability.get_trace(trace_id=f"t-{url[:4]}") is not None
        await store.observability.batch_create_spans(spans=[sample_span()])
        await store.close()

    for url in urls:
        asyncio.run(first(url))
        asyncio.run(second(url))
        asyncio.run(second(url))


async def test_migrations_are_recorded_and_a_newer_database_is_refused(store: ClickhouseStore) -> None:
    ledger = store.scores.t(LEDGER_TABLE)
    _, rows = await store.transport.query(f"SELECT domain, version FROM {ledger} FINAL ORDER BY domain")
    assert [tuple(row) for row in rows] == [("observability", 1), ("scores", 1)]
    assert await store.migrate() == []
    await store.transport.insert(ledger, [["scores"], [4], ["future"], ["x"], [utc_now()]], LEDGER_COLUMNS)
    newer = ClickhouseStore(id="ch2", url=f"chdb://{chdb_path()}", database=store.scores.database)
    with pytest.raises(StorageInitError) as caught:
        await newer.init()
    assert isinstance(caught.value.failures["scores"], SchemaVersionError)
    assert set(caught.value.failures) == {"scores"}


async def test_a_dry_run_creates_nothing(store: ClickhouseStore) -> None:
    database = f"t_{uuid.uuid4().hex[:12]}"
    fresh = ClickhouseStore(id="ch3", url=f"chdb://{chdb_path()}", database=database)
    steps = await fresh.migrate(dry_run=True)
    assert [(s.domain, s.version, s.applied) for s in steps] == [("observability", 1, False), ("scores", 1, False)]
    assert any("CREATE TABLE" in statement for s in steps for statement in s.statements)
    _, rows = await store.transport.query(
        "SELECT count() FROM system.databases WHERE name = {d:String}", {"d": database}
    )
    assert rows[0][0] == 0


async def test_an_imported_page_of_scores_is_one_insert(store: ClickhouseStore) -> None:
    source = [await store.scores.save_score(score=sample_score(scorer_id="imp")) for _ in range(3)]
    query = "SELECT count() FROM system.parts WHERE database = {d:String} AND table = 'mastra_scorers'"
    _, before = await store.transport.query(query, {"d": store.scores.database})
    copies = [msgspec.structs.replace(row, id=f"copy-{i}") for i, row in enumerate(source * 20)]
    await store.scores.import_records(kind="scores", records=copies)
    _, after = await store.transport.query(query, {"d": store.scores.database})
    assert after[0][0] - before[0][0] == 1  # one part: one insert for the 60 rows
    assert await store.scores.count_records(kind="scores") == 63
