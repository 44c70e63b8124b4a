"""Moving records out of a store and into another, verbatim: what ``mastra-storage copy`` is built on.

Each domain names its record kinds (memory: threads, messages, resources; …) with the record type and
the attributes that key it. ``export_records`` pages through a kind in key order with an opaque
cursor — keyset paging, so a page costs the same at the millionth record as at the first; the
cursor is the last key, JSON-encoded. ``import_records`` writes records as they are, timestamps
included, replacing any with the same key: importing a page twice leaves one copy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from ..errors import ValidationError

MAX_PAGE = 5000


@dataclass(frozen=True)
class RecordKind:
    record: type[msgspec.Struct]
    keys: tuple[str, ...]  # the record's attributes that identify it, in paging order


@dataclass(frozen=True)
class RecordPage:
    """A page of records in key order; ``next`` is the cursor of the following page (None: the last)."""

    records: list[Any]
    next: str | None


def check_kind(kinds: dict[str, RecordKind], domain: str, kind: object) -> RecordKind:
    if not isinstance(kind, str) or kind not in kinds:
        raise ValidationError(f"{domain} has no record kind {kind!r}; its kinds: {sorted(kinds)}")
    return kinds[kind]


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be an int from 1 to {MAX_PAGE}, got {limit!r:.40}")
    return limit


def check_cursor(after: object) -> str | None:
    if after is not None and not isinstance(after, str):
        raise ValidationError(f"after must be a cursor export_records returned, got {after!r:.60}")
    return after


def decode_cursor(after: str | None, width: int) -> list[str] | None:
    """The ``width`` key values a cursor carries (None: from the start); anything else is a
    ``ValidationError``."""
    if after is None:
        return None
    try:
        values = json.loads(after)
    except ValueError:
        values = None
    if not isinstance(values, list) or len(values) != width or not all(isinstance(v, str) for v in values):
        raise ValidationError(f"after is not a cursor export_records returned: {after!r:.60}")
    return values


def key_cursor(spec: RecordKind, records: Sequence[Any], limit: int) -> str | None:
    """The cursor after a keyset page: the last record's key, or None when the page was the last."""
    if len(records) < limit:
        return None
    return json.dumps([getattr(records[-1], key) for key in spec.keys])


def check_records(spec: RecordKind, kind: str, records: object) -> list[Any]:
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise ValidationError(f"records must be a sequence of {spec.record.__name__}")
    checked: dict[tuple[Any, ...], Any] = {}  # by key: the last of records sharing a key wins
    for i, record in enumerate(records):
        if not isinstance(record, spec.record):
            raise ValidationError(
                f"{kind} records must be {spec.record.__name__} (as export_records returns them), "
                f"got {type(record).__name__}"
            )
        try:  # a Struct is not checked when it is built: every field's type is, here, before any write
            copy = msgspec.convert(msgspec.to_builtins(record), spec.record)
        except msgspec.ValidationError as exc:
            raise ValidationError(f"{kind}[{i}]: {exc}") from exc
        checked[tuple(getattr(copy, key) for key in spec.keys)] = copy
    return list(checked.values())
