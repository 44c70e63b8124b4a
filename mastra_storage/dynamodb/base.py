"""The base of the DynamoDB domain stores: connection options, TTL, reading and writing records."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, TypeVar, Unpack

import msgspec

from ..core.codec import iso, utc_now
from ..core.lifecycle import DomainStore, maintenance, operation
from ..core.migrations import MigrationStep, StatementMigration, pending
from ..core.paging import Window
from ..core.retention import retention_plan
from ..core.transfer import decode_cursor
from ..core.validate import coerce
from ..errors import ConflictError, ValidationError
from ..types import PruneResult, TtlConfig
from .connection import (
    ConditionFailed,
    Connection,
    DynamoOptions,
    DynamoSettings,
    Item,
    backoff,
    check_key_sizes,
    gather_all,
)
from .counters import Counting, Write
from .items import Expr, compress, expired, keys_of, millis, n, now_seconds, pack, payloads, s
from .table import ensure_table

_LEDGER_PK = "MIGRATION"  # the ledger partition (entity "migration": clears and exports pass it by)

T = TypeVar("T", bound=msgspec.Struct)
Kept = Callable[[T, Item], None]
TTL_ENTITIES = ("thread", "message", "resource", "workflow_snapshot", "score", "span", "agent")
_TTL_OF = {"agent_version": "agent"}  # an agent's versions expire as the agent does


def check_ttl(ttl: Mapping[str, Any] | None) -> dict[str, TtlConfig]:
    """Per-entity TTL settings (API.md §3.6), validated."""
    if ttl is None:
        return {}
    if not isinstance(ttl, Mapping):
        raise ValidationError("ttl must map entity names to TtlConfig")
    unknown = set(ttl) - set(TTL_ENTITIES)
    if unknown:
        raise ValidationError(f"unknown ttl entity(ies) {sorted(unknown)}; known: {list(TTL_ENTITIES)}")
    configs = {entity: coerce(TtlConfig, value, f"ttl[{entity}]") for entity, value in ttl.items()}
    for entity, cfg in configs.items():
        seconds = cfg.default_ttl_seconds
        if seconds is not None and (isinstance(seconds, bool) or seconds <= 0):
            raise ValidationError(f"ttl[{entity}].default_ttl_seconds must be a positive integer")
        if not cfg.attribute_name or cfg.attribute_name in ("pk", "sk", "e", "d", "z", "n", "v", "c"):
            raise ValidationError(f"ttl[{entity}].attribute_name {cfg.attribute_name!r} is not usable")
    names = {cfg.attribute_name for cfg in configs.values() if cfg.enabled}
    if len(names) > 1:
        raise ValidationError(
            f"a DynamoDB table has one TTL attribute, but the enabled entities use {sorted(names)}; use one name"
        )
    return configs


class DynamoDomain(DomainStore):
    """A domain store on the single table. Built alone it owns its client; inside ``DynamoDBStore``
    every domain shares the store's connection."""

    store_name = "DYNAMODB"
    domain: ClassVar[str]
    entities: ClassVar[tuple[str, ...]]  # what this domain writes (dangerously_clear_all, prune)
    retention_entities: ClassVar[dict[str, str]] = {}  # prune key -> entity
    # record kind -> its entity and what its items keep outside the payload (export_records)
    record_entities: ClassVar[dict[str, tuple[str, Kept[Any] | None]]] = {}
    # the GSIs whose partitions this domain's lists page through: their items are counted
    counted_indexes: ClassVar[tuple[str, ...]] = ("gsi1", "gsi2", "gsi3", "gsi4")

    @property
    def retention_keys(self) -> list[str]:
        return list(self.retention_entities)

    def __init__(
        self,
        *,
        id: str | None = None,
        ttl: Mapping[str, Any] | None = None,
        create_table: bool = False,
        disable_init: bool = False,
        connection: Connection | None = None,
        **options: Unpack[DynamoOptions],
    ) -> None:
        """A standalone domain store reaches its table with ``options`` (see ``DynamoOptions``); a
        ``DynamoDBStore`` hands its domain stores its own ``connection`` instead."""
        super().__init__(disable_init=disable_init)
        self.id = id
        self.ttl = check_ttl(ttl)
        self.create_table = create_table
        self._owns = connection is None
        if connection is None:
            if "table_name" not in options:
                raise ValidationError(f"{type(self).__name__}: table_name is required")
            connection = Connection(DynamoSettings(**options))
        self.conn = connection
        self.calls = connection.calls
        self.counting = Counting(connection, self.domain, self.counted_indexes)

    @property
    def ttl_attribute(self) -> str | None:
        """The table's TTL attribute when an entity of this store expires (None: no TTL configured)."""
        enabled = [c.attribute_name for c in self.ttl.values() if c.enabled]
        return enabled[0] if enabled else None

    async def _initialize(self) -> None:
        await self._migrate(dry_run=False)

    @property
    def migrations(self) -> tuple[StatementMigration, ...]:
        """DynamoDB has no DDL per domain: a version is the item format the domain writes (1), and
        the list counters (2, backfilled from the items). The table and its GSIs are checked — or
        created — before a pending version is applied."""
        return (
            StatementMigration(1, f"{self.domain} item format 1"),
            StatementMigration(2, f"{self.domain} list totals kept in counters"),
        )

    @maintenance
    async def migrate(self, *, dry_run: bool = False) -> list[MigrationStep]:
        """The ledger is one item per applied version (``pk = "MIGRATION"``), written with a condition
        so processes migrating at once record each version once."""
        return await self._migrate(dry_run)

    async def _applied(self) -> dict[int, str]:
        client = await self.conn.client()
        try:
            items = await self.conn.query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :domain)",
                ExpressionAttributeValues={":pk": s(_LEDGER_PK), ":domain": s(f"{self.domain}#")},
                ConsistentRead=True,
            )
        except client.exceptions.ResourceNotFoundException:  # a dry run on a table not made yet
            return {}
        return {int(item["v"]["N"]): item["cs"]["S"] for item in items}

    async def _migrate(self, dry_run: bool) -> list[MigrationStep]:
        client = await self.conn.client()
        todo = pending(self.domain, self.migrations, await self._applied())
        if todo and not dry_run:
            # The table's layout is checked (or the table created) before the first migration; a
            # table whose ledger is up to date passed that check, so an up-to-date init is one Query
            # per domain (``doctor`` checks the layout at any time).
            ttl = self.ttl_attribute
            await self.conn.table_ready(
                lambda: ensure_table(self.conn, create=self.create_table, ttl_attribute=ttl), ttl
            )
        for migration in todo if not dry_run else ():
            if migration.version == 2:
                await self._rebuild_counters()
            item = {
                "pk": s(_LEDGER_PK),
                "sk": s(f"{self.domain}#{migration.version:06d}"),
                "e": s("migration"),
                "v": n(migration.version),
                "name": s(migration.name),
                "cs": s(migration.checksum),
                "at": s(iso(utc_now())),
            }
            with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):  # recorded by another process
                await self.conn.put(item, ConditionExpression="attribute_not_exists(pk)")
        return [MigrationStep(self.domain, m.version, m.name, m.statements, applied=not dry_run) for m in todo]

    async def close(self) -> None:
        await self._init_once.stop()
        if self._owns:
            await self.conn.close()

    @maintenance
    async def rebuild_counters(self) -> dict[str, int]:
        """Recounts every list total of this domain from its items (a Scan) and rewrites the
        counters; returns the count of each group. Migration 2 runs it on a table written before
        counters existed; run it again after turning an entity's TTL off (TTL deletes items without
        telling the counters). Writers of the domain should be stopped while it runs: a write that
        lands between the Scan and the rewrite is not in the new counts."""
        return await self._rebuild_counters()

    async def _rebuild_counters(self) -> dict[str, int]:
        attrs = ["pk", "sk", "e", *self.counting.attrs, *{c.attribute_name for c in self.ttl.values()}]
        names = {f"#p{i}": a for i, a in enumerate(attrs)}
        values = {f":e{i}": s(e) for i, e in enumerate(self.entities)}
        values[":counter"] = s(self.counting.entity)
        counts: dict[str, int] = {}
        stale: list[Item] = []
        request: dict[str, Any] = {
            "FilterExpression": f"#p2 IN ({', '.join(values)})",
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        while True:
            items, start = await self.conn.scan(**request)
            for item in items:
                if item["e"]["S"] == self.counting.entity:
                    stale.append(item)
                elif not expired(item, self.ttl_name(item["e"]["S"])):
                    for group in self.counting.groups(item):
                        counts[group] = counts.get(group, 0) + 1
            if start is None:
                break
            request["ExclusiveStartKey"] = start
        await self.conn.batch_write(deletes=keys_of(stale))
        await self.conn.batch_write(puts=[self.counting.item(group, total) for group, total in counts.items()])
        return counts

    # ------------------------------------------------------------ TTL

    def ttl_name(self, entity: str) -> str:
        cfg = self.ttl.get(_TTL_OF.get(entity, entity))
        return cfg.attribute_name if cfg is not None else "ttl"

    def stamp(self, entity: str, created: datetime) -> dict[str, Any]:
        """Attributes every item of a record carries: its creation time (for prune) and, when TTL is on
        for the entity, its expiry in epoch seconds."""
        extra: dict[str, Any] = {"c": n(millis(created))}
        cfg = self.ttl.get(_TTL_OF.get(entity, entity))
        if cfg is not None and cfg.enabled and cfg.default_ttl_seconds:
            extra[cfg.attribute_name] = n(now_seconds() + cfg.default_ttl_seconds)
        return extra

    def expr(self, entity: str) -> Expr:
        """A query expression that leaves out expired items of ``entity`` when TTL is on for it (a
        filter costs the service time on every item it reads, so it is only added where needed)."""
        e = Expr()
        cfg = self.ttl.get(_TTL_OF.get(entity, entity))
        if cfg is not None and cfg.enabled:
            e.live(cfg.attribute_name)
        return e

    # ------------------------------------------------------------ records

    async def items(self, pk: str, sk: str, entity: str, record: msgspec.Struct, created: datetime) -> list[Item]:
        """A record as its main item (first) and part items."""
        body, compressed = await compress(msgspec.json.encode(record))
        return pack(pk, sk, entity, body, compressed, self.stamp(entity, created))

    async def write(self, items: list[Item]) -> None:
        """A record's items in place of what its key holds: one PutItem for an item no list counts;
        otherwise a transaction that also moves the counters of the lists it joins or leaves (two when
        the key was taken: the first learns what it held)."""
        if self.counting.groups(items[0]):
            await self.counting.save(Write("put", items))
        elif len(items) == 1:
            await self.conn.put(items[0])
        else:
            await self.conn.transact([put(i) for i in items])

    async def replace(self, items: list[Item], old: Item | None) -> None:
        """A read-modify-write's write: the record's items, only if its main item is still ``old``
        (raises ``ConditionFailed`` otherwise, for ``optimistic`` to read again), with its counters."""
        await self.counting.replace(Write("put", items, old))

    async def write_all(self, records: list[list[Item]]) -> None:
        """Many records' items in place of what their keys hold, in transactions of up to 100 items
        that keep the list counters exact (import_records)."""
        await self.counting.commit([Write("put", items) for items in records])

    async def read(
        self, pk: str, sk: str, entity: str, record: type[T], kept: Kept[T] | None = None
    ) -> tuple[T, Item] | None:
        """One record by key (strongly consistent), or None if missing or expired."""
        item = await self.conn.get({"pk": s(pk), "sk": s(sk)})
        if item is None or expired(item, self.ttl_name(entity)):
            return None
        (decoded,) = await self.decode([item], record, kept)
        return decoded, item

    async def page(
        self,
        partitions: Sequence[Partition],
        filters: Callable[[], Expr],
        win: Window,
        *,
        forward: bool,
        count: bool = True,
    ) -> PageOf:
        """``read_page`` of this store, shared by the callers asking for the same page at once
        (``core.coalesce.SharedReads``): its key is what the page's requests ask, as JSON. The
        items are shared as read: ``decode`` makes each caller's records without changing them."""
        e = filters()
        key = msgspec.json.encode([
            [(p.index, p.pk, p.lo, p.hi) for p in partitions], e.filters, e.names, e.values,
            win.offset, win.limit, forward, count,
        ])  # fmt: skip
        return await self.shared_read(
            key,
            (),
            lambda: read_page(
                self.conn, partitions, filters, win, forward=forward, count=count, counting=self.counting
            ),
        )

    async def decode(self, items: Sequence[Item], record: type[T], kept: Kept[T] | None = None) -> list[T]:
        """The records of ``items``; ``kept`` copies onto each what its item holds outside the payload
        (values an UpdateItem kept or bumped without rewriting the record)."""
        records = [msgspec.json.decode(body, type=record) for body in await payloads(self.conn, items)]
        if kept is not None:
            for one, item in zip(records, items, strict=True):
                kept(one, item)
        return records

    async def related_parts(self, pk: str, sk: str) -> list[Item]:
        """Part items under a record's key (including leftovers of a larger earlier version)."""
        return await self.conn.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(f"{sk}#P#")},
            ProjectionExpression="pk, sk",
        )

    # ------------------------------------------------------------ maintenance

    async def _scan_delete(self, filter_: str, values: dict[str, Any]) -> int:
        """Deletes what a Scan filter selects, a page (≤ 1 MB read) at a time — never used to answer
        a list, only to clear or prune."""
        deleted = 0
        async for page in self.conn.scan_keys(
            FilterExpression=filter_, ExpressionAttributeNames={"#e": "e"}, ExpressionAttributeValues=values
        ):
            await self.conn.batch_write(deletes=keys_of(page))
            deleted += len(page)
        return deleted

    async def _export(self, kind: str, cursor: str | None, limit: int) -> tuple[list[Any], str | None]:
        """A filtered Scan of the table (DynamoDB has no index over every record of a kind): each
        request evaluates at most what the page still lacks, so a page never passes ``limit``; the
        cursor is where the Scan stopped, and a sparse kind may give short pages before the end."""
        entity, kept = self.record_entities[kind]
        after = decode_cursor(cursor, 2)
        start = {"pk": s(after[0]), "sk": s(after[1])} if after else None
        found: list[Item] = []
        while len(found) < limit:
            request: dict[str, Any] = {
                "FilterExpression": "#e = :e",
                "ExpressionAttributeNames": {"#e": "e"},
                "ExpressionAttributeValues": {":e": s(entity)},
                "Limit": limit - len(found),
            }
            if start is not None:
                request["ExclusiveStartKey"] = start
            items, start = await self.conn.scan(**request)
            found += [item for item in items if not expired(item, self.ttl_name(entity))]
            if start is None:
                break
        records = await self.decode(found, self.record_kinds[kind].record, kept)
        return records, json.dumps([start["pk"]["S"], start["sk"]["S"]]) if start else None

    async def _count(self, kind: str) -> int:
        entity, _ = self.record_entities[kind]
        return await self.conn.count(
            scan=True,
            FilterExpression="#e = :e",
            ExpressionAttributeNames={"#e": "e"},
            ExpressionAttributeValues={":e": s(entity)},
        )

    @operation
    async def dangerously_clear_all(self) -> None:
        kinds = [*self.entities, *(f"{e}.part" for e in self.entities), self.counting.entity]
        values = {f":e{i}": s(kind) for i, kind in enumerate(kinds)}
        await self._scan_delete(f"#e IN ({', '.join(values)})", values)

    @operation
    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes records (and their parts) created before each cutoff. DynamoDB has no index on age
        across entities, so this is a filtered Scan of the table; TTL (``ttl=``) is the cheaper way to
        expire data on DynamoDB."""
        tables = {key: (entity, "c") for key, entity in self.retention_entities.items()}
        plans = retention_plan(self.domain, tables, retention)
        results = []
        projection = ", ".join(["pk", "sk", "v", "n", *self.counting.attrs])
        for plan in plans:
            deleted = 0
            values = {":e": s(plan.table), ":cut": n(millis(plan.cutoff))}
            async for page in self.conn.scan_keys(
                FilterExpression="#e = :e AND c < :cut",
                ExpressionAttributeNames={"#e": "e"},
                ExpressionAttributeValues=values,
                ProjectionExpression=projection,
            ):  # each record with its parts and its counters, in transactions
                await self.counting.commit([Write("delete", [item], item) for item in page])
                deleted += len(page)
            # parts whose record went without them (an interrupted delete)
            values = {":e": s(f"{plan.table}.part"), ":cut": n(millis(plan.cutoff))}
            await self._scan_delete("#e = :e AND c < :cut", values)
            results.append(PruneResult(domain=self.domain, table=plan.key, deleted=deleted, done=True))
        return results


@dataclass(frozen=True)
class Partition:
    """One sorted partition to read: the table (``index=None``) or a GSI, a partition key, and
    optional sort-key bounds (inclusive)."""

    index: str | None
    pk: str
    lo: str | None = None
    hi: str | None = None

    @property
    def sk_attr(self) -> str:
        return f"{self.index}sk" if self.index else "sk"

    def request(self, e: Expr, **extra: Any) -> dict[str, Any]:
        pk_attr = f"{self.index}pk" if self.index else "pk"
        cond = f"{e.name(pk_attr)} = {e.value(s(self.pk))}"
        if self.lo is not None and self.hi is not None:
            cond += f" AND {e.name(self.sk_attr)} BETWEEN {e.value(s(self.lo))} AND {e.value(s(self.hi))}"
        elif self.lo is not None:
            cond += f" AND {e.name(self.sk_attr)} >= {e.value(s(self.lo))}"
        elif self.hi is not None:
            cond += f" AND {e.name(self.sk_attr)} <= {e.value(s(self.hi))}"
        if self.index:
            extra["IndexName"] = self.index
        else:
            extra.setdefault("ConsistentRead", True)  # GSIs are only eventually consistent; the table is not
        return e.kwargs(cond, **extra)

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo > self.hi


# What a page's records are built from (payload, compression, parts, the values upserts keep outside
# the payload): a list reads only these, and botocore parses fewer attributes per item.
PAGE_ATTRIBUTES = ("pk", "sk", "d", "z", "n", "u", "ca", "rid", "st")


@dataclass
class PageOf:
    items: list[Item]
    total: int | None
    peeked: bool


async def read_page(
    conn: Connection,
    partitions: Sequence[Partition],
    filters: Callable[[], Expr],
    win: Window,
    *,
    forward: bool,
    count: bool = True,
    counting: Counting | None = None,
) -> PageOf:
    """One page over one or more sorted partitions, merged in sort-key order.

    Each partition is read only as far as the page reaches (offset + limit items; one more when the
    total is not counted, to tell whether more follow). The total of whole GSI partitions read
    without a filter is their counters' (one BatchGetItem, ``counting``); otherwise a Select=COUNT
    query per partition. ``filters`` makes a fresh expression with the filters every partition applies."""
    live = [p for p in partitions if not p.empty]
    need = None if win.limit is None else win.offset + win.limit + (0 if count else 1)
    kept = (
        counting is not None and not filters().filters and all(p.index and p.lo is None and p.hi is None for p in live)
    )

    async def one(p: Partition) -> list[Item]:
        e = filters()
        projection = ", ".join(e.name(a) for a in dict.fromkeys((*PAGE_ATTRIBUTES, p.sk_attr)))
        return await conn.query(limit=need, **p.request(e, ScanIndexForward=forward, ProjectionExpression=projection))

    async def total(p: Partition) -> int:
        return await conn.count(**p.request(filters()))

    async def kept_totals() -> int:
        assert counting is not None
        return sum(await counting.totals([p.pk for p in live])) if live else 0

    # The page reads and the totals go out together: one round trip of latency, not two.
    counts = [] if not count else [kept_totals()] if kept else [total(p) for p in live]
    results = await gather_all(*(one(p) for p in live), *counts)
    found: list[list[Item]] = results[: len(live)]  # type: ignore[assignment]
    totals: list[int] | None = results[len(live) :] if count else None  # type: ignore[assignment]
    merged: list[Item] = [item for items in found for item in items]
    if len(live) > 1:
        merged.sort(key=lambda item: item[live[0].sk_attr]["S"], reverse=not forward)
    end = None if win.limit is None else win.offset + win.limit
    page = merged[win.offset : end]
    return PageOf(page, sum(totals) if totals is not None else None, end is not None and len(merged) > end)


R = TypeVar("R")
CAS_ATTEMPTS = 60


async def optimistic(attempt: Callable[[], Awaitable[R]]) -> R:
    """Runs a read-modify-write until its conditional write lands (the item did not change between
    the read and the write), backing off between attempts."""
    for i in range(CAS_ATTEMPTS):
        try:
            return await attempt()
        except ConditionFailed:
            await asyncio.sleep(backoff(i))
    raise ConflictError(f"the item kept changing concurrently; gave up after {CAS_ATTEMPTS} attempts")


def put(item: Item, condition: str | None = None, values: Mapping[str, Any] | None = None) -> Item:
    """A Put action of TransactWriteItems."""
    check_key_sizes(item, item.get("e", {}).get("S", "record"))
    action: Item = {"Item": item}
    if condition is not None:
        action["ConditionExpression"] = condition
        if values:
            action["ExpressionAttributeValues"] = dict(values)
    return {"Put": action}
