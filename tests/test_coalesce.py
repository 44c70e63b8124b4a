"""``core.coalesce.Coalescer`` on its own: how reads in flight together are grouped, and what a
failed or cancelled group does to its callers. (The backends' grouped statements are tested
against their real servers in the conformance suite and the backend tests.)"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest

from mastra_storage.core.coalesce import Coalescer, UpdateGroups, WriteGroups


class Source:
    """A key-value source that records the key groups it is asked for."""

    def __init__(self, values: dict[str, int]) -> None:
        self.values = values
        self.asked: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def fetch_many(self, keys: Sequence[str]) -> dict[str, int]:
        self.asked.append(list(keys))
        await asyncio.sleep(0)  # a request takes at least one loop turn
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return {k: self.values[k] for k in keys if k in self.values}


async def test_reads_that_arrive_while_one_runs_are_one_group_of_distinct_keys() -> None:
    source = Source({"a": 1, "b": 2})
    reads = Coalescer(source.fetch_many, limit=10)
    assert await asyncio.gather(*(reads.get(k) for k in ["a", "b", "a", "x"])) == [1, 2, 1, None]
    assert source.asked == [["a"], ["b", "a", "x"]]  # the first went out alone, at once
    assert await reads.get("b") == 2 and source.asked[-1] == ["b"]


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def holding(reads: Coalescer[str, int], source: Source) -> asyncio.Future[int | None]:
    """A read in flight, held at the source's closed gate: later reads form a group."""
    source.gate.clear()
    held = asyncio.ensure_future(reads.get("held"))
    await asyncio.sleep(0)
    assert source.asked[-1] == ["held"]
    return held


async def test_a_group_holds_at_most_limit_keys() -> None:
    source = Source({str(i): i for i in range(10)})
    reads = Coalescer(source.fetch_many, limit=4)
    assert await asyncio.gather(*(reads.get(str(i)) for i in range(10))) == list(range(10))
    assert [len(group) for group in source.asked] == [1, 4, 4, 1]


async def test_a_failed_group_fails_each_caller() -> None:
    source = Source({"a": 1})
    source.fail = RuntimeError("server gone")
    reads = Coalescer(source.fetch_many, limit=10)
    results = await asyncio.gather(reads.get("a"), reads.get("b"), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError, RuntimeError]
    source.fail = None
    assert await reads.get("a") == 1  # nothing stays failed


async def test_cancelled_callers_leave_the_group_to_the_others() -> None:
    source = Source({"a": 1, "b": 2, "held": 0})
    reads = Coalescer(source.fetch_many, limit=10)
    held = await holding(reads, source)
    first, second = asyncio.ensure_future(reads.get("a")), asyncio.ensure_future(reads.get("b"))
    await turns(3)  # the reads start, the group is sent, it runs and waits at the gate
    assert source.asked[-1] == ["a", "b"]
    first.cancel()
    source.gate.set()
    assert await second == 2 and await held == 0
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_group_whose_callers_all_left_is_not_sent() -> None:
    source = Source({"a": 1, "held": 0})
    reads = Coalescer(source.fetch_many, limit=10)
    held = await holding(reads, source)
    read = asyncio.ensure_future(reads.get("a"))
    await asyncio.sleep(0)  # waiting; the group goes out on the next turn
    read.cancel()
    await turns(2)
    source.gate.set()
    assert await held == 0
    assert source.asked == [["held"]]


async def test_a_cancelled_group_cancels_its_callers() -> None:
    source = Source({"a": 1, "held": 0})
    reads = Coalescer(source.fetch_many, limit=10)
    held = await holding(reads, source)
    read = asyncio.ensure_future(reads.get("a"))
    await turns(2)
    (group,) = reads._running  # sent, not yet started: it never runs a step
    group.cancel()
    with pytest.raises(asyncio.CancelledError):
        await read
    source.gate.set()
    assert await held == 0


def test_each_event_loop_sends_its_own_groups() -> None:
    source = Source({"a": 1})
    reads = Coalescer(source.fetch_many, limit=10)

    async def read() -> int | None:
        return await reads.get("a")

    assert asyncio.run(read()) == 1
    assert asyncio.run(read()) == 1  # the first loop is closed; nothing of it is reused
    assert source.asked == [["a"], ["a"]]


class Sink:
    """Records the writes it receives, alone or in groups."""

    def __init__(self) -> None:
        self.sent: list[list[str]] = []

    async def one(self, record: str) -> None:
        self.sent.append([record])
        await asyncio.sleep(0)

    async def many(self, records: Sequence[str]) -> None:
        self.sent.append(list(records))
        await asyncio.sleep(0)


async def test_writes_that_arrive_while_one_runs_are_one_group_with_each_key_once() -> None:
    sink = Sink()
    writes: WriteGroups[str, str] = WriteGroups(sink.one, sink.many, limit=10)
    records = [("a", "a1"), ("b", "b1"), ("b", "b2"), ("c", "c1")]
    await asyncio.gather(*(writes.write(key, record) for key, record in records))
    # The first alone; a second write of "b" starts the next group (one row per key per statement).
    assert sink.sent == [["a1"], ["b1"], ["b2", "c1"]]


async def test_a_write_whose_caller_left_before_its_group_went_out_is_not_sent() -> None:
    sink = Sink()
    writes: WriteGroups[str, str] = WriteGroups(sink.one, sink.many, limit=10)
    first = asyncio.ensure_future(writes.write("a", "a1"))
    await asyncio.sleep(0)  # in flight alone
    kept, dropped = asyncio.ensure_future(writes.write("b", "b1")), asyncio.ensure_future(writes.write("c", "c1"))
    await asyncio.sleep(0)  # both wait for their group
    dropped.cancel()
    await asyncio.gather(first, kept)
    assert sink.sent == [["a1"], ["b1"]]


async def test_updates_answer_each_caller_and_a_key_once_per_group() -> None:
    counts: dict[str, int] = {}
    sent: list[list[str]] = []

    async def one(key: str) -> int:
        sent.append([key])
        await asyncio.sleep(0)
        if key == "bad":
            raise ValueError("refused")
        counts[key] = counts.get(key, 0) + 1
        return counts[key]

    async def many(args: Mapping[str, str]) -> dict[str, int]:
        sent.append(list(args))
        await asyncio.sleep(0)
        if "bad" in args:
            raise ValueError("refused")
        for key in args:
            counts[key] = counts.get(key, 0) + 1
        return {key: counts[key] for key in args if key != "skipped"}  # "skipped": left unanswered

    updates: UpdateGroups[str, str, int] = UpdateGroups(one, many, limit=8)
    got = await asyncio.gather(*(updates.update(k, k) for k in ["a", "b", "a", "c", "b"]))
    # Every call counted once, in order, each answered with its own result: a key's second call
    # went in the next group.
    assert got == [1, 1, 2, 1, 2] and sent == [["a"], ["b", "a", "c"], ["b"]]
    sent.clear()
    results = await asyncio.gather(*(updates.update(k, k) for k in ["d", "e", "bad", "f"]), return_exceptions=True)
    # The failed group's calls are sent again one by one: only the bad one fails.
    assert results[:2] == [1, 1] and isinstance(results[2], ValueError) and results[3] == 1
    assert sent == [["d"], ["e", "bad", "f"], ["e"], ["bad"], ["f"]]
    sent.clear()
    # A call the group left unanswered is sent again alone rather than left hanging.
    assert await asyncio.gather(*(updates.update(k, k) for k in ["g", "h", "skipped"])) == [1, 1, 2]
    assert sent == [["g"], ["h", "skipped"], ["skipped"]]
