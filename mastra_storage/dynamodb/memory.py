"""Memory on DynamoDB: threads, messages and resources in the single table (docs/dynamodb.md §2)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from ..core.coalesce import WriteGroups
from ..core.codec import ONE_MS, from_iso, iso, utc_now
from ..core.paging import Window
from ..domains.memory import MemoryStorage
from ..domains.memory_rules import (
    CloneRequest,
    MessagePage,
    MessageQuery,
    apply_thread_update,
    apply_updates,
    clone_plan,
    source_not_found,
    thread_exists,
    thread_not_found,
    updated_resource,
)
from ..types import CloneThreadResult, IncludeContext, Message, MessageUpdate, StorageResource, StorageThread
from .base import DynamoDomain, Kept, Partition, optimistic
from .connection import ConditionFailed, Item, gather_all
from .counters import TX_ACTIONS, TX_BYTES, Counting, Write, size_of
from .items import Expr, esc, expired, n, s, scalar_map, time_bounds, when


def thread_key(thread_id: str) -> tuple[str, str]:
    return f"THREAD#{esc(thread_id)}", "THREAD"


def message_key(message_id: str) -> tuple[str, str]:
    return f"MSG#{esc(message_id)}", "MSG"


def resource_key(resource_id: str) -> tuple[str, str]:
    return f"RESOURCE#{esc(resource_id)}", "RESOURCE"


def _key(pk: str, sk: str) -> Item:
    return {"pk": s(pk), "sk": s(sk)}


def _thread_kept(thread: StorageThread, item: Item) -> None:
    thread.updated_at = from_iso(item["u"]["S"])  # bumped by message writes without rewriting the payload


def _message_kept(message: Message, item: Item) -> None:
    message.created_at = from_iso(item["ca"]["S"])  # a re-save keeps the first save's time


class _Bumps:
    """The ``updatedAt`` bumps of the threads a message write touches, riding with its last
    transaction: set to now if that is later — never backwards, never creating a thread that does
    not exist. A bump whose thread is missing is dropped; one whose thread is already at this
    millisecond moves a millisecond on."""

    def __init__(self, threads: Sequence[str]) -> None:
        self.moments = {t: utc_now() for t in dict.fromkeys(threads)}

    @property
    def room(self) -> int:
        return len(self.moments)

    def actions(self) -> list[Item]:
        return [_bump(thread, moment) for thread, moment in self.moments.items()]

    def failed(self, reasons: list[Item]) -> None:
        for reason, thread in zip(reasons, list(self.moments), strict=True):
            if reason.get("Code") == "ConditionalCheckFailed":
                old = reason.get("Item")
                if old:
                    self.moments[thread] = max(self.moments[thread], from_iso(old["u"]["S"]) + ONE_MS)
                else:
                    del self.moments[thread]


def _bump(thread_id: str, moment: datetime) -> Item:
    """Sets a thread's ``updatedAt`` to ``moment`` if that is later; its version moves too, so a
    concurrent ``update_thread`` reads it again."""
    pk, sk = thread_key(thread_id)
    stamp = f"{when(moment)}#{esc(thread_id)}"
    return {
        "Update": {
            "Key": _key(pk, sk),
            "UpdateExpression": "SET u = :u, gsi2sk = :k, gsi4sk = :k ADD v :one",
            "ConditionExpression": "attribute_exists(pk) AND u < :u",
            "ExpressionAttributeValues": {":u": s(iso(moment)), ":k": s(stamp), ":one": n(1)},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
    }


@dataclass
class _Batch:
    """``save_messages`` writes and the threads they bump, with what one transaction of them would
    hold (counted once per call, added up when calls are joined)."""

    writes: list[Write]
    threads: set[str]
    actions: int  # the writes' items
    size: int  # their bytes, as size_of counts them
    groups: set[str]  # the counters they move

    @classmethod
    def of(cls, writes: list[Write], threads: set[str], counting: Counting) -> _Batch:
        items = [item for write in writes for item in write.items]
        groups = set().union(*(counting.groups(w.old) | counting.groups(w.after()) for w in writes))
        return cls(writes, threads, len(items), sum(size_of({"Put": {"Item": i}}) for i in items), groups)

    def join(self, other: _Batch) -> _Batch:
        return _Batch(
            [*self.writes, *other.writes], self.threads | other.threads, self.actions + other.actions,
            self.size + other.size, self.groups | other.groups,
        )  # fmt: skip

    def fits(self) -> bool:
        """Whether it takes one transaction: its writes, the counters they move, its bumps."""
        return self.actions + len(self.groups) + len(self.threads) <= TX_ACTIONS and self.size <= TX_BYTES


class MemoryDynamoDB(DynamoDomain, MemoryStorage):
    """Threads, messages and resources on DynamoDB: no Scan on any list, messages saved in
    transactions, read-modify-writes guarded by a version attribute."""

    entities: ClassVar[tuple[str, ...]] = ("thread", "message", "resource")
    retention_entities: ClassVar[dict[str, str]] = {
        "messages": "message",
        "resources": "resource",
        "threads": "thread",
    }
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {
        "threads": ("thread", _thread_kept),
        "messages": ("message", _message_kept),
        "resources": ("resource", None),
    }

    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] | None = None  # per thread id, while in use

    async def _import(self, kind: str, records: list[Any]) -> None:
        if kind == "messages":
            await self._save_messages(records)  # transactions of up to 100 items, threads bumped
        elif kind == "threads":
            await self.write_all([await self._thread_items(thread) for thread in records])
        else:
            await self.write_all([await self._resource_items(resource) for resource in records])

    # ------------------------------------------------------------ threads

    async def _thread_items(self, thread: StorageThread) -> list[Item]:
        pk, sk = thread_key(thread.id)
        items = await self.items(pk, sk, "thread", thread, thread.created_at)
        by_created = f"{when(thread.created_at)}#{esc(thread.id)}"
        by_updated = f"{when(thread.updated_at)}#{esc(thread.id)}"
        owner = f"THREADS#R#{esc(thread.resource_id)}"
        items[0].update(
            u=s(iso(thread.updated_at)),
            meta=scalar_map(thread.metadata),
            gsi1pk=s(owner),
            gsi1sk=s(by_created),
            gsi2pk=s(owner),
            gsi2sk=s(by_updated),
            gsi3pk=s("THREADS"),
            gsi3sk=s(by_created),
            gsi4pk=s("THREADS"),
            gsi4sk=s(by_updated),
        )
        return items

    async def _thread(self, thread_id: str) -> tuple[StorageThread, Item] | None:
        return await self.read(*thread_key(thread_id), "thread", StorageThread, _thread_kept)

    async def _get_thread(self, thread_id: str, resource_id: str | None) -> StorageThread | None:
        found = await self._thread(thread_id)
        if found is None or (resource_id is not None and found[0].resource_id != resource_id):
            return None
        return found[0]

    async def _save_thread(self, thread: StorageThread) -> None:
        await self.write(await self._thread_items(thread))

    async def _update_thread(self, id: str, title: str | None, patch: dict[str, Any] | None) -> StorageThread:
        async def attempt() -> StorageThread:
            found = await self._thread(id)
            if found is None:
                raise thread_not_found(id)
            thread, old = found
            apply_thread_update(thread, title, patch)
            await self.replace(await self._thread_items(thread), old)
            return thread

        return await optimistic(attempt)

    async def _delete_thread(self, thread_id: str) -> None:
        # What a counted delete needs: the key, version, parts and groups of each message.
        projection = "pk, sk, n, v, gsi1pk, gsi2pk"
        messages = await self.conn.query(
            **Partition("gsi1", f"MSGS#T#{esc(thread_id)}").request(Expr(), ProjectionExpression=projection)
        )
        found = await self.conn.get(_key(*thread_key(thread_id)))
        # Messages first: if this stops half way, the thread is still there to delete again.
        await self.counting.commit([Write("delete", [m], m) for m in messages])
        if found is not None:
            await self.counting.commit([Write("delete", [found], found)])
        await self.counting.drop_if_empty(f"MSGS#T#{esc(thread_id)}")  # no counter left behind

    async def _thread_page(
        self, resource_id: str | None, metadata: dict[str, Any], win: Window, column: str, dir_: str
    ) -> tuple[list[StorageThread], int]:
        by_updated = column == "updatedAt"
        if resource_id is not None:
            part = Partition("gsi2" if by_updated else "gsi1", f"THREADS#R#{esc(resource_id)}")
        else:
            part = Partition("gsi4" if by_updated else "gsi3", "THREADS")

        def expr() -> Expr:
            e = self.expr("thread")
            e.map_equals("meta", metadata)
            return e

        found = await self.page([part], expr, win, forward=dir_ == "ASC")
        return await self.decode(found.items, StorageThread, _thread_kept), found.total or 0

    # ------------------------------------------------------------ messages

    async def _message_write(self, message: Message, old: Item | None = None) -> Write:
        """An Update of the message item (created time kept if it exists: a re-save edits, it does
        not move the message in time), plus Puts of its parts if it is split."""
        assert message.thread_id is not None and message.resource_id is not None  # check_messages
        pk, sk = message_key(message.id)
        main, *parts = await self.items(pk, sk, "message", message, message.created_at)
        content_meta = message.content.get("metadata")
        main.update(
            gsi1pk=s(f"MSGS#T#{esc(message.thread_id)}"),
            gsi2pk=s(f"MSGS#R#{esc(message.resource_id)}"),
            r=s(message.resource_id),
            meta=scalar_map(content_meta if isinstance(content_meta, Mapping) else None),
        )
        order = s(f"{when(message.created_at)}#{esc(message.id)}")
        once = {"ca": s(iso(message.created_at)), "gsi1sk": order, "gsi2sk": order}
        return Write("merge", [main, *parts], old, once)

    async def _commit(self, writes: list[Write], threads: Sequence[str], *, learn: bool = True) -> None:
        """``writes`` (with their counters) plus a bump of every thread in ``threads``, in as few
        transactions as the service limits allow (the bumps ride with the last)."""
        async with contextlib.AsyncExitStack() as held:
            # Writers of one thread in this process take turns: transactions touching the same item
            # conflict, and queueing costs far less than the service's conflict-and-retry.
            for owner in sorted(set(threads)):
                await held.enter_async_context(self._thread_lock(owner))
            # Timed once its turn has come: later than the bump of the writer before it, which a bump
            # timed on arrival would not be (a failed condition, and a transaction sent again).
            await self.counting.commit(writes, learn=learn, tail=_Bumps(threads))

    def _thread_lock(self, thread_id: str) -> asyncio.Lock:
        if self._locks is None:
            self._locks = weakref.WeakValueDictionary()
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        return lock

    async def _save_messages(self, messages: list[Message]) -> None:
        """Saves that arrive while one is in flight share transactions (``_save_together``); a save
        too large for one transaction goes alone, in as many as it needs."""
        latest = list({m.id: m for m in messages}.values())  # one item per id: the last one given wins
        writes = [await self._message_write(m) for m in latest]
        batch = _Batch.of(writes, {str(m.thread_id) for m in latest}, self.counting)
        if batch.fits():
            await self._message_saves.write(object(), batch)
        else:
            await self._save_alone(batch)

    @functools.cached_property
    def _message_saves(self) -> WriteGroups[object, _Batch]:
        return WriteGroups(self._save_alone, self._save_together)

    async def _save_alone(self, batch: _Batch) -> None:
        await self._commit(batch.writes, sorted(batch.threads))

    async def _save_together(self, batches: Sequence[_Batch]) -> None:
        """Batches in as few transactions as fit, each batch whole in one (a caller's messages land
        together). Writers of one thread queue for its ``updatedAt`` bump; on DynamoDB Local eight
        callers' 80 messages in one transaction take about as long as five transactions of ten."""
        joined: list[_Batch] = []
        for batch in batches:
            both = joined[-1].join(batch) if joined else None
            if both is not None and both.fits():
                joined[-1] = both
            else:
                joined.append(batch)
        outcomes = await asyncio.gather(*(self._save_alone(b) for b in joined), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _messages(self, items: list[Item]) -> list[Message]:
        return await self.decode(items, Message, _message_kept)

    async def _message_page(self, q: MessageQuery) -> MessagePage:
        included_task = asyncio.ensure_future(self._included(q.includes, q.resource_id))
        if q.win.limit == 0:
            return MessagePage([], 0, await included_task)
        rng = q.date_range
        lo, hi = time_bounds(*(rng.start, rng.end, rng.start_exclusive, rng.end_exclusive) if rng else (None, None))
        if q.thread_ids is None:  # every thread of the resource: its own index partition
            partitions = [Partition("gsi2", f"MSGS#R#{esc(str(q.resource_id))}", lo, hi)]
        else:
            partitions = [Partition("gsi1", f"MSGS#T#{esc(t)}", lo, hi) for t in q.thread_ids]

        def expr() -> Expr:
            e = self.expr("message")
            if q.thread_ids is not None and q.resource_id is not None:
                e.equals("r", q.resource_id)
            e.map_equals("meta", q.metadata)
            return e

        try:
            found = await self.page(partitions, expr, q.win, forward=q.direction == "ASC", count=q.include_total)
            page = await self._messages(found.items)
        except BaseException:
            included_task.cancel()  # never left running (or its failure unretrieved) when the page fails
            raise
        return MessagePage(page, found.total, await included_task, found.peeked)

    async def _included(self, includes: list[IncludeContext], resource_id: str | None) -> list[Message]:
        """Each include's target plus up to N older and M newer messages of the target's own thread
        (inside ``resource_id`` when given): a GetItem and two bounded Queries per include."""
        if not includes:
            return []
        targets = {
            item["pk"]["S"]: item
            for item in await self.conn.batch_get([_key(*message_key(inc.id)) for inc in includes])
            if not expired(item, self.ttl_name("message"))
        }

        def expr() -> Expr:
            e = self.expr("message")
            if resource_id:
                e.equals("r", resource_id)
            return e

        async def around(inc: IncludeContext) -> list[Item]:
            target = targets.get(message_key(inc.id)[0])
            if target is None or (resource_id and target["r"]["S"] != resource_id):
                return []
            thread, at = target["gsi1pk"]["S"], target["gsi1sk"]["S"]
            before = await self.conn.query(
                limit=inc.with_previous_messages + 1,
                **Partition("gsi1", thread, hi=at).request(expr(), ScanIndexForward=False),
            )
            after = []
            if inc.with_next_messages > 0:
                after = await self.conn.query(
                    limit=inc.with_next_messages,
                    **Partition("gsi1", thread, lo=at + "\x00").request(expr(), ScanIndexForward=True),
                )
            return before + after

        windows = await gather_all(*(around(inc) for inc in includes))
        return await self._messages([item for found in windows for item in found])

    async def _messages_by_id(self, ids: list[str]) -> list[Message]:
        return [m for m, _ in await self._by_id(ids)]

    async def _by_id(self, ids: Sequence[str]) -> list[tuple[Message, Item]]:
        """The live messages among ``ids`` with their items (one BatchGetItem per 100 ids)."""
        items = [
            i
            for i in await self.conn.batch_get([_key(*message_key(m)) for m in ids])
            if not expired(i, self.ttl_name("message"))
        ]
        return list(zip(await self._messages(items), items, strict=True))

    async def _update_messages(self, updates: list[MessageUpdate], ids: list[str]) -> list[Message]:
        async def attempt() -> list[Message]:
            found = {m.id: (m, i) for m, i in await self._by_id(ids)}
            changed, touched = apply_updates({k: m for k, (m, _) in found.items()}, updates, ids)
            writes = [await self._message_write(msg, found[msg.id][1]) for msg in changed]
            if changed:
                await self._commit(writes, touched, learn=False)
            return changed

        return await optimistic(attempt)

    async def _delete_messages(self, ids: list[str]) -> None:
        items = await self.conn.batch_get([_key(*message_key(m)) for m in ids])
        if not items:
            return
        owners = list(dict.fromkeys(str(m.thread_id) for m in await self._messages(items)))
        await self._commit([Write("delete", [i], i) for i in items], owners)

    async def _clone_thread(self, req: CloneRequest) -> CloneThreadResult:
        found = await self._thread(req.source_thread_id)
        if found is None:
            raise source_not_found(req.source_thread_id)
        lo, hi = time_bounds(req.start, req.end)
        thread_pk = f"MSGS#T#{esc(req.source_thread_id)}"
        if req.message_ids is not None:  # the picked messages, kept if they belong to the thread and the range
            picked = [
                (i["gsi1sk"]["S"], m)
                for m, i in await self._by_id(list(set(req.message_ids)))
                if i["gsi1pk"]["S"] == thread_pk and (lo is None or i["gsi1sk"]["S"] >= lo)
                and (hi is None or i["gsi1sk"]["S"] <= hi)
            ]  # fmt: skip
            picked.sort(key=lambda p: p[0], reverse=True)
            newest = [m for _, m in picked[: req.message_limit]]
        else:
            part = Partition("gsi1", thread_pk, lo, hi)
            request = part.request(self.expr("message"), ScanIndexForward=False)
            limit = req.message_limit
            newest = [] if part.empty else await self._messages(await self.conn.query(limit=limit, **request))
        thread, copies, id_map = clone_plan(found[0], newest[::-1], req)
        writes = [Write("put", await self._thread_items(thread))]
        writes += [await self._message_write(m) for m in copies]
        try:  # the new thread's put is conditional on its id being free: no separate check
            await self._commit(writes, [], learn=False)
        except ConditionFailed as exc:
            raise thread_exists(req.new_thread_id) from exc
        return CloneThreadResult(thread=thread, cloned_messages=copies, message_id_map=id_map)

    # ------------------------------------------------------------ resources

    async def _resource_items(self, resource: StorageResource) -> list[Item]:
        return await self.items(*resource_key(resource.id), "resource", resource, resource.created_at)

    async def _get_resource(self, resource_id: str) -> StorageResource | None:
        found = await self.read(*resource_key(resource_id), "resource", StorageResource)
        return found[0] if found else None

    async def _save_resource(self, resource: StorageResource) -> None:
        await self.write(await self._resource_items(resource))

    async def _update_resource(
        self, resource_id: str, working_memory: str | None, patch: dict[str, Any] | None
    ) -> StorageResource:
        async def attempt() -> StorageResource:
            found = await self.read(*resource_key(resource_id), "resource", StorageResource)
            current, old = found if found else (None, None)
            res = updated_resource(current, resource_id, working_memory, patch)
            await self.replace(await self._resource_items(res), old)
            return res

        return await optimistic(attempt)
