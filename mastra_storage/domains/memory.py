"""``MemoryStorage``: threads, messages and resources (the contract, checked once for every backend).

A backend subclasses it and implements the ``_hooks`` below with its own queries; each hook gets
arguments already validated and returns plain records, and the public methods here shape results.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from ..core.codec import new_id
from ..core.lifecycle import DomainStore, operation
from ..core.paging import Window, window
from ..core.transfer import RecordKind
from ..core.validate import (
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
from ..errors import ValidationError
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
from .memory_rules import (
    CloneRequest,
    Direction,
    MessagePage,
    MessageQuery,
    check_includes,
    check_messages,
    check_resource_query,
    check_resource_update,
    check_thread_ids,
    check_thread_update,
    check_updates,
    list_result,
)

MetadataFilter = Mapping[str, str | int | float | bool | None]


class MemoryStorage(DomainStore):
    """Threads, messages and resources (users), in Mastra's memory tables.

    Inputs may be the record Structs or mappings with snake_case keys; bad input raises
    ``ValidationError`` before anything is written, a driver failure ``BackendError``.
    """

    domain = "memory"
    # in the order a copy imports them: messages before threads (a message write moves its
    # thread's updated_at; the thread imported after it puts the copied value back)
    record_kinds: ClassVar[dict[str, RecordKind]] = {
        "resources": RecordKind(StorageResource, ("id",)),
        "messages": RecordKind(Message, ("id",)),
        "threads": RecordKind(StorageThread, ("id",)),
    }

    async def _import(self, kind: str, records: list[Any]) -> None:
        if kind == "messages":
            await self._save_messages(records)
        for record in records if kind != "messages" else ():
            await (self._save_thread(record) if kind == "threads" else self._save_resource(record))

    # ------------------------------------------------------------ threads

    @operation
    async def get_thread_by_id(self, *, thread_id: str, resource_id: str | None = None) -> StorageThread | None:
        """The thread ``thread_id``, or None. A given ``resource_id`` (even ``""``) must match it too."""
        require_id(thread_id, "thread_id")
        return await self._get_thread(thread_id, optional_text(resource_id, "resource_id"))

    @operation
    async def save_thread(self, *, thread: StorageThread | Mapping[str, Any]) -> StorageThread:
        """Inserts or replaces the thread (upsert by id) and returns it."""
        record = coerce(StorageThread, thread, "thread")
        require_id(record.id, "thread.id")
        require_id(record.resource_id, "thread.resource_id")
        await self._save_thread(record)
        return record

    @operation
    async def update_thread(
        self, *, id: str, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageThread:
        """Replaces the title when given, merges ``metadata`` shallowly into the stored one and moves
        ``updated_at`` strictly later; atomic. A missing thread is ``NotFoundError``."""
        patch = check_thread_update(id, title, metadata)
        return await self._update_thread(id, title, patch)

    @operation
    async def delete_thread(self, *, thread_id: str) -> None:
        """Deletes the thread and every message in it; a missing thread is a no-op."""
        require_id(thread_id, "thread_id")
        await self._delete_thread(thread_id)

    @operation
    async def list_threads(
        self,
        *,
        resource_id: str | None = None,
        metadata: MetadataFilter | None = None,
        page: int = 0,
        per_page: PerPage = 100,
        order_by: Literal["created_at", "updated_at"] = "created_at",
        direction: Direction = "DESC",
    ) -> ListThreadsResult:
        """One page of threads (of ``resource_id`` when given) whose metadata has every key/value of
        ``metadata``, ordered by ``order_by`` then id; ``per_page=False`` returns them all."""
        win = window(page, per_page)
        column, dir_ = check_timestamp_order(order_by, direction)
        filters = check_scalar_filter(metadata)
        owner = optional_text(resource_id, "resource_id")
        threads, total = await self._thread_page(owner, filters, win, column, dir_)
        return ListThreadsResult(threads=threads, **win.page_fields(total))

    # ------------------------------------------------------------ messages

    @operation
    async def save_messages(self, *, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        """Upserts the messages all or nothing (a re-saved id keeps its first ``created_at``) and moves
        each touched thread's ``updated_at`` on. Every message needs a thread and a resource id."""
        return await self._save_new_messages(messages)

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
        metadata: MetadataFilter | None = None,
        direction: Direction = "ASC",
        include_total: bool = True,
    ) -> ListMessagesResult:
        """One page of the messages of ``thread_id`` (one id or several), oldest first by default,
        within ``date_range`` and matching ``content.metadata`` equality filters, merged with each
        ``include`` window (the message plus N older and M newer of its own thread).

        ``include_total=False`` skips the count: ``total`` is then what was seen so far and
        ``has_more`` comes from reading one row past the page.
        """
        thread_ids = list(dict.fromkeys(check_thread_ids(thread_id)))
        query = self._message_query(
            thread_ids, optional_text(resource_id, "resource_id"), include, page, per_page,
            date_range, metadata, direction, include_total,
        )  # fmt: skip
        return await self._list_messages(query)

    @operation
    async def list_messages_by_resource_id(
        self,
        *,
        resource_id: str,
        include: Sequence[IncludeContext | Mapping[str, Any]] = (),
        page: int = 0,
        per_page: PerPage = 40,
        date_range: DateRange | Mapping[str, Any] | None = None,
        metadata: MetadataFilter | None = None,
        direction: Direction = "ASC",
        include_total: bool = True,
    ) -> ListMessagesResult:
        """As ``list_messages``, over every thread of ``resource_id``."""
        owner = check_resource_query(resource_id)
        query = self._message_query(
            None, owner, include, page, per_page, date_range, metadata, direction, include_total
        )
        return await self._list_messages(query)

    @staticmethod
    def _message_query(
        thread_ids: list[str] | None,
        resource_id: str | None,
        include: object,
        page: int,
        per_page: PerPage,
        date_range: object,
        metadata: object,
        direction: str,
        include_total: bool,
    ) -> MessageQuery:
        win = window(page, per_page)
        dir_ = check_direction(direction)
        rng = check_date_range(date_range)
        filters = check_scalar_filter(metadata)  # type: ignore[arg-type]  # checked there
        includes = check_includes(include)
        if not isinstance(include_total, bool):
            raise ValidationError(f"include_total must be a bool, got {include_total!r}")
        return MessageQuery(
            thread_ids, resource_id, includes, win, "ASC" if dir_ == "ASC" else "DESC", rng, filters, include_total
        )

    async def _list_messages(self, q: MessageQuery) -> ListMessagesResult:
        found = await self._message_page(q)
        if q.win.limit == 0:
            return list_result([], found.included, q.direction, q.win, total=0, filtered=True)
        if found.total is None:
            limit = q.win.limit
            peeked = found.peeked or (limit is not None and len(found.messages) > limit)
            page_msgs = found.messages[:limit] if limit is not None else found.messages
            return list_result(page_msgs, found.included, q.direction, q.win, total=None, peeked=peeked)
        return list_result(
            found.messages,
            found.included,
            q.direction,
            q.win,
            total=found.total,
            filtered=bool(q.metadata),
            in_base=q.in_base,
        )

    @operation
    async def list_messages_by_id(self, *, message_ids: Sequence[str]) -> list[Message]:
        """The messages among ``message_ids`` that exist, by ``created_at`` then id."""
        ids = list(dict.fromkeys(require_ids(message_ids, "message_ids")))
        if not ids:
            return []
        found = await self._messages_by_id(ids)
        found.sort(key=lambda m: (m.created_at, m.id))
        return found

    @operation
    async def update_messages(self, *, messages: Sequence[MessageUpdate | Mapping[str, Any]]) -> list[Message]:
        """Applies each update to its message atomically (``content`` and ``content.metadata`` merge
        one level deep, other given fields replace), moves the touched threads' ``updated_at`` on and
        returns the updated messages (ids that do not exist are skipped)."""
        updates = check_updates(messages)
        if not updates:
            return []
        return await self._update_messages(updates, list(dict.fromkeys(u.id for u in updates)))

    @operation
    async def delete_messages(self, *, message_ids: Sequence[str]) -> None:
        """Deletes the messages (missing ids are skipped) and moves their threads' ``updated_at`` on."""
        ids = list(dict.fromkeys(require_ids(message_ids, "message_ids")))
        if ids:
            await self._delete_messages(ids)

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
        """Copies a thread and (some of) its messages under new ids, atomically.

        ``message_ids``, ``start_date``/``end_date`` pick messages; ``message_limit`` keeps the newest
        N of those. The copy records its source in ``metadata.clone``. A missing source is
        ``NotFoundError`` (SOURCE_NOT_FOUND); an existing ``new_thread_id`` ``ConflictError``.
        """
        require_id(source_thread_id, "source_thread_id")
        target_id = require_id(new_thread_id, "new_thread_id") if new_thread_id is not None else new_id()
        if resource_id is not None:
            require_id(resource_id, "resource_id")
        extra = check_mapping(metadata, "metadata") if metadata is not None else {}
        if message_limit is not None and (
            isinstance(message_limit, bool) or not isinstance(message_limit, int) or message_limit < 0
        ):
            raise ValidationError(f"message_limit must be a non-negative integer, got {message_limit!r}")
        only_ids = require_ids(message_ids, "message_ids") if message_ids is not None else None
        start, end = check_datetime(start_date, "start_date"), check_datetime(end_date, "end_date")
        return await self._clone_thread(
            CloneRequest(source_thread_id, target_id, resource_id, title, extra, message_limit, only_ids, start, end)
        )

    # ------------------------------------------------------------ resources

    @operation
    async def get_resource_by_id(self, *, resource_id: str) -> StorageResource | None:
        """The resource (user) ``resource_id`` with its working memory, or None."""
        require_id(resource_id, "resource_id")
        return await self._get_resource(resource_id)

    @operation
    async def save_resource(self, *, resource: StorageResource | Mapping[str, Any]) -> StorageResource:
        """Inserts or replaces the resource (upsert by id) and returns it."""
        record = coerce(StorageResource, resource, "resource")
        require_id(record.id, "resource.id")
        await self._save_resource(record)
        return record

    @operation
    async def update_resource(
        self,
        *,
        resource_id: str,
        working_memory: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StorageResource:
        """Replaces the working memory when given and merges ``metadata`` shallowly, atomically;
        creates the resource if it does not exist."""
        patch = check_resource_update(resource_id, working_memory, metadata)
        return await self._update_resource(resource_id, working_memory, patch)

    # ------------------------------------------------------------ what a backend writes

    @abc.abstractmethod
    async def _get_thread(self, thread_id: str, resource_id: str | None) -> StorageThread | None: ...
    @abc.abstractmethod
    async def _save_thread(self, thread: StorageThread) -> None: ...
    @abc.abstractmethod
    async def _update_thread(self, id: str, title: str | None, patch: dict[str, Any] | None) -> StorageThread:
        """Raises ``thread_not_found(id)`` when the thread is missing."""

    @abc.abstractmethod
    async def _delete_thread(self, thread_id: str) -> None: ...
    @abc.abstractmethod
    async def _thread_page(
        self, resource_id: str | None, metadata: dict[str, Any], win: Window, column: str, direction: str
    ) -> tuple[list[StorageThread], int]:
        """One page of threads ordered by ``column`` (a camelCase column name) then id, and the total."""

    async def _save_new_messages(self, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        """Validates a batch and saves it (a backend may validate in its own layout, same rules:
        ``check_messages``, ``check_messages_json``); returns the records saved."""
        records = check_messages(messages)
        if records:
            await self._save_messages(records)
        return records

    @abc.abstractmethod
    async def _save_messages(self, messages: list[Message]) -> None:
        """Upserts (the last of repeated ids wins) and bumps the threads, all or nothing."""

    @abc.abstractmethod
    async def _message_page(self, q: MessageQuery) -> MessagePage:
        """The page (none when ``q.win.limit == 0``), its total unless skipped, and the includes."""

    @abc.abstractmethod
    async def _messages_by_id(self, ids: list[str]) -> list[Message]: ...
    @abc.abstractmethod
    async def _update_messages(self, updates: list[MessageUpdate], ids: list[str]) -> list[Message]:
        """Reads ``ids``, applies ``apply_updates`` and writes the result back, atomically."""

    @abc.abstractmethod
    async def _delete_messages(self, ids: list[str]) -> None: ...
    @abc.abstractmethod
    async def _clone_thread(self, req: CloneRequest) -> CloneThreadResult:
        """Reads the source and its picked messages, writes ``clone_plan`` of them, atomically."""

    @abc.abstractmethod
    async def _get_resource(self, resource_id: str) -> StorageResource | None: ...
    @abc.abstractmethod
    async def _save_resource(self, resource: StorageResource) -> None: ...
    @abc.abstractmethod
    async def _update_resource(
        self, resource_id: str, working_memory: str | None, patch: dict[str, Any] | None
    ) -> StorageResource: ...
