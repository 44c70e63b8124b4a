"""How long the event loop is held up while something runs: a task asks for 1 ms sleeps and records
how late each one wakes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def ticker() -> AsyncIterator[list[float]]:
    """Yields the list of delays (seconds past each 1 ms sleep), filled until the block ends."""
    delays: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            delays.append(time.perf_counter() - start - 0.001)

    task = asyncio.create_task(tick())
    try:
        yield delays
    finally:
        done.set()
        await task
