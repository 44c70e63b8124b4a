"""Memory rules every backend applies the same way: input checks, merges, clone plans, list results.

The backends write their own queries; what a message list, an update or a clone *means* lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from ..core.codec import iso, later_than, new_id, utc_now
from ..core.paging import Window
from ..core.validate import check_mapping, coerce, coerce_many, coerce_many_json, require_id, require_ids
from ..errors import ConflictError, NotFoundError, ValidationError
from ..types import (
    DateRange,
    IncludeContext,
    ListMessagesResult,
    Message,
    MessageUpdate,
    StorageResource,
    StorageThread,
)

Direction = Literal["ASC", "DESC"]


@dataclass(frozen=True)
class MessageQuery:
    """A validated message list: ``thread_ids`` None means every thread of ``resource_id``."""

    thread_ids: list[str] | None
    resource_id: str | None
    includes: list[IncludeContext]
    win: Window
    direction: Direction
    date_range: DateRange | None
    metadata: dict[str, Any]
    include_total: bool

    def in_base(self, message: Message) -> bool:
        """Whether ``message`` belongs to the listed set before the page and metadata filter."""
        return (
            (self.thread_ids is None or message.thread_id in self.thread_ids)
            and (self.resource_id is None or message.resource_id == self.resource_id)
            and in_range(message.created_at, self.date_range)
        )

    @property
    def fetch_limit(self) -> int | None:
        """Rows to read for the page: one more than the page when the total is skipped (the peek)."""
        if self.win.limit is None:
            return None
        return self.win.limit if self.include_total else self.win.limit + 1


@dataclass
class MessagePage:
    """What a backend read for a message list: the page (``fetch_limit`` rows at most), its total
    (None when skipped), the include windows, and whether a row past the page exists."""

    messages: list[Message]
    total: int | None
    included: list[Message]
    peeked: bool = False


@dataclass(frozen=True)
class CloneRequest:
    """A validated ``clone_thread``: which messages of the source to copy, and to where."""

    source_thread_id: str
    new_thread_id: str
    resource_id: str | None
    title: str | None
    metadata: dict[str, Any]
    message_limit: int | None
    message_ids: list[str] | None
    start: datetime | None
    end: datetime | None


CHUNK = 500  # ids per IN (...) list, well under every backend's bound-parameter limit


def chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def check_thread_ids(thread_id: object) -> list[str]:
    ids = [thread_id] if isinstance(thread_id, str) else thread_id
    if not isinstance(ids, list | tuple) or not ids or not all(isinstance(t, str) and t.strip() for t in ids):
        raise ValidationError(
            "threadId must be a non-empty string or array of non-empty strings",
            status="INVALID_THREAD_ID",
            details={"threadId": repr(thread_id)},
        )
    return [str(t) for t in ids]


def check_resource_query(resource_id: object) -> str:
    if not isinstance(resource_id, str) or not resource_id.strip():
        raise ValidationError("resourceId must be a non-empty string", status="INVALID_QUERY")
    return resource_id


def _sequence(value: object, what: str) -> Sequence[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(f"{what} must be a sequence")
    return value


def check_messages(messages: object) -> list[Message]:
    """Every message of a batch validated before any is written: a bad one rejects the batch."""
    return _check_messages(coerce_many(Message, _sequence(messages, "messages"), "message"))


def check_messages_json(messages: object) -> tuple[list[Message], bytes]:
    """``check_messages``, with the batch as JSON (see ``coerce_many_json``): for a backend that
    writes that text."""
    records, text = coerce_many_json(Message, _sequence(messages, "messages"), "message")
    return _check_messages(records), text


def _check_messages(records: list[Message]) -> list[Message]:
    require_ids([m.id for m in records], "message.id")
    for m in records:
        if not isinstance(m.thread_id, str) or not m.thread_id.strip():
            raise ValidationError(f"Expected to find a threadId for message {m.id!r}", details={"messageId": m.id})
        if not isinstance(m.resource_id, str) or not m.resource_id.strip():
            raise ValidationError(f"Expected to find a resourceId for message {m.id!r}", details={"messageId": m.id})
    return records


def check_includes(include: object) -> list[IncludeContext]:
    includes = [coerce(IncludeContext, inc, "include") for inc in _sequence(include, "include")]
    for inc in includes:
        require_id(inc.id, "include.id")
        if inc.with_previous_messages < 0 or inc.with_next_messages < 0:
            raise ValidationError("include window sizes must be >= 0")
    return includes


def check_updates(messages: object) -> list[MessageUpdate]:
    updates = [coerce(MessageUpdate, m, "message update") for m in _sequence(messages, "messages")]
    for u in updates:
        require_id(u.id, "message.id")
        for name in ("thread_id", "resource_id", "role", "type"):
            value = getattr(u, name)
            if value is not None and not value.strip():
                raise ValidationError(f"message {u.id!r}: {name} must not be empty")
    return updates


def apply_update(message: Message, update: MessageUpdate) -> None:
    """Content merges one level deep (and ``content.metadata`` one more); other given fields replace."""
    if update.content is not None:
        merged = {**message.content, **update.content}
        old_meta, new_meta = message.content.get("metadata"), update.content.get("metadata")
        if isinstance(old_meta, dict) and isinstance(new_meta, dict):
            merged["metadata"] = {**old_meta, **new_meta}
        message.content = merged
    for name in ("role", "type", "thread_id", "resource_id"):
        if getattr(update, name) is not None:
            setattr(message, name, getattr(update, name))


def apply_updates(
    current: Mapping[str, Message], updates: Sequence[MessageUpdate], ids: Sequence[str]
) -> tuple[list[Message], list[str]]:
    """Applies ``updates`` in order to the ``current`` messages they name (missing ids are skipped):
    the changed messages in ``ids`` order, and every thread they were in or moved to."""
    touched: dict[str, None] = {}
    for update in updates:
        message = current.get(update.id)
        if message is None:
            continue
        touched[str(message.thread_id)] = None
        apply_update(message, update)
        touched[str(message.thread_id)] = None
    return [current[i] for i in ids if i in current], list(touched)


def thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"Thread {thread_id} not found", details={"status": 404, "threadId": thread_id})


def source_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f"Source thread with id {thread_id} not found", status="SOURCE_NOT_FOUND")


def thread_exists(thread_id: str) -> ConflictError:
    return ConflictError(f"Thread with id {thread_id} already exists", status="THREAD_EXISTS")


def in_range(created: datetime, rng: DateRange | None) -> bool:
    if rng is None:
        return True
    if rng.start is not None and (created <= rng.start if rng.start_exclusive else created < rng.start):
        return False
    return not (rng.end is not None and (created >= rng.end if rng.end_exclusive else created > rng.end))


def list_result(
    page: list[Message],
    included: list[Message],
    direction: str,
    win: Window,
    *,
    total: int | None,
    peeked: bool = False,
    filtered: bool = False,
    in_base: Callable[[Message], bool] = lambda m: False,
) -> ListMessagesResult:
    """Merges a page with its include windows (deduplicated, in the requested order) and works out
    ``has_more`` as Mastra does. ``total=None`` means the count was skipped and the page was read
    with one extra row (``peeked`` says whether it came)."""
    if total is None:
        has_more = peeked
        total = win.offset + len(page)
    elif filtered:
        has_more = win.limit is not None and win.offset + len(page) < total
    else:
        returned = {m.id for m in page} | {m.id for m in included if in_base(m)}
        has_more = win.has_more(total) and len(returned) < total
    unique = list({m.id: m for m in page + included}.values())
    unique.sort(key=lambda m: (m.created_at, m.id), reverse=direction == "DESC")
    return ListMessagesResult(messages=unique, total=total, page=win.page, per_page=win.per_page, has_more=has_more)


def clone_plan(
    source: StorageThread, originals: list[Message], req: CloneRequest
) -> tuple[StorageThread, list[Message], dict[str, str]]:
    """The new thread and the message copies (new ids, same content and times) of a clone."""
    now = utc_now()
    clone_info: dict[str, Any] = {"sourceThreadId": source.id, "clonedAt": iso(now)}
    if originals:
        clone_info["lastMessageId"] = originals[-1].id
    title = req.title
    thread = StorageThread(
        id=req.new_thread_id,
        resource_id=req.resource_id or source.resource_id,
        title=title if title is not None else (f"Clone of {source.title}" if source.title else ""),
        metadata={**req.metadata, "clone": clone_info},
        created_at=now,
        updated_at=now,
    )
    id_map = {m.id: new_id() for m in originals}
    copies = [
        Message(
            id=id_map[m.id],
            role=m.role,
            content=m.content,
            created_at=m.created_at,
            thread_id=thread.id,
            resource_id=thread.resource_id,
            type=m.type,
        )
        for m in originals
    ]
    return thread, copies, id_map


def check_thread_update(id: object, title: object, metadata: object) -> dict[str, Any] | None:
    """``update_thread`` input, validated; returns the metadata patch (None: leave metadata alone)."""
    require_id(id, "id")
    if title is not None and not isinstance(title, str):
        raise ValidationError(f"title must be a string, got {type(title).__name__}")
    return check_mapping(metadata, "metadata") if metadata is not None else None


def apply_thread_update(thread: StorageThread, title: str | None, patch: Mapping[str, Any] | None) -> None:
    """A given title replaces, metadata merges shallowly, ``updated_at`` strictly increases."""
    if title is not None:
        thread.title = title
    if patch is not None:
        thread.metadata = {**(thread.metadata or {}), **patch}
    thread.updated_at = later_than(thread.updated_at)


def check_resource_update(resource_id: object, working_memory: object, metadata: object) -> dict[str, Any] | None:
    """``update_resource`` input, validated; returns the metadata patch (None: leave metadata alone)."""
    require_id(resource_id, "resource_id")
    if working_memory is not None and not isinstance(working_memory, str):
        raise ValidationError(f"working_memory must be a string, got {type(working_memory).__name__}")
    return check_mapping(metadata, "metadata") if metadata is not None else None


def updated_resource(
    current: StorageResource | None, resource_id: str, working_memory: str | None, patch: Mapping[str, Any] | None
) -> StorageResource:
    """The resource after ``update_resource``: created if missing, else merged (Mastra's upsert)."""
    if current is None:
        return StorageResource(id=resource_id, working_memory=working_memory, metadata=dict(patch or {}))
    if working_memory is not None:
        current.working_memory = working_memory
    if patch is not None:
        current.metadata = {**(current.metadata or {}), **patch}
    current.updated_at = later_than(current.updated_at)
    return current
