"""Memory on PostgreSQL: threads, messages and resources in Mastra's tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._base import operation
from .._codec import dumps, new_id, utc_now
from .._memory_rules import (
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
from .base import PGDomain
from .codec import PGRowCodec, unnest_insert
from .sqlfrag import bump, date_range, json_equals

# Mastra keeps message content as JSON text; legacy rows hold a JSON string or plain text, which
# reads back wrapped as a v2 text part.
_TEXT = "CASE WHEN {a}content LIKE '\"%' THEN {a}content::jsonb #>> '{}' ELSE {a}content END"
_CONTENT = (
    "CASE WHEN {a}content LIKE '{%' THEN {a}content::jsonb ELSE jsonb_build_object('format', 2, 'content', "
    + _TEXT
    + ", 'parts', jsonb_build_array(jsonb_build_object('type', 'text', 'text', "
    + _TEXT
    + "))) END"
)
_METADATA = "(CASE WHEN content LIKE '{%' THEN content::jsonb -> 'metadata' END)"

THREAD = PGRowCodec(StorageThread, THREADS)
MESSAGE = PGRowCodec(
    Message, MESSAGES, columns={"thread_id": "thread_id"}, json=("content",), reads={"content": _CONTENT}
)
RESOURCE = PGRowCodec(StorageResource, RESOURCES)
_MESSAGE_CONFLICT = (
    " ON CONFLICT (id) DO UPDATE SET thread_id = EXCLUDED.thread_id, content = EXCLUDED.content, "
    'role = EXCLUDED.role, type = EXCLUDED.type, "resourceId" = EXCLUDED."resourceId"'
)


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)


class MemoryPG(PGDomain):
    """Threads, messages and resources on PostgreSQL."""

    tables = (THREADS, MESSAGES, RESOURCES)
    domain: ClassVar[str] = "memory"
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {
        "messages": ("mastra_messages", "createdAt"),
        "resources": ("mastra_resources", "createdAt"),
        "threads": ("mastra_threads", "createdAt"),
    }

    def indexes(self) -> list[str]:
        x, t = self.object_name, self.t
        return [
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_threads_resourceid_createdat_idx")}" '
            f'ON {t("mastra_threads")} ("resourceId", "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_threads_resourceid_updatedat_idx")}" '
            f'ON {t("mastra_threads")} ("resourceId", "updatedAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_messages_thread_id_createdat_idx")}" '
            f'ON {t("mastra_messages")} (thread_id, "createdAt" DESC)',
            f'CREATE INDEX IF NOT EXISTS "{x("mastra_messages_resourceid_createdat_idx")}" '
            f'ON {t("mastra_messages")} ("resourceId", "createdAt" DESC)',
        ]

    def _upsert_thread(self) -> str:
        return (
            f"INSERT INTO {self.t('mastra_threads')} ({THREAD.columns}) VALUES ({THREAD.placeholders()}) "
            'ON CONFLICT (id) DO UPDATE SET "resourceId" = EXCLUDED."resourceId", title = EXCLUDED.title, '
            'metadata = EXCLUDED.metadata, "createdAt" = EXCLUDED."createdAt", "createdAtZ" = EXCLUDED."createdAtZ", '
            '"updatedAt" = EXCLUDED."updatedAt", "updatedAtZ" = EXCLUDED."updatedAtZ"'
        )

    def _upsert_resource(self) -> str:
        return (
            f"INSERT INTO {self.t('mastra_resources')} ({RESOURCE.columns}) VALUES ({RESOURCE.placeholders()}) "
            'ON CONFLICT (id) DO UPDATE SET "workingMemory" = EXCLUDED."workingMemory", metadata = EXCLUDED.metadata, '
            '"createdAt" = EXCLUDED."createdAt", "createdAtZ" = EXCLUDED."createdAtZ", '
            '"updatedAt" = EXCLUDED."updatedAt", "updatedAtZ" = EXCLUDED."updatedAtZ"'
        )

    def _update_resource_sql(self) -> str:
        now = "$4::timestamp"
        return (
            f"INSERT INTO {self.t('mastra_resources')} AS r "
            '(id, "workingMemory", metadata, "createdAt", "createdAtZ", "updatedAt", "updatedAtZ") '
            f"VALUES ($1, $2, COALESCE($3::jsonb, '{{}}'::jsonb), {now}, {now} AT TIME ZONE 'UTC', {now}, "
            f"{now} AT TIME ZONE 'UTC') "
            'ON CONFLICT (id) DO UPDATE SET "workingMemory" = COALESCE($2, r."workingMemory"), '
            "metadata = COALESCE(r.metadata, '{}'::jsonb) || COALESCE($3::jsonb, '{}'::jsonb), "
            f"{bump('updatedAt', now, 'r')} RETURNING {RESOURCE.select_from('r')}"
        )

    def _bump_threads(self) -> str:
        """Bumps ``updatedAt`` of the threads in ``$1`` (a text[]) to ``$2`` or just past it."""
        return f"UPDATE {self.t('mastra_threads')} SET {bump('updatedAt', '$2')} WHERE id = ANY($1::text[])"

    # ------------------------------------------------------------ threads

    @operation
    async def get_thread_by_id(self, *, thread_id: str, resource_id: str | None = None) -> StorageThread | None:
        require_id(thread_id, "thread_id")
        p = Params("numeric")
        clauses = [f"id = {p(thread_id)}"]
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        rows = await self.fetch(f"SELECT {THREAD.select} FROM {self.t('mastra_threads')}{where(clauses)}", *p.values)
        return THREAD.decode(rows[0]) if rows else None

    @operation
    async def save_thread(self, *, thread: StorageThread | Mapping[str, Any]) -> StorageThread:
        record = coerce(StorageThread, thread, "thread")
        require_id(record.id, "thread.id")
        require_id(record.resource_id, "thread.resource_id")
        await self.execute(self._upsert_thread(), *THREAD.params(record))
        return record

    @operation
    async def update_thread(
        self, *, id: str, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageThread:
        patch = check_thread_update(id, title, metadata)
        # One statement, atomic on its own: the title replaced when given, metadata merged shallowly.
        t, now = self.t("mastra_threads"), "$4::timestamp"
        rows = await self.fetch(
            f"UPDATE {t} AS r SET title = COALESCE($2, r.title), "
            "metadata = COALESCE(r.metadata, '{}'::jsonb) || COALESCE($3::jsonb, '{}'::jsonb), "
            f"{bump('updatedAt', now, 'r')} WHERE id = $1 RETURNING {THREAD.select_from('r')}",
            id, title, dumps(patch) if patch is not None else None, utc_now().replace(tzinfo=None),
        )  # fmt: skip
        if not rows:
            raise NotFoundError(f"Thread {id} not found", details={"status": 404, "threadId": id})
        return THREAD.decode(rows[0])

    @operation
    async def delete_thread(self, *, thread_id: str) -> None:
        require_id(thread_id, "thread_id")

        async def body(conn: Any) -> None:
            await conn.execute(f"DELETE FROM {self.t('mastra_messages')} WHERE thread_id = $1", thread_id)
            await conn.execute(f"DELETE FROM {self.t('mastra_threads')} WHERE id = $1", thread_id)

        await self.transaction(body)

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
        p = Params("numeric")
        clauses: list[str] = []
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        clauses += json_equals("metadata", check_scalar_filter(metadata), p)
        table = self.t("mastra_threads")
        rows, total = await self.paged(
            f'SELECT {THREAD.select} FROM {table}{where(clauses)} ORDER BY "{column}" {dir_}, id {dir_}',
            f"SELECT COUNT(*) FROM {table}{where(clauses)}",
            p.values,
            win,
        )
        return ListThreadsResult(
            threads=THREAD.decode_all(rows),
            **win.page_fields(total),
        )

    # ------------------------------------------------------------ messages

    @operation
    async def save_messages(self, *, messages: Sequence[Message | Mapping[str, Any]]) -> list[Message]:
        records = check_messages(messages)
        if not records:
            return []
        latest = list({m.id: m for m in records}.values())  # one row per id: the last one given wins
        insert, arrays = unnest_insert(MESSAGE, self.t("mastra_messages"), latest)
        n = len(arrays)
        # One statement, one round trip: the upsert and the bump of every thread it touched.
        await self.execute(
            f"WITH saved AS ({insert}{_MESSAGE_CONFLICT} RETURNING thread_id) "
            f"UPDATE {self.t('mastra_threads')} SET {bump('updatedAt', f'${n + 1}')} "
            "WHERE id IN (SELECT thread_id FROM saved)",
            *arrays,
            _naive(utc_now()),
        )
        return records

    def _message_filters(
        self, p: Params, base: list[str], resource_id: str | None, rng: DateRange | None, filters: Mapping[str, Any]
    ) -> list[str]:
        clauses = list(base)
        if optional_text(resource_id, "resource_id") is not None:
            clauses.append(f'"resourceId" = {p(resource_id)}')
        clauses += date_range('"createdAt"', rng, p)
        clauses += json_equals(_METADATA, filters, p)
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
        p = Params("numeric")
        wanted = set(thread_ids)
        return await self._list(
            p,
            [f"thread_id = ANY({p(thread_ids)}::text[])"],
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
            Params("numeric"),
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
        in_base: Any,
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
        table = self.t("mastra_messages")
        include_sql, include_args = self._include_query(includes, resource_id)
        clauses = self._message_filters(p, base, resource_id, rng, filters)
        page_sql = f'SELECT {MESSAGE.select} FROM {table}{where(clauses)} ORDER BY "createdAt" {dir_}, id {dir_}'
        args = list(p.values)
        if win.limit is not None:
            page_sql += f" LIMIT ${len(args) + 1} OFFSET ${len(args) + 2}"
            args += [win.limit if include_total else win.limit + 1, win.offset]  # +1: peek for has_more

        count_sql = f"SELECT COUNT(*) FROM {table}{where(clauses)}"
        # The page and its total are one statement (the count joined LATERAL to the page).
        paged_sql = f"SELECT c.total, p.* FROM ({count_sql}) AS c(total) LEFT JOIN LATERAL ({page_sql}) AS p ON true"

        async def work(conn: Any) -> tuple[list[Any], int | None, list[Any]]:
            included = await conn.fetch(include_sql, *include_args) if include_sql else []
            if win.limit == 0:
                return [], 0, included
            if not include_total:
                return await conn.fetch(page_sql, *args), None, included
            rows = await conn.fetch(paged_sql, *args)
            return [(r[1],) for r in rows if r[1] is not None], int(rows[0][0]), included

        rows, total, included_rows = await self.run(work)
        included = MESSAGE.decode_all(included_rows)
        if win.limit == 0:
            return list_result([], included, dir_, win, total=0, filtered=True)
        page_msgs = MESSAGE.decode_all(rows)
        if total is None:
            peeked = win.limit is not None and len(page_msgs) > win.limit
            page_msgs = page_msgs[: win.limit] if win.limit is not None else page_msgs
            return list_result(page_msgs, included, dir_, win, total=None, peeked=peeked)
        return list_result(
            page_msgs,
            included,
            dir_,
            win,
            total=int(total),
            filtered=bool(filters),
            in_base=lambda m: in_base(m) and in_range(m.created_at, rng),
        )

    def _include_query(self, includes: list[IncludeContext], resource_id: str | None) -> tuple[str, list[Any]]:
        """Every include window in one statement: the target plus up to N older and M newer messages of
        the target's own thread (inside ``resource_id`` when given)."""
        if not includes:
            return "", []
        p = Params("numeric")
        table = self.t("mastra_messages")
        scoped = resource_id is not None and resource_id != ""
        parts: list[str] = []
        for inc in includes:
            scope = f' AND "resourceId" = {p(resource_id)}' if scoped else ""
            target = f'(SELECT thread_id, "createdAt" FROM {table} WHERE id = {p(inc.id)}{scope})'
            window_scope = f' AND m."resourceId" = {p(resource_id)}' if scoped else ""
            base = f"FROM {table} m, {target} tgt WHERE m.thread_id = tgt.thread_id{window_scope}"
            parts.append(
                f'(SELECT {MESSAGE.select_from("m")} {base} AND m."createdAt" <= tgt."createdAt" '
                f'ORDER BY m."createdAt" DESC, m.id DESC LIMIT {p(inc.with_previous_messages + 1)})'
            )
            if inc.with_next_messages > 0:
                parts.append(
                    f'(SELECT {MESSAGE.select_from("m")} {base} AND m."createdAt" > tgt."createdAt" '
                    f'ORDER BY m."createdAt" ASC, m.id ASC LIMIT {p(inc.with_next_messages)})'
                )
        return " UNION ALL ".join(parts), p.values

    @operation
    async def list_messages_by_id(self, *, message_ids: Sequence[str]) -> list[Message]:
        ids = require_ids(message_ids, "message_ids")
        if not ids:
            return []
        rows = await self.fetch(
            f"SELECT {MESSAGE.select} FROM {self.t('mastra_messages')} WHERE id = ANY($1::text[])", ids
        )
        found = MESSAGE.decode_all(rows)
        found.sort(key=lambda m: (m.created_at, m.id))
        return found

    @operation
    async def update_messages(self, *, messages: Sequence[MessageUpdate | Mapping[str, Any]]) -> list[Message]:
        updates = check_updates(messages)
        if not updates:
            return []
        ids = list(dict.fromkeys(u.id for u in updates))
        table = self.t("mastra_messages")

        async def body(conn: Any) -> list[Message]:
            rows = await conn.fetch(f"SELECT {MESSAGE.select} FROM {table} WHERE id = ANY($1::text[]) FOR UPDATE", ids)
            current = {m.id: m for m in MESSAGE.decode_all(rows)}
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
                insert, arrays = unnest_insert(MESSAGE, table, changed)
                await conn.execute(insert + _MESSAGE_CONFLICT, *arrays)
                await conn.execute(self._bump_threads(), list(touched), _naive(utc_now()))
            return changed

        return await self.transaction(body)

    @operation
    async def delete_messages(self, *, message_ids: Sequence[str]) -> None:
        ids = list(dict.fromkeys(require_ids(message_ids, "message_ids")))
        if not ids:
            return

        async def body(conn: Any) -> None:
            rows = await conn.fetch(
                f"DELETE FROM {self.t('mastra_messages')} WHERE id = ANY($1::text[]) RETURNING thread_id", ids
            )
            threads = list(dict.fromkeys(r[0] for r in rows))
            if threads:
                await conn.execute(self._bump_threads(), threads, _naive(utc_now()))

        await self.transaction(body)

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
        threads, messages = self.t("mastra_threads"), self.t("mastra_messages")

        async def body(conn: Any) -> CloneThreadResult:
            rows = await conn.fetch(f"SELECT {THREAD.select} FROM {threads} WHERE id = $1", source_thread_id)
            if not rows:
                raise NotFoundError(f"Source thread with id {source_thread_id} not found", status="SOURCE_NOT_FOUND")
            if await conn.fetchval(f"SELECT 1 FROM {threads} WHERE id = $1", target_id):
                raise ConflictError(f"Thread with id {target_id} already exists", status="THREAD_EXISTS")
            p = Params("numeric")
            clauses = [f"thread_id = {p(source_thread_id)}"]
            if only_ids is not None:
                clauses.append(f"id = ANY({p(only_ids)}::text[])")
            clauses += date_range('"createdAt"', DateRange(start=start, end=end), p)
            sql = f'SELECT {MESSAGE.select} FROM {messages}{where(clauses)} ORDER BY "createdAt" DESC, id DESC'
            if message_limit is not None:
                sql += f" LIMIT {p(message_limit)}"
            originals = MESSAGE.decode_all(await conn.fetch(sql, *p.values))[::-1]
            thread, copies, id_map = clone_plan(
                THREAD.decode(rows[0]),
                originals,
                new_thread_id=target_id,
                resource_id=resource_id,
                title=title,
                metadata=extra,
            )
            await conn.execute(self._upsert_thread(), *THREAD.params(thread))
            if copies:
                insert, arrays = unnest_insert(MESSAGE, messages, copies)
                await conn.execute(insert, *arrays)
            return CloneThreadResult(thread=thread, cloned_messages=copies, message_id_map=id_map)

        return await self.transaction(body, idempotent=False)

    # ------------------------------------------------------------ resources

    @operation
    async def get_resource_by_id(self, *, resource_id: str) -> StorageResource | None:
        require_id(resource_id, "resource_id")
        rows = await self.fetch(
            f"SELECT {RESOURCE.select} FROM {self.t('mastra_resources')} WHERE id = $1", resource_id
        )
        return RESOURCE.decode(rows[0]) if rows else None

    @operation
    async def save_resource(self, *, resource: StorageResource | Mapping[str, Any]) -> StorageResource:
        record = coerce(StorageResource, resource, "resource")
        require_id(record.id, "resource.id")
        await self.execute(self._upsert_resource(), *RESOURCE.params(record))
        return record

    @operation
    async def update_resource(
        self, *, resource_id: str, working_memory: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> StorageResource:
        patch = check_resource_update(resource_id, working_memory, metadata)
        # One statement, atomic on its own: insert, or merge into the row (working memory replaced
        # when given, metadata merged shallowly with ||, updatedAt strictly later).
        rows = await self.fetch(
            self._update_resource_sql(), resource_id, working_memory, dumps(patch) if patch is not None else None,
            utc_now().replace(tzinfo=None),
        )  # fmt: skip
        return RESOURCE.decode(rows[0])
