"""Memory on DynamoDB: threads, messages and resources in the single table (docs/dynamodb.md §2)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._base import operation
from .._codec import ONE_MS, from_iso, iso, new_id, utc_now
from .._memory_rules import (
    apply_thread_update,
    apply_update,
    check_includes,
    check_messages,
    check_resource_query,
    check_resource_update,
    check_thread_ids,
    check_thread_update,
    check_updates,
    clone_plan,
    in_range,
    list_result,
    updated_resource,
)
from .._sql.pagination import window
from .._validate import (
    check_date_range,
    check_datetime,
    check_direction,
    check_mapping,
    check_scalar_filter,
    check_timestamp_order,
    coerce,
    optional_text,
    require_id,
    require_ids,
)
from ..errors import ConflictError, NotFoundError, ValidationError
from ..types import (
    CloneThreadResult,
    DateRange,
    IncludeContext,
    ListMessagesResult,
    ListThreadsResult,
    Message,
    MessageUpdate,
    PerPage,
    StorageResource,
    StorageThread,
)
from .base import DynamoDomain, Partition, optimistic, put, read_page, upsert, versioned
from .connection import ConditionFailed, Item, gather_all
from .items import Expr, esc, expired, s, scalar_map, time_bounds, when, with_parts

TX_ACTIONS = 100  # TransactWriteItems' limit
TX_BYTES = 3_500_000  # under its 4 MB limit, leaving room for keys and expressions


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


def _size(action: Item) -> int:
    """About what an action adds to a transaction's 4 MB: its payload bytes (a Put's item or an
    Update's values) plus a generous allowance for keys and the other attributes."""
    body = next(iter(action.values()))
    values = [*body.get("Item", {}).values(), *body.get("ExpressionAttributeValues", {}).values()]
    return sum(len(v["B"]) for v in values if "B" in v) + 1024


