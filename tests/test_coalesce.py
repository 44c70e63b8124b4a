"""``core.coalesce`` on its own: how reads and writes in flight together are grouped, and what a
failed or cancelled group does to its callers. (The backends' grouped statements are tested
against their real servers in the conformance suite and the backend tests.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence

import pytest

from mastra_storage.core.coalesce import Coalescer, SharedReads, UpdateGroups, WriteGroups


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


class Pages:
    """A statement source: each fetch is recorded, and answers a list of its own ending with its number."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[object, ...]]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    def fetch(self, sql: str, *values: object) -> Callable[[], Awaitable[list[object]]]:
        async def run() -> list[object]:
            self.sent.append((sql, values))
            number = len(self.sent)
            await asyncio.sleep(0)  # a query takes at least one loop turn
            await self.gate.wait()
            if self.fail is not None:
                raise self.fail
            return [sql, *values, number]

        return run

    def read(self, reads: SharedReads[list[object]], sql: str, *values: object) -> Awaitable[list[object]]:
        return reads.read(sql, values, self.fetch(sql, *values))


async def test_callers_of_one_statement_in_one_group_share_its_answer() -> None:
    pages, reads = Pages(), SharedReads[list[object]]()
    calls = [("page", 1), ("page", 1), ("page", 2), ("page", True), ("page", 1.0), ("other", 1), ("page", 1)]
    answers = await asyncio.gather(*(pages.read(reads, sql, value) for sql, value in calls))
    # The first went out alone; the rest waited for one group: "page" with 1 once, shared by its
    # three callers; equal values of other types (True, 1.0) and other statements on their own.
    assert pages.sent == [("page", (1,)), ("page", (1,)), ("page", (2,)), ("page", (True,)), ("page", (1.0,)),
                          ("other", (1,))]  # fmt: skip
    assert answers[1] is answers[6] and answers[1] == ["page", 1, 2]
    assert answers[0] == ["page", 1, 1] and answers[2] == ["page", 2, 3]
    assert answers[3] == ["page", True, 4] and answers[4] == ["page", 1.0, 5]


async def test_a_read_never_joins_one_already_sent() -> None:
    """A caller's statement goes out after its call: it sees what was acknowledged before it."""
    pages, reads = Pages(), SharedReads[list[object]]()
    pages.gate.clear()
    first = asyncio.ensure_future(pages.read(reads, "page", 1))
    await turns(2)
    assert pages.sent == [("page", (1,))]  # in flight, held
    second = asyncio.ensure_future(pages.read(reads, "page", 1))
    await turns(5)  # the call, its group sent, started, its statement started
    assert len(pages.sent) == 2  # the same statement again, in a group of its own
    pages.gate.set()
    assert await first == ["page", 1, 1] and await second == ["page", 1, 2]


async def test_values_that_cannot_be_hashed_are_read_alone() -> None:
    pages, reads = Pages(), SharedReads[list[object]]()
    answers = await asyncio.gather(*(pages.read(reads, "page", ["a", "b"]) for _ in range(3)))
    assert len(pages.sent) == 3 and len({id(a) for a in answers}) == 3


async def test_a_failed_shared_read_fails_each_of_its_callers() -> None:
    pages, reads = Pages(), SharedReads[list[object]]()
    pages.gate.clear()
    held = asyncio.ensure_future(pages.read(reads, "held"))
    await turns(2)
    pages.fail = RuntimeError("server gone")
    shared = [asyncio.ensure_future(pages.read(reads, "page", 1)) for _ in range(2)]
    pages.gate.set()
    results = await asyncio.gather(held, *shared, return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError] * 3
    assert pages.sent == [("held", ()), ("page", (1,))]
    pages.fail = None
    assert await pages.read(reads, "page", 1) == ["page", 1, 3]  # nothing stays failed


async def test_a_shared_read_goes_on_for_callers_left_and_is_not_sent_for_none() -> None:
    pages, reads = Pages(), SharedReads[list[object]]()
    pages.gate.clear()
    held = asyncio.ensure_future(pages.read(reads, "held"))
    await turns(2)
    leaving, staying = (asyncio.ensure_future(pages.read(reads, "page", 1)) for _ in range(2))
    gone = asyncio.ensure_future(pages.read(reads, "page", 2))
    await asyncio.sleep(0)  # all three wait for their group
    gone.cancel()
    await turns(3)  # the group is sent: "page" 1 is in flight, "page" 2 has nobody left
    leaving.cancel()
    pages.gate.set()
    assert await staying == ["page", 1, 2] and await held == ["held", 1]
    assert pages.sent == [("held", ()), ("page", (1,))]
    with pytest.raises(asyncio.CancelledError):
        await leaving
