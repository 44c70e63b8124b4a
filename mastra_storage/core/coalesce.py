"""Calls that arrive together, sent together.

A server handling many requests at once reads many threads or snapshots by key, and writes many
small records, in the same event-loop turn. A call that finds nothing of its kind in flight goes
out at once, alone. Calls that arrive while one is in flight wait for the end of the loop turn and
go to the database as one request: reads as ``WHERE id = ANY($1)`` or ``BatchGetItem`` (each
caller decodes its own record), writes as one multi-row upsert. Measured with 16 concurrent
callers on PostgreSQL: get thread 5,600 → 23,000-26,000 reads/s (client CPU 155 → 25 µs per read).

Semantics are those of the single call. A call issued after another was acknowledged is sent after
it. A grouped write is acknowledged when the statement holding it has committed; if that statement
fails, each write of the group is sent again alone, so only the write at fault fails, with its own
error. A cancelled caller leaves the group to the others: its write is not sent if the group has
not gone out yet, and commits wholly or not at all if it has (as a single statement would). A
failed read group fails each of its callers with the same exception.

List pages (``SharedReads``) are grouped the same way, but a group does not merge different pages
into one request: callers asking for the same page share its read, other pages go out on their own.
"""

from __future__ import annotations

import abc
import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

# Keys per request: a wave of callers (16 arriving at once) goes out as a few requests in parallel,
# which the server works on several processes or threads at once. Measured with 16 callers,
# persist snapshot: 100 keys per request 3,600-4,800/s, 8 keys 5,900-6,900/s on PostgreSQL;
# 25 keys 800-980/s, 8 keys 1,090-1,270/s on DynamoDB Local (4 keys: less on both).
GROUP_LIMIT = 8

K = TypeVar("K", bound=Hashable)
A = TypeVar("A")
V = TypeVar("V")


