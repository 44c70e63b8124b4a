"""Span batches straight to columns: validation and layout in one pass over each column.

For a batch of ``SpanRecord`` instances this checks every field's type column by column (the
checks msgspec would apply) while building the columnar insert, instead of re-decoding every span
first; other inputs (mappings, mixed) go through the general validation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from .._codec import dumps, to_utc_ms, utc_now
from .._record_rules import new_spans
from ..errors import ValidationError
from ..types import SpanRecord
from .base import CHCodec

Check = Callable[[Any], bool]


def _check_for(type_: Any) -> tuple[Check, bool]:
    """(does a value have this field's type, is it a timestamp)."""
    if type_ is str:
        return (lambda v: type(v) is str), False
    if type_ == str | None:
        return (lambda v: v is None or type(v) is str), False
    if type_ is bool:
        return (lambda v: type(v) is bool), False
    if type_ is datetime:
        return (lambda v: isinstance(v, datetime)), True
    if type_ == datetime | None:
        return (lambda v: v is None or isinstance(v, datetime)), True
    if type_ == dict[str, Any] | None:
        return (lambda v: v is None or type(v) is dict), False
    if type_ == list[str] | None:
        return (lambda v: v is None or (type(v) is list and all(type(x) is str for x in v))), False
    return (lambda v: True), False  # Any: JSON encoding below rejects what cannot be stored


_CHECKS = {f.name: _check_for(f.type) for f in msgspec.structs.fields(SpanRecord)}


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
        values = [getattr(s, attr) for s in spans]
        check, timestamp = _CHECKS[attr]
        if not all(map(check, values)):
            bad = next(v for v in values if not check(v))
            raise ValidationError(f"invalid span: {attr} = {bad!r} has the wrong type", details={"field": attr})
        if timestamp:
            values = [to_utc_ms(v) if v is not None else None for v in values]
        elif kind == "jsonb":
            try:
                values = [dumps(v) if v is not None else None for v in values]
            except (msgspec.EncodeError, TypeError) as exc:
                raise ValidationError(f"invalid span: {attr} cannot be stored as JSON: {exc}") from exc
        if attr in ("trace_id", "span_id") and not all(v.strip() for v in values):
            raise ValidationError(f"invalid span: {attr} must be a non-empty string", status=f"INVALID_{attr}")
        columns.append(values)
    return columns
