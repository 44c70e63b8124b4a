"""The ``mastra-storage`` command run as a user types it (a subprocess of the installed console
script) against real engines: a SQLite file, the PostgreSQL server, DynamoDB Local."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import apsw
import pytest

from mastra_storage import connect
from mastra_storage.core.codec import utc_now
from mastra_storage.core.migrations import LEDGER_TABLE
from mastra_storage.testing.samples import sample_message, sample_thread

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table
from .pg_server import PG_URL, drop_schema, new_schema

COMMAND = shutil.which("mastra-storage", path=str(Path(sys.executable).parent)) or "mastra-storage"
ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COMMAND, *args], capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    """The database ``make demo`` writes: every domain holds records."""
    path = tmp_path / "mastra.db"
    subprocess.run(
        [sys.executable, "-m", "mastra_storage.demo", "--url", f"file:{path}"], check=True, capture_output=True
    )
    return path


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    schema = new_schema()
    yield f"{PG_URL}?schema={schema}"
    await drop_schema(schema)


@pytest.fixture
async def dynamo_url() -> AsyncIterator[str]:
    table = new_table()
    yield f"dynamodb://{table}?region=us-east-1&endpoint={DYNAMODB_URL}&create_table=true"
    await drop_table(table)


async def everything(url: str) -> dict[str, list[Any]]:
    """Every record of every kind of every domain, keyed and sorted (backends page in different orders)."""
    store = connect(url, disable_init=True, **({"credentials": CREDENTIALS} if url.startswith("dynamodb") else {}))
    found: dict[str, list[Any]] = {}
    try:
        for name, domain in store.stores.items():
            for kind, spec in domain.record_kinds.items():
                records: list[Any] = []
                cursor: str | None = None
                while True:
                    page = await domain.export_records(kind=kind, after=cursor, limit=500)
                    records += page.records
                    if (cursor := page.next) is None:
                        break
                found[f"{name}.{kind}"] = sorted(records, key=lambda r: [getattr(r, k) for k in spec.keys])
    finally:
        await store.close()
    return found


def test_help_reads_well() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("migrate", "copy", "prune", "stats", "doctor"):
        assert command in result.stdout
    assert "Exit codes" in result.stdout
    assert run("copy", "--help").returncode == 0


def test_migrate_dry_run_sql_then_apply(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'new.db'}"
    planned = run("migrate", url, "--dry-run", "--json")
    assert planned.returncode == 0, planned.stderr
    steps = json.loads(planned.stdout)["steps"]
    assert len(steps) == 11 and not any(step["applied"] for step in steps)  # 2 per domain, and workflows 3
    sql = run("migrate", url, "--sql")
    assert 'CREATE TABLE IF NOT EXISTS "mastra_threads"' in sql.stdout
    assert sql.stdout.count("CREATE INDEX") >= 10
    conn = apsw.Connection(str(tmp_path / "new.db"))  # neither run created a table
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchall() == [(0,)]
    conn.close()
    applied = run("migrate", url)
    assert applied.returncode == 0 and applied.stdout.count(": applied") == 11
    assert run("migrate", url).stdout.strip() == "up to date"


def test_migrate_refuses_a_newer_database(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'db.db'}"
    assert run("migrate", url).returncode == 0
    conn = apsw.Connection(str(tmp_path / "db.db"))
    conn.execute(f"INSERT INTO {LEDGER_TABLE} VALUES ('scores', 9, 'future', 'x', '2030-01-01')")
    conn.close()
    refused = run("migrate", url)
    assert refused.returncode == 3
    assert "newer than this package" in refused.stderr


def test_copy_the_demo_database_to_postgresql_to_dynamodb_and_back(
    demo_db: Path, pg_url: str, dynamo_url: str, tmp_path: Path
) -> None:
    source = f"file:{demo_db}"
    back = f"file:{tmp_path / 'back.db'}"
    for src, dst in ((source, pg_url), (pg_url, dynamo_url), (dynamo_url, back)):
        result = run("copy", src, dst, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["ok"] and report["copied"] >= 14
        assert {k["domain"] for k in report["kinds"]} == {"memory", "workflows", "scores", "observability", "agents"}
    original, pg, dynamo, final = (
        asyncio.run(everything(url)) for url in (source, pg_url, dynamo_url.replace("&create_table=true", ""), back)
    )
    assert all(original.values())  # the demo wrote every kind
    assert pg == original and dynamo == original and final == original


def test_copy_only_the_chosen_domains(demo_db: Path, tmp_path: Path) -> None:
    dst = f"file:{tmp_path / 'dst.db'}"
    result = run("copy", f"file:{demo_db}", dst, "--domains", "scores,agents", "--json")
    assert result.returncode == 0, result.stderr
    assert {k["domain"] for k in json.loads(result.stdout)["kinds"]} == {"scores", "agents"}
    stats = json.loads(run("stats", dst, "--json").stdout)["records"]
    assert stats["scores"]["scores"] == 2 and stats["memory"]["messages"] == 0
    assert run("copy", f"file:{demo_db}", dst, "--domains", "nope").returncode == 2


async def _big_source(url: str, messages: int) -> None:
    async with connect(url) as store:
        memory: Any = store.stores["memory"]
        thread = sample_thread()
        await memory.save_thread(thread=thread)
        for start in range(0, messages, 1000):
            await memory.save_messages(messages=[sample_message(thread) for _ in range(start, start + 1000)])


async def _messages_in(url: str) -> int:
    store = connect(url, disable_init=True)
    try:
        count: int = await store.stores["memory"].count_records(kind="messages")
        return count
    finally:
        await store.close()


async def test_a_killed_copy_run_again_finishes_without_duplicates(tmp_path: Path, pg_url: str) -> None:
    source = f"file:{tmp_path / 'big.db'}"
    await _big_source(source, 20_000)
    proc = await asyncio.create_subprocess_exec(
        COMMAND, "copy", source, pg_url, "--page-size", "200", env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    # Kill it once part of the messages are in (it polls the destination: no guessing at timings).
    async with asyncio.timeout(120):
        while True:
            copied = await _messages_in(pg_url) if await _has_tables(pg_url) else 0
            if copied >= 2_000 or proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    halfway = await _messages_in(pg_url)
    assert 0 < halfway < 20_000, halfway
    result = run("copy", source, pg_url, "--json")
    assert result.returncode == 0, result.stderr
    assert await _messages_in(pg_url) == 20_000
    assert (await everything(pg_url)) == (await everything(source))


async def _has_tables(url: str) -> bool:
    store = connect(url, disable_init=True)
    try:
        return not await store.migrate(dry_run=True)
    finally:
        await store.close()


async def test_prune_deletes_what_is_older_than_the_age(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'prune.db'}"
    old, new = utc_now() - timedelta(days=40), utc_now()
    async with connect(url) as store:
        memory: Any = store.stores["memory"]
        thread = sample_thread()
        await memory.save_thread(thread=thread)
        await memory.save_messages(
            messages=[sample_message(thread, created_at=old), sample_message(thread, created_at=new)]
        )
    result = run("prune", url, "--older-than", "30d", "--domains", "memory", "--json")
    assert result.returncode == 0, result.stderr
    deleted = {r["table"]: r["deleted"] for r in json.loads(result.stdout)["results"]}
    assert deleted["messages"] == 1
    assert await _messages_in(url) == 1
    assert run("prune", url, "--older-than", "soon").returncode == 2


def test_stats_counts_every_kind(demo_db: Path) -> None:
    result = run("stats", f"file:{demo_db}", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["records"]["memory"]["messages"] == 3
    assert document["records"]["agents"]["versions"] == 2
    assert document["size_bytes"] > 0


def test_doctor_gives_a_verdict(demo_db: Path, pg_url: str) -> None:
    healthy = run("doctor", f"file:{demo_db}")
    assert healthy.returncode == 0 and "verdict: healthy" in healthy.stdout
    assert "[ok] sqlite version" in healthy.stdout and "[ok] memory schema: up to date (version 2)" in healthy.stdout
    pg = run("doctor", pg_url, "--json")
    assert pg.returncode == 0, pg.stdout
    names = {c["name"] for c in json.loads(pg.stdout)["checks"]}
    assert {"postgresql version", "privileges", "memory schema"} <= names
    missing = run("doctor", f"dynamodb://no_such_table_{os.getpid()}?region=us-east-1&endpoint={DYNAMODB_URL}")
    assert missing.returncode == 1
    assert "[FAIL] table" in missing.stdout and "NOT READY" in missing.stdout


def test_secrets_never_printed(tmp_path: Path) -> None:
    result = run("stats", "postgresql://app:hunter2@127.0.0.1:1/app", "--json")
    assert result.returncode == 4
    assert "hunter2" not in result.stdout + result.stderr


def test_copy_from_clickhouse_and_back_keeps_every_span_and_score(tmp_path: Path) -> None:
    """ClickHouse (the engine in process, a fresh data path per process) serves observability and
    scores: copied to the embedded default, to a second ClickHouse and to the embedded default again,
    every record equal."""
    from mastra_storage.testing.samples import sample_score, sample_span

    chdb = f"chdb://{tmp_path / 'ch'}"
    spans = [sample_span(trace_id="t1", span_id=f"s{i}", parent_span_id=None if i == 0 else "s0") for i in range(5)]
    script = (
        "import asyncio, sys, pickle\n"
        "from mastra_storage import connect\n"
        "async def main():\n"
        "    async with connect(sys.argv[1]) as store:\n"
        "        spans, scores = pickle.loads(sys.stdin.buffer.read())\n"
        "        await store.stores['observability'].batch_create_spans(spans=spans)\n"
        "        for score in scores: await store.stores['scores'].save_score(score=score)\n"
        "asyncio.run(main())\n"
    )
    import pickle

    payload = pickle.dumps((spans, [sample_score(scorer_id="sc") for _ in range(3)]))
    subprocess.run([sys.executable, "-c", script, chdb], input=payload, check=True, capture_output=True)
    planned = run("migrate", chdb, "--dry-run")
    assert planned.returncode == 0 and planned.stdout.strip() == "up to date"
    embedded = f"file:{tmp_path / 'from-ch.db'}"
    result = run("copy", chdb, embedded, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {(k["domain"], k["kind"], k["copied"]) for k in report["kinds"]} == {
        ("observability", "spans", 5),
        ("scores", "scores", 3),
    }
    chdb_again, embedded_again = f"chdb://{tmp_path / 'ch2'}", f"file:{tmp_path / 'again.db'}"
    assert run("copy", embedded, chdb_again).returncode == 0
    assert run("copy", chdb_again, embedded_again).returncode == 0
    first, again = asyncio.run(everything(embedded)), asyncio.run(everything(embedded_again))
    assert [s.span_id for s in first["observability.spans"]] == [f"s{i}" for i in range(5)]
    assert len(first["scores.scores"]) == 3 and not first["memory.messages"]
    assert again == first
