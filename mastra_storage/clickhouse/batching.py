"""An async batching writer for spans: ClickHouse wants few large inserts, tracers emit spans one by one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any, Self

from ..domains.record_rules import new_spans
from ..errors import ValidationError
from ..types import SpanRecord
from .observability import ObservabilityStorageClickhouse


class SpanBatchWriter:
    """Buffers ``create_span`` calls and writes them as one columnar insert when ``max_batch`` spans
    are waiting or ``flush_interval`` seconds have passed since the first of them.

    Spans are validated when they are added (a bad span raises at once). ``flush()`` writes what is
    buffered now; ``close()`` stops the timer and flushes the rest. If an insert fails, its spans go
    back to the front of the buffer and the error is raised: nothing is dropped.
    """

    def __init__(
        self, store: ObservabilityStorageClickhouse, *, max_batch: int = 10_000, flush_interval: float = 1.0
    ) -> None:
        if max_batch < 1 or flush_interval <= 0:
            raise ValidationError("max_batch must be >= 1 and flush_interval > 0")
        self.store = store
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self._buffer: list[SpanRecord] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._buffer)

    async def create_span(self, *, span: SpanRecord | Mapping[str, Any]) -> None:
        if self._closed:
            raise ValidationError("the span writer is closed")
        self._buffer.extend(new_spans([span]))
        if len(self._buffer) >= self.max_batch:
            await self.flush()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.flush_interval)
        self._timer = None
        try:
            await self.flush()
        except Exception as exc:  # the spans are back in the buffer; the next flush or close() retries
            self.last_error: BaseException | None = exc

    async def flush(self) -> None:
        async with self._lock:
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            try:
                await self.store.batch_create_spans(spans=batch)
            except BaseException:
                self._buffer[:0] = batch  # keep them, in order, for the next flush
                raise

    async def close(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        await self.flush()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
