"""Scores and spans: the checks every backend runs before writing them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from ..core.codec import utc_now
from ..core.paging import Window, window
from ..core.validate import (
    check_choice,
    check_direction,
    check_metadata_key,
    coerce,
    coerce_many,
    coerce_many_json,
    require_id,
    require_ids,
)
from ..errors import ValidationError
from ..types import SpanContext, SpanRecord, SpanUpdate, TracesFilter, check_timestamp

# Fields update_span may change: ids and createdAt are fixed, updatedAt is the store's.
SPAN_FIXED = ("trace_id", "span_id", "created_at", "updated_at")
_SPAN_TYPES = {f.name: f.type for f in msgspec.structs.fields(SpanRecord) if f.name not in SPAN_FIXED}
# list_traces filters that are plain column equality.
TRACE_EQUALITY_FILTERS = ["trace_id", "span_type", *(f.name for f in msgspec.structs.fields(SpanContext))]


def new_spans(records: object) -> list[SpanRecord]:
    """Spans to create, validated, stamped with ``created_at = updated_at = now``."""
    spans = coerce_many(SpanRecord, _span_batch(records), "span")
    _require_span_ids(spans)
    now = utc_now()
    for span in spans:
        span.created_at = span.updated_at = now
    return spans


def new_spans_json(records: object) -> tuple[list[SpanRecord], bytes]:
    """Spans to create, validated as ``new_spans`` does, unstamped, with the batch as JSON (see
    ``coerce_many_json``): for a backend that stamps them as it writes the text."""
    spans, text = coerce_many_json(SpanRecord, _span_batch(records), "span")
    _require_span_ids(spans)
    return spans, text


def _span_batch(records: object) -> Sequence[object]:
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise ValidationError("spans must be a sequence of spans")
    return records


def _require_span_ids(spans: list[SpanRecord]) -> None:
    require_ids([span.trace_id for span in spans], "span.trace_id")
    require_ids([span.span_id for span in spans], "span.span_id")


def check_span_changes(updates: object) -> dict[str, Any]:
    """A partial span update keyed by SpanRecord's snake_case names, each value type-checked."""
    if not isinstance(updates, Mapping):
        raise ValidationError("updates must be a mapping of SpanRecord field names to values")
    checked: dict[str, Any] = {}
    for key, value in updates.items():
        if key not in _SPAN_TYPES:
            raise ValidationError(f"cannot update span field {key!r}; updatable: {sorted(_SPAN_TYPES)}")
        try:
            checked[key] = msgspec.convert(value, _SPAN_TYPES[key])
        except msgspec.ValidationError as exc:
            raise ValidationError(f"invalid value for span field {key!r}: {exc}") from exc
        if key in SpanRecord._timestamps and checked[key] is not None:  # as a record's: UTC, milliseconds
            checked[key] = check_timestamp(checked[key], f"span field {key!r}")
    return checked


def check_span_updates(updates: object) -> list[tuple[str, str, dict[str, Any]]]:
    """``batch_update_spans`` input as (trace_id, span_id, changes), all validated first."""
    if isinstance(updates, str | bytes) or not isinstance(updates, Sequence):
        raise ValidationError("updates must be a sequence of SpanUpdate")
    checked = []
    for item in updates:
        upd = coerce(SpanUpdate, item, "span update")
        checked.append(
            (require_id(upd.trace_id, "trace_id"), require_id(upd.span_id, "span_id"), check_span_changes(upd.updates))
        )
    return checked


def check_trace_query(
    filters: object, page: object, per_page: object, order_by: object, direction: object
) -> tuple[Window, str, str, TracesFilter]:
    """``list_traces`` input, validated: the page window, the order field and direction, the filters."""
    win = window(page, per_page)
    field = check_choice(order_by, ("started_at", "ended_at"), "order_by")
    dir_ = check_direction(direction)
    f = coerce(TracesFilter, filters, "filters") if filters is not None else TracesFilter()
    for keys in (f.metadata, f.scope):
        for key in keys or {}:
            check_metadata_key(key)
    return win, field, dir_, f