class _Group(Generic[K, A, V]):
    __slots__ = ("args", "loop", "waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.args: dict[K, A] = {}
        self.waiters: dict[K, list[asyncio.Future[V | None]]] = {}

    def pending(self) -> list[tuple[K, asyncio.Future[V | None]]]:
        return [(key, f) for key, futures in self.waiters.items() for f in futures if not f.done()]


class _Grouped(abc.ABC, Generic[K, A, V]):
    """The grouping: at most ``limit`` distinct keys per group; a group belongs to the loop its
    first caller ran on (a caller on another loop starts its own). Belongs to one store."""

    share = True  # callers of one key in one group share its answer (reads); else a key is once per group

    def __init__(self, *, limit: int = GROUP_LIMIT) -> None:
        self._limit = limit
        self._open: _Group[K, A, V] | None = None
        self._running: set[asyncio.Task[None]] = set()  # strong references until each group ends
        self._direct = 0  # calls in flight on their own

    @abc.abstractmethod
    def _alone(self, key: K, arg: A) -> Awaitable[V | None]:
        """One call on its own (the awaitable itself: no coroutine layer of its own)."""

    @abc.abstractmethod
    async def _together(self, group: _Group[K, A, V]) -> None:
        """A group's calls as one request; answers every caller still waiting."""

    async def _submit(self, key: K, arg: A) -> V | None:
        if self._open is None and not self._running and not self._direct:
            self._direct += 1
            try:
                return await self._alone(key, arg)
            finally:
                self._direct -= 1
        loop = asyncio.get_running_loop()
        group = self._open
        if group is None or group.loop is not loop or not self._fits(group, key):
            group = self._open = _Group(loop)
            loop.call_soon(self._send, group)
        future: asyncio.Future[V | None] = loop.create_future()
        group.args.setdefault(key, arg)
        group.waiters.setdefault(key, []).append(future)
        return await future

    def _fits(self, group: _Group[K, A, V], key: K) -> bool:
        if key in group.waiters:
            return self.share
        return len(group.waiters) < self._limit

    def _send(self, group: _Group[K, A, V]) -> None:
        if self._open is group:
            self._open = None
        task = group.loop.create_task(self._run(group))
        self._running.add(task)
        task.add_done_callback(functools.partial(self._ended, group))

    async def _run(self, group: _Group[K, A, V]) -> None:
        if group.pending():  # else every caller left before it went out
            await self._together(group)

    def _ended(self, group: _Group[K, A, V], task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        for _, future in group.pending():  # left unanswered: the group was cancelled (loop shutdown)
            future.cancel()


class Coalescer(_Grouped[K, None, V]):
    """``await get(key)`` → ``fetch_many([keys…])[key]`` or None."""

    def __init__(
        self, fetch_many: Callable[[Sequence[K]], Awaitable[Mapping[K, V]]], *, limit: int = GROUP_LIMIT
    ) -> None:
        super().__init__(limit=limit)
        self._fetch_many = fetch_many

    async def get(self, key: K) -> V | None:
        return await self._submit(key, None)

    async def _alone(self, key: K, arg: None) -> V | None:
        return (await self._fetch_many([key])).get(key)

    async def _together(self, group: _Group[K, None, V]) -> None:
        try:
            found = await self._fetch_many(list(group.waiters))
        except Exception as exc:  # handed to each caller, who raises it
            for _, future in group.pending():
                future.set_exception(exc)
            return
        for key, future in group.pending():
            future.set_result(found.get(key))


class UpdateGroups(_Grouped[K, A, V]):
    """``await update(key, arg)`` → ``update_one(arg)`` alone, or ``update_many({key: arg, …})[key]``
    for a group. One call per key per group (a second call of a key goes in the next group, after
    the first): each is a write whose answer is its own."""

    share = False

    def __init__(
        self,
        update_one: Callable[[A], Awaitable[V]],
        update_many: Callable[[Mapping[K, A]], Awaitable[Mapping[K, V]]],
        *,
        limit: int = GROUP_LIMIT,
    ) -> None:
        super().__init__(limit=limit)
        self._update_one = update_one
        self._update_many = update_many

    async def update(self, key: K, arg: A) -> V:
        return await self._submit(key, arg)  # type: ignore[return-value]  # a group answers every key

    def _alone(self, key: K, arg: A) -> Awaitable[V]:
        return self._update_one(arg)

    async def _together(self, group: _Group[K, A, V]) -> None:
        pending = group.pending()  # a call whose caller left before it went out is not sent
        try:
            answers = await self._update_many({key: group.args[key] for key, _ in pending})
        except Exception:  # each call again alone: its own outcome (one that landed is an upsert, idempotent)
            await asyncio.gather(*(self._retry(group.args[key], future) for key, future in pending))
            return
        for key, future in pending:
            if key in answers and not future.done():
                future.set_result(answers[key])
        # A call the group left unanswered is sent again alone (its own answer, or its own error).
        await asyncio.gather(*(self._retry(group.args[key], future) for key, future in pending if key not in answers))

    async def _retry(self, arg: A, future: asyncio.Future[V | None]) -> None:
        if future.done():
            return
        try:
            answer = await self._update_one(arg)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(answer)


class WriteGroups(UpdateGroups[K, A, None]):
    """``await write(key, record)``: ``write_one(record)`` alone, or ``write_many([records…])`` for a
    group (one record per key: a second write of a key goes in the next group). ``ordered``: a
    group's records in key order (keys must be orderable) — statements that lock rows as they
    write them then take their locks in one order, so two groups in flight cannot deadlock."""

    def __init__(
        self,
        write_one: Callable[[A], Awaitable[None]],
        write_many: Callable[[Sequence[A]], Awaitable[None]],
        *,
        limit: int = GROUP_LIMIT,
        ordered: bool = False,
    ) -> None:
        async def many(records: Mapping[K, A]) -> Mapping[K, None]:
            keys = sorted(records) if ordered else records  # type: ignore[type-var]  # orderable when asked
            await write_many([records[key] for key in keys])
            return dict.fromkeys(records)

        super().__init__(write_one, many, limit=limit)

    write = UpdateGroups.update  # ``await write(key, record)``


class SharedReads(_Grouped[Hashable, Callable[[], Awaitable[V]], V]):
    """``await read(statement, values, fetch)`` → ``fetch()``. Callers of the same statement with
    the same values that wait in one group share a single ``fetch()`` and its answer: a page many
    callers ask for at once is read once. Distinct statements of a group run at once, each on its
    own. Each caller's read is still sent after its call was made, so it sees every write
    acknowledged before it. The answer is handed to every sharer as it is, so it must be rows that
    nobody changes: each caller decodes records of its own from them."""

    async def read(self, statement: Hashable, values: Sequence[object], fetch: Callable[[], Awaitable[V]]) -> V:
        # Equal values of different types (1 and True, 1 and 1.0) are kept apart.
        key = (statement, tuple(values), tuple(map(type, values)))
        try:
            hash(key)
        except TypeError:  # a value that is not hashable (a list of ids): read alone
            return await fetch()
        return await self._submit(key, fetch)  # type: ignore[return-value]  # a group answers every key

    def _alone(self, key: Hashable, arg: Callable[[], Awaitable[V]]) -> Awaitable[V]:
        return arg()

    async def _together(self, group: _Group[Hashable, Callable[[], Awaitable[V]], V]) -> None:
        async def one(key: Hashable) -> None:
            waiting = [future for future in group.waiters[key] if not future.done()]
            if not waiting:  # every caller of this statement left before it went out
                return
            try:
                answer = await group.args[key]()
            except Exception as exc:  # handed to each caller, who raises it
                for future in waiting:
                    if not future.done():
                        future.set_exception(exc)
                return
            for future in waiting:
                if not future.done():
                    future.set_result(answer)

        await asyncio.gather(*(one(key) for key in group.waiters))