class MemoryDynamoDB(DynamoDomain):
    """Threads, messages and resources on DynamoDB: no Scan on any list, messages saved in
    transactions, read-modify-writes guarded by a version attribute."""

    domain: ClassVar[str] = "memory"
    entities: ClassVar[tuple[str, ...]] = ("thread", "message", "resource")
    retention_entities: ClassVar[dict[str, str]] = {
        "messages": "message",
        "resources": "resource",
        "threads": "thread",
    }

    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] | None = None  # per thread id, while in use

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

    @operation
    async def get_thread_by_id(self, *, thread_id: str, resource_id: str | None = None) -> StorageThread | None:
        require_id(thread_id, "thread_id")
        optional_text(resource_id, "resource_id")
        found = await self._thread(thread_id)
        if found is None or (resource_id is not None and found[0].resource_id != resource_id):
            return None
        return found[0]

    @operation
    async def save_thread(self, *, thread: StorageThread | Mapping[str, Any]) -> StorageThread:
        record = coerce(StorageThread, thread, "thread")
        require_id(record.id, "thread.id")
        require_id(record.resource_id, "thread.resource_id")
        items = await self._thread_items(record)
        await self.write(items)
        return record

    @operation
    async def update_thread(
        self, *, id: str, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageThread:
        patch = check_thread_update(id, title, metadata)

        async def attempt() -> StorageThread:
            found = await self._thread(id)
            if found is None:
                raise NotFoundError(f"Thread {id} not found", details={"status": 404, "threadId": id})
            thread, old = found
            apply_thread_update(thread, title, patch)
            actions = versioned(await self._thread_items(thread), old)
            # A message write may have bumped ``u`` without touching the version: check it too.
            actions[0]["Put"]["ConditionExpression"] += " AND u = :u"
            actions[0]["Put"].setdefault("ExpressionAttributeValues", {})[":u"] = old["u"]
            await self.conn.transact(actions)
            return thread

        return await optimistic(attempt)

    @operation
    async def delete_thread(self, *, thread_id: str) -> None:
        require_id(thread_id, "thread_id")
        messages = await self.conn.query(
            **Partition("gsi1", f"MSGS#T#{esc(thread_id)}").request(Expr(), ProjectionExpression="pk, sk, n")
        )
        found = await self.conn.get(_key(*thread_key(thread_id)))
        # Messages first: if this stops half way, the thread is still there to delete again.
        await self.conn.batch_write(deletes=with_parts(messages))
        if found is not None:
            await self.conn.batch_write(deletes=with_parts([found]))

    @operation
    async def list_threads(
        self,
        *,
        resource_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        page: int = 0,
        per_page: PerPage = 100,
        order_by: str = "created_at",
        direction: str = "DESC",
    ) -> ListThreadsResult:
        win = window(page, per_page)
        column, dir_ = check_timestamp_order(order_by, direction)
        filters = check_scalar_filter(metadata)
        by_updated = column == "updatedAt"
        if (owner := optional_text(resource_id, "resource_id")) is not None:
            part = Partition("gsi2" if by_updated else "gsi1", f"THREADS#R#{esc(owner)}")
        else:
            part = Partition("gsi4" if by_updated else "gsi3", "THREADS")

        def expr() -> Expr:
            e = self.expr("thread")
            e.map_equals("meta", filters)
            return e

        found = await read_page(self.conn, [part], expr, win, forward=dir_ == "ASC")
        total = found.total or 0
        return ListThreadsResult(
            threads=await self.decode(found.items, StorageThread, _thread_kept),
            **win.page_fields(total),
        )

    # ------------------------------------------------------------ messages

    async def _message_action(self, message: Message) -> list[Item]:
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
        return upsert(main, parts, once)

    def _bump(self, thread_id: str, moment: datetime) -> Item:
        """Sets a thread's ``updatedAt`` to ``moment`` if that is later — never backwards, never
        creating a thread that does not exist."""
        pk, sk = thread_key(thread_id)
        stamp = f"{when(moment)}#{esc(thread_id)}"
        return {
            "Update": {
                "Key": _key(pk, sk),
                "UpdateExpression": "SET u = :u, gsi2sk = :k, gsi4sk = :k",
                "ConditionExpression": "attribute_exists(pk) AND u < :u",
                "ExpressionAttributeValues": {":u": s(iso(moment)), ":k": s(stamp)},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    async def _commit(self, records: list[list[Item]], threads: Sequence[str]) -> None:
        """The actions of ``records`` (each record's together) plus a bump of every thread in
        ``threads``, in as few transactions as the service limits allow (one for up to ~100 items /
        3.5 MB; the bumps ride with the last). A bump whose thread is missing is dropped; one whose
        thread is already at this millisecond moves a millisecond on."""
        owners = list(dict.fromkeys(threads))
        chunks: list[list[Item]] = [[]]
        size = 0
        for record in records:
            grow = sum(_size(a) for a in record)
            if chunks[-1] and (len(chunks[-1]) + len(record) + len(owners) > TX_ACTIONS or size + grow > TX_BYTES):
                chunks.append([])
                size = 0
            chunks[-1].extend(record)
            size += grow
        for chunk in chunks[:-1]:
            await self.conn.transact(chunk)
        async with contextlib.AsyncExitStack() as held:
            # Writers of one thread in this process take turns: transactions touching the same item
            # conflict, and queueing costs far less than the service's conflict-and-retry.
            for owner in sorted(owners):
                await held.enter_async_context(self._thread_lock(owner))
            await self._commit_last(chunks[-1], owners)

    def _thread_lock(self, thread_id: str) -> asyncio.Lock:
        if self._locks is None:
            self._locks = weakref.WeakValueDictionary()
        lock = self._locks.get(thread_id)
        if lock is None:
            lock = self._locks[thread_id] = asyncio.Lock()
        return lock

    async def _commit_last(self, last: list[Item], owners: list[str]) -> None:
        moments = {t: utc_now() for t in owners}
        while last or moments:
            try:
                await self.conn.transact([*last, *(self._bump(t, m) for t, m in moments.items())])
                return
            except ConditionFailed as failed:
                if any(r.get("Code") == "ConditionalCheckFailed" for r in failed.reasons[: len(last)]):
                    raise
                for reason, thread in zip(failed.reasons[len(last) :], list(moments), strict=True):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        old = reason.get("Item")
                        if old:
                            moments[thread] = max(moments[thread], from_iso(old["u"]["S"]) + ONE_MS)
                        else:
                            del moments[thread]

    @operation
    async def save_messages(self, *, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        records = check_messages(messages)
        if not records:
            return []
        latest = list({m.id: m for m in records}.values())  # one item per id: the last one given wins
        await self._commit([await self._message_action(m) for m in latest], [str(m.thread_id) for m in latest])
        return records

    async def _messages(self, items: list[Item]) -> list[Message]:
        return await self.decode(items, Message, _message_kept)

    @operation
    async def list_messages(
        self,
        *,
        thread_id: str | Sequence[str],
        resource_id: str | None = None,
        include: Sequence[IncludeContext | Mapping[str, Any]] = (),
        page: int = 0,
        per_page: PerPage = 40,
        date_range: DateRange | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        direction: str = "ASC",
        include_total: bool = True,
    ) -> ListMessagesResult:
        thread_ids = list(dict.fromkeys(check_thread_ids(thread_id)))
        wanted = set(thread_ids)
        return await self._list(
            "gsi1",
            [f"MSGS#T#{esc(t)}" for t in thread_ids],
            lambda m: m.thread_id in wanted and (resource_id is None or m.resource_id == resource_id),
            resource_id,
            include,
            page,
            per_page,
            date_range,
            metadata,
            direction,
            include_total,
        )

    @operation
    async def list_messages_by_resource_id(
        self,
        *,
        resource_id: str,
        include: Sequence[IncludeContext | Mapping[str, Any]] = (),
        page: int = 0,
        per_page: PerPage = 40,
        date_range: DateRange | Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        direction: str = "ASC",
        include_total: bool = True,
    ) -> ListMessagesResult:
        check_resource_query(resource_id)
        return await self._list(
            "gsi2",
            [f"MSGS#R#{esc(resource_id)}"],
            lambda m: m.resource_id == resource_id,
            None,
            include,
            page,
            per_page,
            date_range,
            metadata,
            direction,
            include_total,
            scope=resource_id,
        )

    async def _list(
        self,
        index: str,
        partition_keys: list[str],
        in_base: Any,
        resource_id: str | None,
        include: Sequence[IncludeContext | Mapping[str, Any]],
        page: int,
        per_page: PerPage,
        date_range_: DateRange | Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        direction: str,
        include_total: bool,
        scope: str | None = None,
    ) -> ListMessagesResult:
        win = window(page, per_page)
        dir_ = check_direction(direction)
        rng = check_date_range(date_range_)
        filters = check_scalar_filter(metadata)
        includes = check_includes(include)
        lo, hi = time_bounds(*(rng.start, rng.end, rng.start_exclusive, rng.end_exclusive) if rng else (None, None))

        def expr() -> Expr:
            e = self.expr("message")
            if (owner := optional_text(resource_id, "resource_id")) is not None:
                e.equals("r", owner)
            e.map_equals("meta", filters)
            return e

        included_task = asyncio.ensure_future(self._included(includes, resource_id or scope))
        if win.limit == 0:
            return list_result([], await included_task, dir_, win, total=0, filtered=True)
        partitions = [Partition(index, pk, lo, hi) for pk in partition_keys]
        found = await read_page(self.conn, partitions, expr, win, forward=dir_ == "ASC", count=include_total)
        page_msgs = await self._messages(found.items)
        included = await included_task
        if found.total is None:
            return list_result(page_msgs, included, dir_, win, total=None, peeked=found.peeked)
        return list_result(
            page_msgs,
            included,
            dir_,
            win,
            total=found.total,
            filtered=bool(filters),
            in_base=lambda m: in_base(m) and in_range(m.created_at, rng),
        )

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

    @operation
    async def list_messages_by_id(self, *, message_ids: Sequence[str]) -> list[Message]:
        ids = require_ids(message_ids, "message_ids")
        if not ids:
            return []
        messages = [m for m, _ in await self._by_id(ids)]
        messages.sort(key=lambda m: (m.created_at, m.id))
        return messages

    async def _by_id(self, ids: Sequence[str]) -> list[tuple[Message, Item]]:
        """The live messages among ``ids`` with their items (one BatchGetItem per 100 ids)."""
        items = [
            i
            for i in await self.conn.batch_get([_key(*message_key(m)) for m in ids])
            if not expired(i, self.ttl_name("message"))
        ]
        return list(zip(await self._messages(items), items, strict=True))

    @operation
    async def update_messages(self, *, messages: Sequence[MessageUpdate | Mapping[str, Any]]) -> list[Message]:
        updates = check_updates(messages)
        if not updates:
            return []
        ids = list(dict.fromkeys(u.id for u in updates))

        async def attempt() -> list[Message]:
            current = {m.id: (m, i) for m, i in await self._by_id(ids)}
            touched: dict[str, None] = {}
            for u in updates:
                if u.id in current:
                    msg = current[u.id][0]
                    touched[str(msg.thread_id)] = None
                    apply_update(msg, u)
                    touched[str(msg.thread_id)] = None
            actions: list[list[Item]] = []
            changed = [current[i][0] for i in ids if i in current]
            for msg in changed:
                action, *parts = await self._message_action(msg)
                old = current[msg.id][1]
                action["Update"]["ConditionExpression"] = "v = :old_v"
                action["Update"]["ExpressionAttributeValues"][":old_v"] = old["v"]
                actions.append([action, *parts])
            if changed:
                await self._commit(actions, list(touched))
            return changed

        return await optimistic(attempt)

    @operation
    async def delete_messages(self, *, message_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(require_ids(message_ids, "message_ids")))
        if not ids:
            return
        items = await self.conn.batch_get([_key(*message_key(m)) for m in ids])
        if not items:
            return
        owners = list(dict.fromkeys(str(m.thread_id) for m in await self._messages(items)))
        await self.conn.batch_write(deletes=with_parts(items))
        await self._commit([], owners)

    @operation
    async def clone_thread(
        self,
        *,
        source_thread_id: str,
        new_thread_id: str | None = None,
        resource_id: str | None = None,
        title: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        message_limit: int | None = None,
        message_ids: Sequence[str] | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> CloneThreadResult:
        require_id(source_thread_id, "source_thread_id")
        target_id = require_id(new_thread_id, "new_thread_id") if new_thread_id is not None else new_id()
        if resource_id is not None:
            require_id(resource_id, "resource_id")
        extra = check_mapping(metadata, "metadata") if metadata is not None else {}
        if message_limit is not None and (
            isinstance(message_limit, bool) or not isinstance(message_limit, int) or message_limit < 0
        ):
            raise ValidationError(f"message_limit must be a non-negative integer, got {message_limit!r}")
        only_ids = set(require_ids(message_ids, "message_ids")) if message_ids is not None else None
        start, end = check_datetime(start_date, "start_date"), check_datetime(end_date, "end_date")
        found = await self._thread(source_thread_id)
        if found is None:
            raise NotFoundError(f"Source thread with id {source_thread_id} not found", status="SOURCE_NOT_FOUND")

        lo, hi = time_bounds(start, end)
        thread_pk = f"MSGS#T#{esc(source_thread_id)}"
        if only_ids is not None:  # the picked messages, kept if they belong to the thread and the range
            picked = [
                (i["gsi1sk"]["S"], m)
                for m, i in await self._by_id(list(only_ids))
                if i["gsi1pk"]["S"] == thread_pk and (lo is None or i["gsi1sk"]["S"] >= lo)
                and (hi is None or i["gsi1sk"]["S"] <= hi)
            ]  # fmt: skip
            picked.sort(key=lambda p: p[0], reverse=True)
            newest = [m for _, m in picked[:message_limit]]
        else:
            part = Partition("gsi1", thread_pk, lo, hi)
            request = part.request(self.expr("message"), ScanIndexForward=False)
            newest = [] if part.empty else await self._messages(await self.conn.query(limit=message_limit, **request))
        originals = newest[::-1]
        thread, copies, id_map = clone_plan(
            found[0], originals, new_thread_id=target_id, resource_id=resource_id, title=title, metadata=extra
        )
        thread_items = await self._thread_items(thread)
        actions = [[put(thread_items[0], "attribute_not_exists(pk)"), *(put(p) for p in thread_items[1:])]]
        actions += [await self._message_action(m) for m in copies]
        try:  # the new thread's put is conditional on its id being free: no separate check
            await self._commit(actions, [])
        except ConditionFailed as exc:
            raise ConflictError(f"Thread with id {target_id} already exists", status="THREAD_EXISTS") from exc
        return CloneThreadResult(thread=thread, cloned_messages=copies, message_id_map=id_map)

    # ------------------------------------------------------------ resources

    async def _resource_items(self, resource: StorageResource) -> list[Item]:
        return await self.items(*resource_key(resource.id), "resource", resource, resource.created_at)

    @operation
    async def get_resource_by_id(self, *, resource_id: str) -> StorageResource | None:
        require_id(resource_id, "resource_id")
        found = await self.read(*resource_key(resource_id), "resource", StorageResource)
        return found[0] if found else None

    @operation
    async def save_resource(self, *, resource: StorageResource | Mapping[str, Any]) -> StorageResource:
        record = coerce(StorageResource, resource, "resource")
        require_id(record.id, "resource.id")
        items = await self._resource_items(record)
        await self.write(items)
        return record

    @operation
    async def update_resource(
        self, *, resource_id: str, working_memory: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageResource:
        patch = check_resource_update(resource_id, working_memory, metadata)

        async def attempt() -> StorageResource:
            found = await self.read(*resource_key(resource_id), "resource", StorageResource)
            current, old = found if found else (None, None)
            res = updated_resource(current, resource_id, working_memory, patch)
            await self.conn.transact(versioned(await self._resource_items(res), old))
            return res

        return await optimistic(attempt)
