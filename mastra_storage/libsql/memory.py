"""Memory on libSQL: threads, messages and resources in Mastra's ``mastra_threads``,
``mastra_messages`` and ``mastra_resources`` tables."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._base import operation
from .._codec import dumps, iso, new_id, utc_now
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
    chunks,
    clone_plan,
    in_range,
    list_result,
    updated_resource,
)
from .._sql.pagination import window
from .._sql.params import Params, where
from .._sql.schema import MESSAGES, RESOURCES, THREADS
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
from .base import LibSQLDomain
from .codec import RowCodec
from .connection import Stmt, Tx
from .sqlfrag import bumped, date_range, json_equals

_CREATED = '"createdAt"'
_UPDATED = '"updatedAt"'


# Mastra's content column is JSON text of a v2 content object; legacy rows hold a JSON string or
# plain text, which reads back wrapped as a v2 text part.
_LEGACY_TEXT = "CASE WHEN json_valid({a}content) THEN json_extract({a}content, '$') ELSE {a}content END"
_CONTENT = (  # JSON text: spliced into the row as it is
    "CASE WHEN typeof({a}content) = 'blob' THEN json({a}content) WHEN {a}content LIKE '{%' THEN {a}content "
    "ELSE json_object('format', 2, 'content', "
    + _LEGACY_TEXT
    + ", 'parts', json_array(json_object('type', 'text', 'text', "
    + _LEGACY_TEXT
    + "))) END"
)


THREAD = RowCodec(StorageThread, THREADS)
MESSAGE = RowCodec(Message, MESSAGES, columns={"thread_id": "thread_id"}, json=("content",), raw={"content": _CONTENT})
RESOURCE = RowCodec(StorageResource, RESOURCES)

_UPSERT_MESSAGE = (
    f"INSERT INTO mastra_messages ({MESSAGE.columns}) VALUES ({MESSAGE.placeholders}) "
    "ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, content = excluded.content, "
    'role = excluded.role, type = excluded.type, "resourceId" = excluded."resourceId"'
)
_UPSERT_THREAD = (
    f"INSERT INTO mastra_threads ({THREAD.columns}) VALUES ({THREAD.placeholders}) "
    'ON CONFLICT (id) DO UPDATE SET "resourceId" = excluded."resourceId", title = excluded.title, '
    'metadata = excluded.metadata, "createdAt" = excluded."createdAt", "updatedAt" = excluded."updatedAt"'
)
_UPSERT_RESOURCE = (
    f"INSERT INTO mastra_resources ({RESOURCE.columns}) VALUES ({RESOURCE.placeholders}) "
    'ON CONFLICT (id) DO UPDATE SET "workingMemory" = excluded."workingMemory", metadata = excluded.metadata, '
    '"createdAt" = excluded."createdAt", "updatedAt" = excluded."updatedAt"'
)


def _bump_threads(thread_ids: Sequence[str]) -> Stmt:
    p = Params()
    now = p(iso(utc_now()))
    return Stmt(
        f'UPDATE mastra_threads SET "updatedAt" = {bumped(_UPDATED, now)} WHERE id IN ({p.many(list(thread_ids))})',
        p.values,
    )


class MemoryLibSQL(LibSQLDomain):
    """Threads, messages and resources on a libSQL/SQLite database."""

    tables = (THREADS, MESSAGES, RESOURCES)
    indexes = (
        'CREATE INDEX IF NOT EXISTS idx_messages_thread_created_at ON mastra_messages (thread_id, "createdAt", id)',
        "CREATE INDEX IF NOT EXISTS idx_messages_thread_resource_created_at "
        'ON mastra_messages (thread_id, "resourceId", "createdAt", id)',
        "CREATE INDEX IF NOT EXISTS idx_messages_resource_created_at "
        'ON mastra_messages ("resourceId", "createdAt", id)',
        'CREATE INDEX IF NOT EXISTS idx_threads_resource_created_at ON mastra_threads ("resourceId", "createdAt", id)',
        'CREATE INDEX IF NOT EXISTS idx_threads_resource_updated_at ON mastra_threads ("resourceId", "updatedAt", id)',
    )
    domain: ClassVar[str] = "memory"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "messages": ("mastra_messages", "createdAt"),
        "resources": ("mastra_resources", "createdAt"),
        "threads": ("mastra_threads", "createdAt"),
    }

    # ------------------------------------------------------------ threads

    @operation
    async def get_thread_by_id(self, *, thread_id: str, resource_id: str | None = None) -> StorageThread | None:
        require_id(thread_id, "thread_id")
        p = Params()
        clauses = [f"id = {p(thread_id)}"]
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        rows = await self.db.query(f"SELECT {THREAD.select} FROM mastra_threads{where(clauses)}", p.values)
        return THREAD.decode(rows[0]) if rows else None

    @operation
    async def save_thread(self, *, thread: StorageThread | Mapping[str, Any]) -> StorageThread:
        record = coerce(StorageThread, thread, "thread")
        require_id(record.id, "thread.id")
        require_id(record.resource_id, "thread.resource_id")
        await self.db.execute(_UPSERT_THREAD, THREAD.params(record))
        return record

    @operation
    async def update_thread(
        self, *, id: str, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageThread:
        patch = check_thread_update(id, title, metadata)

        def body(tx: Tx) -> StorageThread:
            rows = tx.query(f"SELECT {THREAD.select} FROM mastra_threads WHERE id = ?", (id,))
            if not rows:
                raise NotFoundError(f"Thread {id} not found", details={"status": 404, "threadId": id})
            thread = THREAD.decode(rows[0])
            apply_thread_update(thread, title, patch)
            tx.execute(
                'UPDATE mastra_threads SET title = ?, metadata = ?, "updatedAt" = ? WHERE id = ?',
                (thread.title, dumps(thread.metadata), iso(thread.updated_at), id),
            )
            return thread

        return await self.db.transaction(body)

    @operation
    async def delete_thread(self, *, thread_id: str) -> None:
        require_id(thread_id, "thread_id")
        await self.db.batch(
            [
                Stmt("DELETE FROM mastra_messages WHERE thread_id = ?", (thread_id,)),
                Stmt("DELETE FROM mastra_threads WHERE id = ?", (thread_id,)),
            ]
        )

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
        p = Params()
        clauses: list[str] = []
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        clauses += json_equals("metadata", "", filters, p)
        records, total = await self.paged(
            f'SELECT {THREAD.select} FROM mastra_threads{where(clauses)} ORDER BY "{column}" {dir_}, id {dir_}',
            f"SELECT COUNT(*) FROM mastra_threads{where(clauses)}",
            p.values,
            win,
            THREAD.decode_all,
        )
        return ListThreadsResult(
            threads=records,
            **win.page_fields(total),
        )

    # ------------------------------------------------------------ messages

    @operation
    async def save_messages(self, *, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        records = check_messages(messages)
        if not records:
            return []
        threads = list(dict.fromkeys(m.thread_id for m in records if m.thread_id))
        await self.db.batch(
            [Stmt(_UPSERT_MESSAGE, [MESSAGE.params(m) for m in records], many=True), _bump_threads(threads)]
        )
        return records

    def _message_filters(
        self,
        p: Params,
        base: list[str],
        resource_id: str | None,
        rng: DateRange | None,
        filters: Mapping[str, Any],
    ) -> list[str]:
        clauses = list(base)
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        clauses += date_range('"createdAt"', rng, p)
        clauses += json_equals("content", "metadata.", filters, p)
        return clauses

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
        thread_ids = check_thread_ids(thread_id)
        p = Params()
        base = [f"thread_id IN ({p.many(thread_ids)})"]
        wanted = set(thread_ids)
        return await self._list(
            p,
            base,
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
            Params(),
            [],
            lambda m: m.resource_id == resource_id,
            resource_id,
            include,
            page,
            per_page,
            date_range,
            metadata,
            direction,
            include_total,
        )

    async def _list(
        self,
        p: Params,
        base: list[str],
        in_base: Callable[[Message], bool],
        resource_id: str | None,
        include: Sequence[IncludeContext | Mapping[str, Any]],
        page: int,
        per_page: PerPage,
        date_range_: DateRange | Mapping[str, Any] | None,
        metadata: Mapping[str, Any] | None,
        direction: str,
        include_total: bool,
    ) -> ListMessagesResult:
        win = window(page, per_page)
        dir_ = check_direction(direction)
        rng = check_date_range(date_range_)
        filters = check_scalar_filter(metadata)
        includes = check_includes(include)
        include_stmt = self._include_stmt(includes, resource_id)
        if win.limit == 0:
            included = MESSAGE.decode_all((await self.db.read([include_stmt]))[0]) if include_stmt else []
            return list_result([], included, dir_, win, total=0, filtered=True)

        # The page, its total and the include windows travel together in one read.
        clauses = self._message_filters(p, base, resource_id, rng, filters)
        page_sql = (
            f'SELECT {MESSAGE.select} FROM mastra_messages{where(clauses)} ORDER BY "createdAt" {dir_}, id {dir_}'
        )
        args = list(p.values)
        if win.limit is not None:
            page_sql += " LIMIT ? OFFSET ?"
            args += [win.limit if include_total else win.limit + 1, win.offset]  # +1: peek for has_more
        reads = [Stmt(page_sql, args)]
        if include_total:
            reads.append(Stmt(f"SELECT COUNT(*) FROM mastra_messages{where(clauses)}", p.values))
        if include_stmt:
            reads.append(include_stmt)
        results = await self.db.read(reads)
        page_msgs = MESSAGE.decode_all(results[0])
        included = MESSAGE.decode_all(results[-1]) if include_stmt else []
        if not include_total:
            peeked = win.limit is not None and len(page_msgs) > win.limit
            page_msgs = page_msgs[: win.limit] if win.limit is not None else page_msgs
            return list_result(page_msgs, included, dir_, win, total=None, peeked=peeked)
        return list_result(
            page_msgs,
            included,
            dir_,
            win,
            total=int(results[1][0][0]),
            filtered=bool(filters),
            in_base=lambda m: in_base(m) and in_range(m.created_at, rng),
        )

    @staticmethod
    def _include_stmt(includes: list[IncludeContext], resource_id: str | None) -> Stmt | None:
        """Every include window in one statement: the target, up to N older and M newer messages of
        the target's own thread (inside ``resource_id`` when given)."""
        if not includes:
            return None
        p = Params()
        parts: list[str] = []
        scoped = resource_id is not None and resource_id != ""
        for inc in includes:
            target = "SELECT {col} FROM mastra_messages WHERE id = {id}" + (
                ' AND "resourceId" = {rid}' if scoped else ""
            )

            def sub(col: str, inc: IncludeContext = inc, target: str = target) -> str:
                return "(" + target.format(col=col, id=p(inc.id), rid=p(resource_id) if scoped else "") + ")"

            scope = f' AND "resourceId" = {p(resource_id)}' if scoped else ""
            parts.append(
                f"SELECT * FROM (SELECT {MESSAGE.select} FROM mastra_messages WHERE thread_id = {sub('thread_id')}"
                f' AND "createdAt" <= {sub(_CREATED)}{scope}'
                f' ORDER BY "createdAt" DESC, id DESC LIMIT {p(inc.with_previous_messages + 1)})'
            )
            if inc.with_next_messages > 0:
                scope = f' AND "resourceId" = {p(resource_id)}' if scoped else ""
                parts.append(
                    f"SELECT * FROM (SELECT {MESSAGE.select} FROM mastra_messages WHERE thread_id = {sub('thread_id')}"
                    f' AND "createdAt" > {sub(_CREATED)}{scope}'
                    f' ORDER BY "createdAt" ASC, id ASC LIMIT {p(inc.with_next_messages)})'
                )
        return Stmt(" UNION ALL ".join(parts), p.values)

    @operation
    async def list_messages_by_id(self, *, message_ids: Sequence[str]) -> list[Message]:
        ids = require_ids(message_ids, "message_ids")
        found: list[Message] = []
        for chunk in chunks(ids):
            p = Params()
            found += MESSAGE.decode_all(
                await self.db.query(
                    f"SELECT {MESSAGE.select} FROM mastra_messages WHERE id IN ({p.many(list(chunk))})",
                    p.values,
                )
            )
        found.sort(key=lambda m: (m.created_at, m.id))
        return found

    @operation
    async def update_messages(self, *, messages: Sequence[MessageUpdate | Mapping[str, Any]]) -> list[Message]:
        updates = check_updates(messages)
        if not updates:
            return []
        ids = list(dict.fromkeys(u.id for u in updates))

        def body(tx: Tx) -> list[Message]:
            current: dict[str, Message] = {}
            for chunk in chunks(ids):
                p = Params()
                rows = tx.query(
                    f"SELECT {MESSAGE.select} FROM mastra_messages WHERE id IN ({p.many(list(chunk))})",
                    p.values,
                )
                current.update((m.id, m) for m in MESSAGE.decode_all(rows))
            touched: dict[str, None] = {}
            for u in updates:
                msg = current.get(u.id)
                if msg is None:
                    continue
                touched[str(msg.thread_id)] = None
                apply_update(msg, u)
                touched[str(msg.thread_id)] = None
            changed = [current[i] for i in ids if i in current]
            if changed:
                tx.executemany(
                    'UPDATE mastra_messages SET thread_id = ?, content = ?, role = ?, type = ?, "resourceId" = ? '
                    "WHERE id = ?",
                    [(m.thread_id, dumps(m.content), m.role, m.type, m.resource_id, m.id) for m in changed],
                )
                bump = _bump_threads(list(touched))
                tx.execute(bump.sql, bump.params)
            return changed

        return await self.db.transaction(body)

    @operation
    async def delete_messages(self, *, message_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(require_ids(message_ids, "message_ids")))
        if not ids:
            return

        def body(tx: Tx) -> None:
            threads: dict[str, None] = {}
            for chunk in chunks(ids):
                p = Params()
                in_list = p.many(list(chunk))
                rows = tx.query(f"SELECT DISTINCT thread_id FROM mastra_messages WHERE id IN ({in_list})", p.values)
                threads.update((str(r[0]), None) for r in rows)
                tx.execute(f"DELETE FROM mastra_messages WHERE id IN ({in_list})", p.values)
            if threads:
                bump = _bump_threads(list(threads))
                tx.execute(bump.sql, bump.params)

        await self.db.transaction(body)

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
        only_ids = require_ids(message_ids, "message_ids") if message_ids is not None else None
        start, end = check_datetime(start_date, "start_date"), check_datetime(end_date, "end_date")

        def body(tx: Tx) -> CloneThreadResult:
            rows = tx.query(f"SELECT {THREAD.select} FROM mastra_threads WHERE id = ?", (source_thread_id,))
            if not rows:
                raise NotFoundError(f"Source thread with id {source_thread_id} not found", status="SOURCE_NOT_FOUND")
            source = THREAD.decode(rows[0])
            if tx.query("SELECT 1 FROM mastra_threads WHERE id = ?", (target_id,)):
                raise ConflictError(f"Thread with id {target_id} already exists", status="THREAD_EXISTS")
            p = Params()
            clauses = [f"thread_id = {p(source_thread_id)}"]
            if only_ids is not None:
                clauses.append(f"id IN ({p.many(only_ids)})" if only_ids else "0")
            clauses += date_range('"createdAt"', DateRange(start=start, end=end), p)
            sql = f'SELECT {MESSAGE.select} FROM mastra_messages{where(clauses)} ORDER BY "createdAt" DESC, id DESC'
            if message_limit is not None:
                sql += f" LIMIT {p(message_limit)}"
            originals = MESSAGE.decode_all(tx.query(sql, p.values))[::-1]
            thread, copies, id_map = clone_plan(
                source, originals, new_thread_id=target_id, resource_id=resource_id, title=title, metadata=extra
            )
            tx.execute(_UPSERT_THREAD, THREAD.params(thread))
            if copies:
                tx.executemany(_UPSERT_MESSAGE, [MESSAGE.params(m) for m in copies])
            return CloneThreadResult(thread=thread, cloned_messages=copies, message_id_map=id_map)

        return await self.db.transaction(body)

    # ------------------------------------------------------------ resources

    @operation
    async def get_resource_by_id(self, *, resource_id: str) -> StorageResource | None:
        require_id(resource_id, "resource_id")
        rows = await self.db.query(f"SELECT {RESOURCE.select} FROM mastra_resources WHERE id = ?", (resource_id,))
        return RESOURCE.decode(rows[0]) if rows else None

    @operation
    async def save_resource(self, *, resource: StorageResource | Mapping[str, Any]) -> StorageResource:
        record = coerce(StorageResource, resource, "resource")
        require_id(record.id, "resource.id")
        await self.db.execute(_UPSERT_RESOURCE, RESOURCE.params(record))
        return record

    @operation
    async def update_resource(
        self,
        *,
        resource_id: str,
        working_memory: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> StorageResource:
        patch = check_resource_update(resource_id, working_memory, metadata)

        def body(tx: Tx) -> StorageResource:
            rows = tx.query(f"SELECT {RESOURCE.select} FROM mastra_resources WHERE id = ?", (resource_id,))
            res = updated_resource(RESOURCE.decode(rows[0]) if rows else None, resource_id, working_memory, patch)
            tx.execute(_UPSERT_RESOURCE, RESOURCE.params(res))
            return res

        return await self.db.transaction(body)
