"""Cancelling a call at a chosen stage, for the cancellation tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any


async def cancel_after_turns(call: Awaitable[Any], turns: int) -> None:
    """Runs ``call`` for ``turns`` turns of the event loop (every await is a cancellation point, so
    growing ``turns`` reaches every stage), then cancels it and waits until it has ended."""
    task = asyncio.ensure_future(call)
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
