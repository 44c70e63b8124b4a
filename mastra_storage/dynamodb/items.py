"""How records become items: keys, the payload (compressed and split past DynamoDB's 400 KB item
limit), attribute values, and the expressions queries filter with.

Every item carries ``pk``/``sk``, ``e`` (its entity) and ``d`` (the record as msgspec JSON, zlib-
compressed when ``z`` is set). A payload still too large after compression is cut into chunks: the
main item holds the first and ``n`` (how many), part items ``<sk>#P#<i>`` in the same partition hold
the rest, written in the same transaction and read back transparently.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..core.codec import iso, to_utc_ms
from ..core.validate import is_filter_key
from ..errors import ValidationError
from .connection import Connection, Item, check_key_sizes

COMPRESS_OVER = 16 * 1024  # smaller payloads are stored as they are: zlib would cost more than it saves
OFF_LOOP_OVER = 128 * 1024  # larger payloads are compressed on a worker thread
PART_BYTES = 350 * 1024  # a chunk plus its item's keys and attributes stays under 400 KB
MAX_PARTS = 10  # ~3.5 MB compressed: what one TransactWriteItems (4 MB) can carry


def esc(value: str) -> str:
    """A user value inside a key: ``#`` (our separator) and ``%`` escaped, case kept, so distinct ids
    never collide and ``a#b`` + ``c`` differs from ``a`` + ``b#c``."""
    return value.replace("%", "%25").replace("#", "%23")


def when(moment: datetime) -> str:
    """A timestamp inside a sort key: fixed-width ISO text, which sorts as time does."""
    return iso(moment)


def millis(moment: datetime) -> int:
    return int(to_utc_ms(moment).timestamp() * 1000)


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: int | float) -> dict[str, str]:
    return {"N": repr(value) if isinstance(value, float) else str(value)}


def scalar(value: object) -> dict[str, Any] | None:
    """A JSON scalar as an attribute value (None when it has no exact DynamoDB form)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int) and len(str(abs(value))) <= 38:
        return {"N": str(value)}
    if isinstance(value, float) and (value == 0 or 1e-130 <= abs(value) < 1e126):  # DynamoDB's number range
        return {"N": repr(value)}
    return None


def scalar_map(values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The top-level scalar values of a metadata-like mapping, as a map attribute filters can test
    (only keys a filter may name: DynamoDB refuses an empty attribute name; the record keeps them all)."""
    out: dict[str, Any] = {}
    for k, v in (values or {}).items():
        attr = scalar(v) if is_filter_key(k) else None
        if attr is not None:
            out[k] = attr
    return {"M": out}


async def compress(body: bytes) -> tuple[bytes, bool]:
    """``body`` zlib-compressed if it is large enough to gain (on a worker thread when compressing
    it would hold the event loop up: ~50 ms per MB of hard-to-compress data)."""
    if len(body) <= COMPRESS_OVER:
        return body, False
    if len(body) <= OFF_LOOP_OVER:
        return zlib.compress(body, 6), True
    return await asyncio.to_thread(zlib.compress, body, 6), True


async def decompress(body: bytes) -> bytes:
    return zlib.decompress(body) if len(body) <= OFF_LOOP_OVER // 4 else await asyncio.to_thread(zlib.decompress, body)


def pack(pk: str, sk: str, entity: str, body: bytes, compressed: bool, extra: Mapping[str, Any]) -> list[Item]:
    """The main item (first) and its part items for a payload; ``extra`` goes on every one of them
    (the TTL attribute, so parts expire with their record)."""
    attrs: Item = {"pk": s(pk), "sk": s(sk), "e": s(entity), **extra}
    check_key_sizes(attrs, entity)
    if compressed:
        attrs["z"] = n(1)
    if len(body) <= PART_BYTES:
        attrs["d"] = {"B": body}
        return [attrs]
    chunks = [body[i : i + PART_BYTES] for i in range(0, len(body), PART_BYTES)]
    if len(chunks) > MAX_PARTS:
        raise ValidationError(
            f"{entity} {pk} is {len(body)} bytes after compression; the DynamoDB store keeps at most "
            f"{MAX_PARTS * PART_BYTES} bytes per record"
        )
    attrs["d"] = {"B": chunks[0]}
    attrs["n"] = n(len(chunks))
    parts = [
        {"pk": s(pk), "sk": s(part_sk(sk, i)), "e": s(f"{entity}.part"), "d": {"B": chunk}, **extra}
        for i, chunk in enumerate(chunks[1:], start=1)
    ]
    return [attrs, *parts]


