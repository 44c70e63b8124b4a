"""Per-key counters: a list's total is read with its page (one BatchGetItem), never counted item by
item. Each counter is kept exact by the transaction that writes what it counts (docs/dynamodb.md §4).

A *group* is a GSI partition a list reads (``MSGS#T#<threadId>``, ``THREADS``, ``WFRUNS#W#<name>``,
…): an item belongs to the groups its ``gsiNpk`` attributes name. Every write of a counted record is
conditional on what its item held (absent, or the version ``v`` last seen) and adds the difference
between the groups it leaves and the groups it joins to their counters, in the same transaction. A
write that guessed wrong (the item was there after all, or changed) fails its condition, learns the
item from the failure (``ALL_OLD``) and is rebuilt — so a re-saved record never counts twice.

A counter is ``SHARDS`` items (``pk = COUNT#<group>``, ``sk = <shard>``): each write adds to a random
shard, so concurrent writers of one busy group (``THREADS``, ``ROOTS``) rarely touch the same item;
the total is the sum of the shards."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..core.coalesce import WriteGroups
from ..errors import ConflictError
from .connection import ConditionFailed, Connection, Item, backoff
from .items import n, part_keys, s

SHARDS = 4
TX_ACTIONS = 100  # TransactWriteItems' limit
TX_BYTES = 3_500_000  # under its 4 MB limit, leaving room for keys and expressions
ATTEMPTS = 60


def counter_key(group: str, shard: int) -> Item:
    return {"pk": s(f"COUNT#{group}"), "sk": s(str(shard))}


def expect(old: Item | None, values: dict[str, Any]) -> str:
    """A condition that the item is still ``old``: absent, or at the version read (an item written
    before versions existed has none)."""
    if old is None:
        return "attribute_not_exists(pk)"
    if "v" in old:
        values[":old_v"] = old["v"]
        return "v = :old_v"
    return "attribute_exists(pk) AND attribute_not_exists(v)"


def size_of(action: Item) -> int:
    """About what an action adds to a transaction's 4 MB: its payload bytes (a Put's item or an
    Update's values) plus a generous allowance for keys and the other attributes."""
    body = next(iter(action.values()))
    values = [*body.get("Item", {}).values(), *body.get("ExpressionAttributeValues", {}).values()]
    return sum(len(v["B"]) for v in values if "B" in v) + 1024


