"""Span batches as columns for one columnar insert."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._record_rules import new_spans
from ..types import SpanRecord
from .base import CHCodec


def span_columns(codec: CHCodec[SpanRecord], spans: Sequence[SpanRecord | Mapping[str, Any]]) -> list[list[Any]]:
    """The batch, validated like every backend's (``new_spans``: the value contract, ids, timestamps),
    laid out as insert columns (``created_at``/``updated_at`` set to now)."""
    return codec.column_data(new_spans(spans))
