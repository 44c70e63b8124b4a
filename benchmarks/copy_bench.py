"""``mastra-storage copy`` from the embedded default to PostgreSQL: records per second and memory.

Fills a SQLite file with 200,000 messages (in 200 threads), then copies the memory domain into a
fresh PostgreSQL schema with ``copy_domains`` — what the command runs — sampling the resident set
size as pages go by. Target: at least 5,000 records/s with flat memory.

    python -m benchmarks.copy_bench [--quick] [--markdown FILE]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from datetime import timedelta

from mastra_storage import connect
from mastra_storage.cli.copy import KindReport, copy_domains
from mastra_storage.core.codec import utc_now
from mastra_storage.types import Message, StorageThread

from .harness import arguments, publish
from .libsql_memory import rss_mb

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _fill(url: str, total: int, threads: int) -> None:
    base = utc_now()
    async with connect(url) as store:
        memory: object = store.stores["memory"]
        for t in range(threads):
            await memory.save_thread(thread=StorageThread(id=f"t{t}", resource_id="r", title=f"thread {t}"))  # type: ignore[attr-defined]
        per_thread = total // threads
        for t in range(threads):
            await memory.save_messages(  # type: ignore[attr-defined]
                messages=[
                    Message(
                        id=f"t{t}-m{i}",
                        thread_id=f"t{t}",
                        resource_id="r",
                        role="user",
                        type="v2",
                        created_at=base + timedelta(milliseconds=i),
                        content={"format": 2, "parts": [{"type": "text", "text": f"message {i} " * 10}]},
                    )
                    for i in range(per_thread)
                ]
            )


async def main() -> None:
    args = arguments(__doc__ or "", quick="20,000 messages instead of 200,000")
    total = 20_000 if args.quick else 200_000
    schema = f"bench_copy_{uuid.uuid4().hex[:8]}"
    dst_url = f"{PG_URL}?schema={schema}"
    samples: list[tuple[int, float]] = []

    def progress(report: KindReport) -> None:
        if report.kind == "messages" and report.copied % (total // 10) == 0:
            samples.append((report.copied, rss_mb()))

    with tempfile.TemporaryDirectory() as tmp:
        src_url = f"file:{tmp}/big.db"
        await _fill(src_url, total, 200)
        samples.append((0, rss_mb()))
        async with connect(src_url, disable_init=True) as src, connect(dst_url) as dst:
            began = time.perf_counter()
            report = await copy_domains(src, dst, ["memory"], progress=progress)
            elapsed = time.perf_counter() - began
            await dst.stores["memory"].dangerously_clear_all()
    drop = connect(dst_url)
    try:
        pool = await drop.handle.acquire()  # type: ignore[attr-defined]
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await drop.handle.release()  # type: ignore[attr-defined]
    finally:
        await drop.close()
    assert report.ok, report
    lines = [
        f"### Copying {report.copied:,} records (memory: {total:,} messages in 200 threads) libSQL file → "
        f"PostgreSQL: {elapsed:.1f} s, **{report.copied / elapsed:,.0f} records/s**",
        "",
        "| messages copied | RSS (MB) |",
        "|---:|---:|",
        *(f"| {copied:,} | {rss:.1f} |" for copied, rss in samples),
        "",
        f"Growth over the copy: {samples[-1][1] - samples[0][1]:+.1f} MB.",
    ]
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    asyncio.run(main())
