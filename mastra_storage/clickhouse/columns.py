"""Span batches straight to columns: validation and layout in one pass over each column.

A batch of ``SpanRecord`` instances is checked column by column — each field's type (what msgspec
would check), the value contract of ``_validate`` over whole columns (payload columns in one JSON
round trip, text columns in one pass), ids, timestamps — while the columnar insert is built, instead
of re-decoding every span (which halves ingest). Other inputs (mappings, mixed) go through the
general validation (``new_spans``).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..core.codec import dumps, utc_now
from ..core.validate import check_json_items, check_texts, require_ids
from ..domains.record_rules import new_spans
from ..errors import ValidationError
from ..types import SpanRecord, check_timestamp
from .base import CHCodec

_NONE = type(None)


def _kinds(type_: Any) -> tuple[frozenset[type], str]:
    """(the Python types a column's values may have, what it is: "text", "timestamp", "json", "plain")."""
    if type_ is str:
        return frozenset({str}), "text"
    if type_ == str | None:
        return frozenset({str, _NONE}), "text"
    if type_ is bool:
        return frozenset({bool}), "plain"
    if type_ is datetime:
        return frozenset({datetime}), "timestamp"
    if type_ == datetime | None:
        return frozenset({datetime, _NONE}), "timestamp"
    if type_ == dict[str, Any] | None:
        return frozenset({dict, _NONE}), "json"
    if type_ == list[str] | None:
        return frozenset({list, _NONE}), "json"
    return frozenset(), "json"  # Any: the value contract decides


_KINDS = {f.name: _kinds(f.type) for f in msgspec.structs.fields(SpanRecord)}


def span_columns(codec: CHCodec[SpanRecord], spans: Sequence[SpanRecord | Mapping[str, Any]]) -> list[list[Any]]:
    """The validated batch as insert columns (``created_at``/``updated_at`` set to now)."""
    if not all(type(s) is SpanRecord for s in spans):
        return codec.column_data(new_spans(spans))
    now = utc_now()
    columns: list[list[Any]] = []
    for attr, _, kind in codec.fields:
        if attr in ("created_at", "updated_at"):
            columns.append([now] * len(spans))
            continue
        values = list(map(operator.attrgetter(attr), spans))  # C loops throughout, not a Python one per span
        allowed, what = _KINDS[attr]
        if allowed and not set(map(type, values)) <= allowed:
            bad = next(v for v in values if type(v) not in allowed)
            raise ValidationError(f"invalid span: {attr} = {bad!r:.80} has the wrong type", details={"field": attr})
        path = f"span.{attr}"
        if attr in ("trace_id", "span_id"):
            require_ids(values, path)
        elif what == "text":
            check_texts(values, path)
        elif what == "timestamp":
            present = [v for v in values if v is not None]
            # Records normalize their timestamps when built; anything set on them later is checked here.
            if (
                set(map(operator.attrgetter("tzinfo"), present)) - {UTC}
                or min(map(operator.attrgetter("year"), present), default=1000) < 1000
            ):
                values = [check_timestamp(v, path) if v is not None else None for v in values]
        elif what == "json":
            check_json_items(values, path)
            if attr == "tags" and not all(type(t) is str for v in values if v for t in v):
                raise ValidationError(f"invalid span: {attr} must be a list of strings", details={"field": attr})
        if kind == "jsonb":
            values = [dumps(v) if v is not None else None for v in values]
        columns.append(values)
    return columns
