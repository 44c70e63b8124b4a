"""Memory on libSQL: threads, messages and resources in Mastra's ``mastra_threads``,
``mastra_messages`` and ``mastra_resources`` tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .._sql.params import Params, where
from .._sql.schema import MESSAGES, RESOURCES, THREADS
from ..core.codec import dumps, iso, utc_now
from ..core.paging import Window
from ..domains.memory import MemoryStorage
from ..domains.memory_rules import (
    CloneRequest,
    MessagePage,
    MessageQuery,
    apply_thread_update,
    apply_updates,
    chunks,
    clone_plan,
    source_not_found,
    thread_exists,
    thread_not_found,
    updated_resource,
)
from ..types import CloneThreadResult, DateRange, IncludeContext, Message, MessageUpdate, StorageResource, StorageThread
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
    f"INSERT INTO mastra_messages ({MESSAGE.columns}) VALUES ({MESSAGE.placeholders()}) "
    "ON CONFLICT (id) DO UPDATE SET thread_id = excluded.thread_id, content = excluded.content, "
    'role = excluded.role, type = excluded.type, "resourceId" = excluded."resourceId"'
)
_UPSERT_THREAD = (
    f"INSERT INTO mastra_threads ({THREAD.columns}) VALUES ({THREAD.placeholders()}) "
    'ON CONFLICT (id) DO UPDATE SET "resourceId" = excluded."resourceId", title = excluded.title, '
    'metadata = excluded.metadata, "createdAt" = excluded."createdAt", "updatedAt" = excluded."updatedAt"'
)
_UPSERT_RESOURCE = (
    f"INSERT INTO mastra_resources ({RESOURCE.columns}) VALUES ({RESOURCE.placeholders()}) "
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


class MemoryLibSQL(LibSQLDomain, MemoryStorage):
    """Threads, messages and resources on a libSQL/SQLite database."""

    codecs = (THREAD, MESSAGE, RESOURCE)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "messages": ("mastra_messages", "createdAt"),
        "resources": ("mastra_resources", "createdAt"),
        "threads": ("mastra_threads", "createdAt"),
    }

    # ------------------------------------------------------------ threads

    async def _get_thread(self, thread_id: str, resource_id: str | None) -> StorageThread | None:
        p = Params()
        clauses = [f"id = {p(thread_id)}"]
        if resource_id is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        rows = await self.db.query(f"SELECT {THREAD.select} FROM mastra_threads{where(clauses)}", p.values)
        return THREAD.decode(rows[0]) if rows else None

    async def _save_thread(self, thread: StorageThread) -> None:
        await self.db.execute(_UPSERT_THREAD, THREAD.params(thread))

    async def _update_thread(self, id: str, title: str | None, patch: dict[str, Any] | None) -> StorageThread:
        def body(tx: Tx) -> StorageThread:
            rows = tx.query(f"SELECT {THREAD.select} FROM mastra_threads WHERE id = ?", (id,))
            if not rows:
                raise thread_not_found(id)
            thread = THREAD.decode(rows[0])
            apply_thread_update(thread, title, patch)
            tx.execute(
                'UPDATE mastra_threads SET title = ?, metadata = ?, "updatedAt" = ? WHERE id = ?',
                (thread.title, dumps(thread.metadata), iso(thread.updated_at), id),
            )
            return thread

        return await self.db.transaction(body)

    async def _delete_thread(self, thread_id: str) -> None:
        await self.db.batch(
            [
                Stmt("DELETE FROM mastra_messages WHERE thread_id = ?", (thread_id,)),
                Stmt("DELETE FROM mastra_threads WHERE id = ?", (thread_id,)),
            ]
        )

    async def _thread_page(
        self, resource_id: str | None, metadata: dict[str, Any], win: Window, column: str, dir_: str
    ) -> tuple[list[StorageThread], int]:
        p = Params()
        clauses: list[str] = []
        if resource_id is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        clauses += json_equals("metadata", "", metadata, p)
        return await self.paged(
            f'SELECT {THREAD.select} FROM mastra_threads{where(clauses)} ORDER BY "{column}" {dir_}, id {dir_}',
            f"SELECT COUNT(*) FROM mastra_threads{where(clauses)}",
            p.values,
            win,
            THREAD.decode_all,
        )

    # ------------------------------------------------------------ messages

    async def _save_messages(self, messages: list[Message]) -> None:
        threads = list(dict.fromkeys(m.thread_id for m in messages if m.thread_id))
        await self.db.batch(
            [Stmt(_UPSERT_MESSAGE, [MESSAGE.params(m) for m in messages], many=True), _bump_threads(threads)]
        )

    async def _message_page(self, q: MessageQuery) -> MessagePage:
        include_stmt = self._include_stmt(q.includes, q.resource_id)
        if q.win.limit == 0:
            included = MESSAGE.decode_all((await self.db.read([include_stmt]))[0]) if include_stmt else []
            return MessagePage([], 0, included)
        # The page, its total and the include windows travel together in one read.
        p = Params()
        clauses = [f"thread_id IN ({p.many(q.thread_ids)})"] if q.thread_ids is not None else []
        if q.resource_id is not None:
            clauses.append(f'"resourceId" = {p(q.resource_id)}')
        clauses += date_range('"createdAt"', q.date_range, p)
        clauses += json_equals("content", "metadata.", q.metadata, p)
        dir_ = q.direction
        page_sql = (
            f'SELECT {MESSAGE.select} FROM mastra_messages{where(clauses)} ORDER BY "createdAt" {dir_}, id {dir_}'
        )
        args = list(p.values)
        if q.fetch_limit is not None:
            page_sql += " LIMIT ? OFFSET ?"
            args += [q.fetch_limit, q.win.offset]
        reads = [Stmt(page_sql, args)]
        if q.include_total:
            reads.append(Stmt(f"SELECT COUNT(*) FROM mastra_messages{where(clauses)}", p.values))
        if include_stmt:
            reads.append(include_stmt)
        # Concurrent callers of the same page share its read (core/coalesce.py); each decodes its own.
        statements = tuple(stmt.sql for stmt in reads)
        values = [value for stmt in reads for value in stmt.params]
        results = await self.shared_read(statements, values, lambda: self.db.read(reads))
        return MessagePage(
            MESSAGE.decode_all(results[0]),
            int(results[1][0][0]) if q.include_total else None,
            MESSAGE.decode_all(results[-1]) if include_stmt else [],
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

    async def _messages_by_id(self, ids: list[str]) -> list[Message]:
        found: list[Message] = []
        for chunk in chunks(ids):
            p = Params()
            found += MESSAGE.decode_all(
                await self.db.query(
                    f"SELECT {MESSAGE.select} FROM mastra_messages WHERE id IN ({p.many(list(chunk))})",
                    p.values,
                )
            )
        return found

    async def _update_messages(self, updates: list[MessageUpdate], ids: list[str]) -> list[Message]:
        def body(tx: Tx) -> list[Message]:
            current: dict[str, Message] = {}
            for chunk in chunks(ids):
                p = Params()
                rows = tx.query(
                    f"SELECT {MESSAGE.select} FROM mastra_messages WHERE id IN ({p.many(list(chunk))})",
                    p.values,
                )
                current.update((m.id, m) for m in MESSAGE.decode_all(rows))
            changed, touched = apply_updates(current, updates, ids)
            if changed:
                tx.executemany(
                    'UPDATE mastra_messages SET thread_id = ?, content = ?, role = ?, type = ?, "resourceId" = ? '
                    "WHERE id = ?",
                    [(m.thread_id, dumps(m.content), m.role, m.type, m.resource_id, m.id) for m in changed],
                )
                bump = _bump_threads(touched)
                tx.execute(bump.sql, bump.params)
            return changed

        return await self.db.transaction(body)

    async def _delete_messages(self, ids: list[str]) -> None:
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

    async def _clone_thread(self, req: CloneRequest) -> CloneThreadResult:
        def body(tx: Tx) -> CloneThreadResult:
            rows = tx.query(f"SELECT {THREAD.select} FROM mastra_threads WHERE id = ?", (req.source_thread_id,))
            if not rows:
                raise source_not_found(req.source_thread_id)
            if tx.query("SELECT 1 FROM mastra_threads WHERE id = ?", (req.new_thread_id,)):
                raise thread_exists(req.new_thread_id)
            p = Params()
            clauses = [f"thread_id = {p(req.source_thread_id)}"]
            if req.message_ids is not None:
                clauses.append(f"id IN ({p.many(req.message_ids)})" if req.message_ids else "0")
            clauses += date_range('"createdAt"', DateRange(start=req.start, end=req.end), p)
            sql = f'SELECT {MESSAGE.select} FROM mastra_messages{where(clauses)} ORDER BY "createdAt" DESC, id DESC'
            if req.message_limit is not None:
                sql += f" LIMIT {p(req.message_limit)}"
            originals = MESSAGE.decode_all(tx.query(sql, p.values))[::-1]
            thread, copies, id_map = clone_plan(THREAD.decode(rows[0]), originals, req)
            tx.execute(_UPSERT_THREAD, THREAD.params(thread))
            if copies:
                tx.executemany(_UPSERT_MESSAGE, [MESSAGE.params(m) for m in copies])
            return CloneThreadResult(thread=thread, cloned_messages=copies, message_id_map=id_map)

        return await self.db.transaction(body)

    # ------------------------------------------------------------ resources

    async def _get_resource(self, resource_id: str) -> StorageResource | None:
        rows = await self.db.query(f"SELECT {RESOURCE.select} FROM mastra_resources WHERE id = ?", (resource_id,))
        return RESOURCE.decode(rows[0]) if rows else None

    async def _save_resource(self, resource: StorageResource) -> None:
        await self.db.execute(_UPSERT_RESOURCE, RESOURCE.params(resource))

    async def _update_resource(
        self, resource_id: str, working_memory: str | None, patch: dict[str, Any] | None
    ) -> StorageResource:
        def body(tx: Tx) -> StorageResource:
            rows = tx.query(f"SELECT {RESOURCE.select} FROM mastra_resources WHERE id = ?", (resource_id,))
            res = updated_resource(RESOURCE.decode(rows[0]) if rows else None, resource_id, working_memory, patch)
            tx.execute(_UPSERT_RESOURCE, RESOURCE.params(res))
            return res

        return await self.db.transaction(body)