@dataclass
class Write:
    """One record's change, rebuilt from ``old`` (what its main item holds, as far as is known):

    - ``put``: ``items`` (main first, then parts) replace the record;
    - ``merge``: the main item's attributes are set, except ``once`` and ``c``, which keep the
      values an existing item has (an upsert that keeps a record's creation time), parts put; an
      attribute of ``derive`` that the existing item lacks takes the value of the attribute it names
      (a run that gains a resource is ordered by its original creation time);
    - ``delete``: the record and its parts go (nothing is done if ``old`` is None)."""

    mode: Literal["put", "merge", "delete"]
    items: list[Item]
    old: Item | None = None
    once: Mapping[str, Any] = field(default_factory=dict)
    derive: Mapping[str, str] = field(default_factory=dict)

    def actions(self, condition: str | None = None, values: dict[str, Any] | None = None) -> list[Item]:
        """The record's actions, the main item's first and conditional on ``old`` (or on
        ``condition``, with its ``values``)."""
        main, *parts = self.items
        key = {"pk": main["pk"], "sk": main["sk"]}
        values = dict(values or {})
        if self.mode == "merge" and self.old is None and condition is None:
            # Guessed new: a Put of what the merge would create (a transaction of 80 messages as
            # Puts runs 20-25% faster on DynamoDB Local than as Updates with if_not_exists).
            return Write("put", [{**main, **self.once, "c": main["c"]}, *parts]).actions()
        condition = condition or expect(self.old, values)
        if self.mode == "delete":
            if self.old is None:
                return []
            deletes = [{"Delete": {"Key": k}} for k in part_keys(self.old)]
            body = {"Key": key, "ConditionExpression": condition}
            return [{"Delete": _returning(body, values)}, *deletes]
        if self.mode == "put":
            version = int(self.old["v"]["N"]) if self.old is not None and "v" in self.old else 0
            body = {"Item": {**main, "v": n(version + 1)}, "ConditionExpression": condition}
            return [{"Put": _returning(body, values)}, *({"Put": {"Item": p}} for p in parts)]
        names: dict[str, str] = {}
        first = {**self.once, "c": main["c"]}
        for k, source in self.derive.items():
            if k in main and self.old is not None and k not in self.old and source in self.old:
                first[k] = self.old[source]
        sets, i = [], 0
        for k, v in main.items():
            if k in ("pk", "sk", "v"):
                continue
            names[f"#a{i}"], values[f":a{i}"] = k, first.get(k, v)
            sets.append(f"#a{i} = if_not_exists(#a{i}, :a{i})" if k in first else f"#a{i} = :a{i}")
            i += 1
        for k, v in first.items():
            if k not in main:
                names[f"#a{i}"], values[f":a{i}"] = k, v
                sets.append(f"#a{i} = if_not_exists(#a{i}, :a{i})")
                i += 1
        values[":zero"], values[":one"] = n(0), n(1)
        sets.append("v = if_not_exists(v, :zero) + :one")
        removes = []
        for k in ("z", "n"):  # a record that is no longer compressed or split
            if k not in main:
                names[f"#{k}"] = k
                removes.append(f"#{k}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        body = {
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        return [{"Update": _returning(body, values)}, *({"Put": {"Item": p}} for p in parts)]

    def in_place(self, attrs: Sequence[str]) -> dict[str, Any]:
        """An UpdateItem of a merge that holds only if the item exists in the groups it names
        (``attrs``): no counter moves, so it needs no transaction."""
        main = self.items[0]
        values = {f":g{i}": main[a] for i, a in enumerate(attrs) if a in main}
        same = [f"{a} = :g{i}" for i, a in enumerate(attrs) if a in main]
        (action,) = self.actions(" AND ".join(["attribute_exists(pk)", *same]), values)
        return dict(action["Update"])

    def after(self) -> Item | None:
        """The main item as the write leaves it (what its groups are read from)."""
        if self.mode == "delete":
            return None
        main = self.items[0]
        return {**self.old, **main} if self.mode == "merge" and self.old is not None else main


def _key(write: Write) -> tuple[str, str]:
    main = write.items[0]
    return main["pk"]["S"], main["sk"]["S"]


def _returning(body: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    if values:
        body["ExpressionAttributeValues"] = values
    body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"  # a failed guess learns the item
    return body


class Counting:
    """The groups a domain counts, and the transactions that keep their counters."""

    SEEN = 10_000

    def __init__(self, conn: Connection, domain: str, indexes: Sequence[str]) -> None:
        self.conn = conn
        self.domain = domain
        self.attrs = tuple(f"{i}pk" for i in indexes)
        # Keys this store wrote lately: a hint (never trusted for correctness) that the next merge
        # of the same record updates it in place — a run's snapshot is persisted at every step.
        self.seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        # How the last merge of a key not seen turned out: existing records (another process wrote
        # them, or this one before a restart) are then first tried in place too, new ones not.
        self.existing = False
        self._saves: WriteGroups[tuple[str, str], Write] = WriteGroups(self._save_alone, self._save_together)
        self._replaces: WriteGroups[tuple[str, str], Write] = WriteGroups(self._replace_one, self._replace_many)

    async def save(self, write: Write) -> None:
        """One record with its counters. A merge of a record this store wrote lately is first tried
        as one UpdateItem that holds if it is still in the same groups — and so is a merge of any
        record while the last record new to this store turned out to exist already (a run written
        before a restart, or by another process); otherwise (or if that fails) ``commit``. Other
        saves that arrive while one is in flight share a ``commit`` per group of up to 8 records —
        one transaction, the counters of all of them added up (core/coalesce.py)."""
        key = _key(write)
        merge = write.mode == "merge" and len(write.items) == 1
        seen = key in self.seen
        if merge and (seen or self.existing):
            done, write.old = await self.conn.update_if(**write.in_place(self.attrs))
            if not seen:
                self.existing = done or write.old is not None
            if done:
                self._remember([write])
                return
            await self._save_alone(write)
            return
        await self._saves.write(key, write)
        if merge:
            self.existing = write.old is not None  # learned by the commit when the guess was wrong

    async def _save_alone(self, write: Write) -> None:
        await self.commit([write])
        self._remember([write])

    async def _save_together(self, writes: Sequence[Write]) -> None:
        await self.commit(writes)
        self._remember(writes)

    async def replace(self, write: Write) -> None:
        """A read-modify-write's write, conditional on ``write.old`` (``ConditionFailed`` if the item
        changed). One of a single item shares a transaction with others in flight (up to 8 items
        and their counters: always one transaction); in a group that fails, each is sent again on
        its own, so only a write whose item changed fails."""
        if len(write.items) == 1:
            await self._replaces.write(_key(write), write)
        else:
            await self._replace_one(write)

    async def _replace_one(self, write: Write) -> None:
        await self.commit([write], learn=False)

    async def _replace_many(self, writes: Sequence[Write]) -> None:
        await self.commit(writes, learn=False)

    def _remember(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if write.mode == "merge":
                key = _key(write)
                self.seen[key] = None
                self.seen.move_to_end(key)
        while len(self.seen) > self.SEEN:
            self.seen.popitem(last=False)

    @property
    def entity(self) -> str:
        return f"counter.{self.domain}"

    def groups(self, item: Item | None) -> set[str]:
        return set() if item is None else {item[a]["S"] for a in self.attrs if a in item}

    def item(self, group: str, total: int) -> Item:
        """A counter's first shard holding ``total`` (a rebuild writes it; the other shards are gone)."""
        return {**counter_key(group, 0), "cnt": n(total), "e": s(self.entity)}

    def delta(self, changes: Iterable[tuple[Item | None, Item | None]]) -> Counter[str]:
        """How each group's count moves when items go from ``before`` to ``after``."""
        moved: Counter[str] = Counter()
        for before, after in changes:
            old, new = self.groups(before), self.groups(after)
            moved.update(dict.fromkeys(new - old, 1))
            moved.subtract(dict.fromkeys(old - new, 1))
        return moved

    def actions(self, moved: Mapping[str, int]) -> list[Item]:
        """An ADD to one random shard of each group whose count moves."""
        return [
            {
                "Update": {
                    "Key": counter_key(group, random.randrange(SHARDS)),
                    "UpdateExpression": "ADD #n :d SET #e = :e",
                    "ExpressionAttributeNames": {"#n": "cnt", "#e": "e"},
                    "ExpressionAttributeValues": {":d": n(by), ":e": s(self.entity)},
                }
            }
            for group, by in sorted(moved.items())
            if by
        ]

    def changes(self, changes: Iterable[tuple[Item | None, Item | None]]) -> list[Item]:
        return self.actions(self.delta(changes))

    async def totals(self, groups: Sequence[str]) -> list[int]:
        """Each group's count: every shard of every group in one BatchGetItem (up to 25 groups)."""
        keys = [counter_key(g, shard) for g in groups for shard in range(SHARDS)]
        found: Counter[str] = Counter()
        for item in await self.conn.batch_get(keys):
            found[item["pk"]["S"][len("COUNT#") :]] += int(item["cnt"]["N"])
        return [found[g] for g in groups]

    async def drop_if_empty(self, group: str) -> None:
        """Deletes a group's counter items when they sum to zero (a deleted thread's message count),
        in one transaction conditional on every shard still holding what was read — a write that
        lands meanwhile keeps them (or recreates a shard), so the count stays exact."""
        shards = await self.conn.batch_get([counter_key(group, shard) for shard in range(SHARDS)])
        total = sum(int(item["cnt"]["N"]) for item in shards)
        if not shards or total != 0:
            return
        deletes = [
            {
                "Delete": {
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "ConditionExpression": "cnt = :seen",
                    "ExpressionAttributeValues": {":seen": item["cnt"]},
                }
            }
            for item in shards
        ]
        with contextlib.suppress(ConditionFailed):  # counted meanwhile: the items stay, still exact
            await self.conn.transact(deletes)

    async def commit(
        self,
        writes: Sequence[Write],
        *,
        learn: bool = True,
        tail: Tail | None = None,
    ) -> None:
        """``writes`` with their counters, in as few transactions as the service allows (each
        record's actions together; one transaction for up to ~100 items / 3.5 MB; ``tail``'s actions
        ride with the last). A write whose condition fails is rebuilt from the item the failure
        returns (``learn``) — or, for a read-modify-write that must start over, ``ConditionFailed``
        is raised."""
        room = tail.room if tail else 0
        chunks = self._chunks(writes, room)
        while chunks:
            chunk = chunks.pop(0)
            last = not chunks
            for attempt in range(ATTEMPTS):
                built = [w.actions() for w in chunk]
                actions = [a for acts in built for a in acts]
                counters = self.changes((w.old, w.after()) for w in chunk)
                if len(chunk) > 1 and len(actions) + len(counters) + room > TX_ACTIONS:
                    # What was learned moved records between groups: more counters than planned.
                    chunks[:0] = self._chunks(chunk, room)
                    break
                extra = tail.actions() if last and tail else []
                if not actions and not extra and not counters:
                    break
                try:
                    await self.conn.transact([*actions, *counters, *extra])
                    self._saw(chunk)
                    break
                except ConditionFailed as failed:
                    reasons = failed.reasons
                    at, missed = 0, False
                    for write, acts in zip(chunk, built, strict=True):
                        if acts and reasons[at].get("Code") == "ConditionalCheckFailed":
                            if not learn:
                                raise
                            write.old, missed = reasons[at].get("Item"), True
                        at += len(acts)
                    rest = reasons[len(actions) + len(counters) :]
                    if extra and tail and any(r.get("Code") == "ConditionalCheckFailed" for r in rest):
                        tail.failed(rest)
                    elif not missed:
                        raise
                    if attempt:  # the first miss is a guess corrected; later ones are races
                        await asyncio.sleep(backoff(attempt))
            else:
                raise ConflictError(f"items kept changing concurrently; gave up after {ATTEMPTS} attempts")

    def _saw(self, writes: Sequence[Write]) -> None:
        for write in writes:
            if write.mode == "delete":
                self.seen.pop((write.items[0]["pk"]["S"], write.items[0]["sk"]["S"]), None)

    def _chunks(self, writes: Sequence[Write], room: int) -> list[list[Write]]:
        chunks: list[list[Write]] = [[]]
        actions = size = 0
        groups: set[str] = set()
        for write in writes:
            acts = write.actions()
            grow = sum(size_of(a) for a in acts)
            joined = groups | self.groups(write.old) | self.groups(write.after())
            if chunks[-1] and (actions + len(acts) + len(joined) + room > TX_ACTIONS or size + grow > TX_BYTES):
                chunks.append([])
                actions = size = 0
                joined = self.groups(write.old) | self.groups(write.after())
            chunks[-1].append(write)
            actions += len(acts)
            size += grow
            groups = joined
        return chunks


class Tail(Protocol):
    """Actions that ride with the last transaction of a commit and are adjusted when their own
    conditions fail (a thread's ``updatedAt`` bump: see ``MemoryDynamoDB``)."""

    @property
    def room(self) -> int:
        """How many actions the tail may add (kept free in the last transaction)."""

    def actions(self) -> list[Item]: ...

    def failed(self, reasons: list[Item]) -> None:
        """The tail's own reasons, one per action it added."""
