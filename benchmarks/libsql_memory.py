"""Memory stays bounded: a 200,000-message thread on the embedded default, listed page by page.

Prints the process's resident set size (VmRSS) before the listing and every 10% of the way, and
the growth over the whole listing.

    python -m benchmarks.libsql_memory [--quick] [--markdown FILE]
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from mastra_storage.core.codec import utc_now
from mastra_storage.libsql import LibSQLStore
from mastra_storage.types import Message, StorageThread

from .harness import arguments, publish


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def main() -> None:
    args = arguments(__doc__ or "", quick="20,000 messages instead of 200,000", per_page="100")
    total = 20_000 if args.quick else 200_000
    per_page = int(args.per_page)
    base = utc_now()
    with tempfile.TemporaryDirectory() as tmp:
        async with LibSQLStore(id="mem", url=f"file:{tmp}/big.db") as store:
            await store.memory.save_thread(thread=StorageThread(id="big", resource_id="r", title="big"))
            for start in range(0, total, 1000):
                await store.memory.save_messages(
                    messages=[
                        Message(
                            id=f"m{i}",
                            thread_id="big",
                            resource_id="r",
                            role="user",
                            type="v2",
                            created_at=base + timedelta(milliseconds=i),
                            content={"format": 2, "parts": [{"type": "text", "text": f"message {i} " * 10}]},
                        )
                        for i in range(start, start + 1000)
                    ]
                )
            pages = total // per_page
            samples = [(0, rss_mb())]
            began = time.perf_counter()
            seen = 0
            for page in range(pages):
                result = await store.memory.list_messages(thread_id="big", page=page, per_page=per_page)
                seen += len(result.messages)
                if (page + 1) % (pages // 10) == 0:
                    samples.append((page + 1, rss_mb()))
            elapsed = time.perf_counter() - began
    assert seen == total, (seen, total)
    lines = [
        f"### Listing a {total:,}-message thread, {per_page} per page ({pages:,} pages, {elapsed:.1f} s)",
        "",
        "| pages read | RSS (MB) |",
        "|---:|---:|",
        *(f"| {page:,} | {rss:.1f} |" for page, rss in samples),
        "",
        f"Growth over the whole listing: {samples[-1][1] - samples[0][1]:+.1f} MB "
        f"(largest sample {max(rss for _, rss in samples):.1f} MB).",
    ]
    publish("\n".join(lines), args.markdown)


if __name__ == "__main__":
    asyncio.run(main())
