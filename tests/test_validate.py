"""The batch validation that hands a backend the JSON it encoded (``coerce_many_json``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from mastra_storage.core.codec import join_json_arrays
from mastra_storage.core.validate import coerce_many_json
from mastra_storage.errors import ValidationError
from mastra_storage.testing.samples import sample_span
from mastra_storage.types import SpanRecord

_SPANS = msgspec.json.Decoder(list[SpanRecord])


def test_the_json_of_a_batch_decodes_to_its_records() -> None:
    spans = [sample_span(name=f"span {i}", attributes={"i": i}) for i in range(1201)]  # three chunks of 500
    records, text = coerce_many_json(SpanRecord, spans, "span")
    assert _SPANS.decode(text) == records == spans
    assert records[0] is not spans[0]


def test_a_batch_its_round_trip_changes_is_encoded_from_its_records() -> None:
    spans = [sample_span() for _ in range(3)]
    spans[1].started_at = datetime(2026, 3, 1, 10, 0, 0, 456789)  # naive, microseconds: normalized
    records, text = coerce_many_json(SpanRecord, spans, "span")
    assert records[1].started_at == datetime(2026, 3, 1, 10, 0, 0, 456000, tzinfo=UTC)
    assert _SPANS.decode(text) == records and b"456789" not in text
    # Mappings are converted record by record, then encoded.
    mapped, text = coerce_many_json(SpanRecord, [{"trace_id": "t", "span_id": "s", "name": "n",
                                                  "span_type": "generic", "started_at": "2026-03-01T10:00:00Z"}],
                                    "span")  # fmt: skip
    assert _SPANS.decode(text) == mapped and mapped[0].trace_id == "t"


def test_a_bad_record_in_any_chunk_rejects_the_batch() -> None:
    spans = [sample_span() for _ in range(700)]
    spans[650].attributes = {"x": float("nan")}
    with pytest.raises(ValidationError, match="attributes"):
        coerce_many_json(SpanRecord, spans, "span")


def test_json_arrays_join_into_one() -> None:
    parts = [b'[{"a":1}]', b"[]", b'[{"b":2},{"c":3}]']
    assert msgspec.json.decode(join_json_arrays(parts)) == [{"a": 1}, {"b": 2}, {"c": 3}]
    assert join_json_arrays([b"[]", b"[]"]) == b"[]" and join_json_arrays([b"[1]"]) == b"[1]"