def part_sk(sk: str, index: int) -> str:
    return f"{sk}#P#{index:04d}"


def part_keys(item: Item) -> list[Item]:
    count = int(item["n"]["N"]) if "n" in item else 1
    return [{"pk": item["pk"], "sk": s(part_sk(item["sk"]["S"], i))} for i in range(1, count)]


async def payloads(conn: Connection, items: Sequence[Item]) -> list[bytes]:
    """The record bytes of each item, fetching the parts of split ones (one BatchGetItem for all)."""
    wanted = [k for item in items if "n" in item for k in part_keys(item)]
    parts: dict[tuple[str, str], bytes] = {}
    if wanted:
        for part in await conn.batch_get(wanted):
            parts[(part["pk"]["S"], part["sk"]["S"])] = part["d"]["B"]
    bodies = []
    for item in items:
        body = item["d"]["B"]
        if "n" in item:
            body = b"".join([body, *(parts[(k["pk"]["S"], k["sk"]["S"])] for k in part_keys(item))])
        bodies.append(await decompress(body) if "z" in item else body)
    return bodies


def now_seconds() -> int:
    return int(time.time())


class Expr:
    """Builds a request's expressions with placeholder names and values, so attribute names that
    are reserved words or user metadata keys are never spliced into expression text."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}
        self.filters: list[str] = []

    def name(self, *path: str) -> str:
        refs = []
        for part in path:
            ref = next((r for r, v in self.names.items() if v == part), None)
            if ref is None:
                ref = f"#a{len(self.names)}"
                self.names[ref] = part
            refs.append(ref)
        return ".".join(refs)

    def value(self, attr: Mapping[str, Any]) -> str:
        ref = f":v{len(self.values)}"
        self.values[ref] = dict(attr)
        return ref

    def where(self, clause: str) -> None:
        self.filters.append(clause)

    def equals(self, attr: str, value: str) -> None:
        self.where(f"{self.name(attr)} = {self.value(s(value))}")

    def map_equals(self, attr: str, values: Mapping[str, Any]) -> None:
        """``attr.<k> = v`` for each entry: type-exact (1, true and "1" differ)."""
        for k, v in values.items():
            attr_value = scalar(v)
            if attr_value is None:  # not representable, so nothing stored can equal it
                self.where(f"attribute_exists({self.name('__never__')})")
            else:
                self.where(f"{self.name(attr, k)} = {self.value(attr_value)}")

    def live(self, ttl_attribute: str) -> None:
        """Leaves out items whose TTL has passed: DynamoDB deletes them lazily."""
        name = self.name(ttl_attribute)
        self.where(f"(attribute_not_exists({name}) OR {name} > {self.value(n(now_seconds()))})")

    def kwargs(self, key_condition: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"KeyConditionExpression": key_condition, **extra}
        if self.filters:
            out["FilterExpression"] = " AND ".join(self.filters)
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def time_bounds(
    start: datetime | None, end: datetime | None, start_exclusive: bool = False, end_exclusive: bool = False
) -> tuple[str | None, str | None]:
    """Sort-key bounds for ``<time>#<id>`` keys: ``#`` sorts before ``$``, so ``<start>$`` is past
    every key at ``start`` and ``<end>$`` past every key at ``end``."""
    lo = when(start) + ("$" if start_exclusive else "") if start is not None else None
    hi = when(end) + ("" if end_exclusive else "$") if end is not None else None
    return lo, hi


def expired(item: Item, ttl_attribute: str) -> bool:
    value = item.get(ttl_attribute)
    return value is not None and "N" in value and float(value["N"]) <= now_seconds()


def keys_of(items: Iterable[Item]) -> list[Item]:
    return [{"pk": i["pk"], "sk": i["sk"]} for i in items]


def with_parts(items: Iterable[Item]) -> list[Item]:
    """The keys of records' items and of their part items: what deleting the records deletes."""
    return [k for item in items for k in [*part_keys(item), {"pk": item["pk"], "sk": item["sk"]}]]
