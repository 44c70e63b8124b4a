"""Records as JSON, and timestamps as every backend writes them: JavaScript ``Date.toISOString()`` text at
the millisecond."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from mastra_storage._sql.schema import Column, Table
from mastra_storage.core.codec import iso, to_utc_ms, utc_now
from mastra_storage.pg.codec import PGRowCodec
from mastra_storage.types import SpanRecord, TraceSpan


def _reference(value: datetime) -> str:
    return to_utc_ms(value).isoformat(timespec="milliseconds")[:-6] + "Z"


def test_iso_text_is_javascripts_at_the_millisecond() -> None:
    rng = random.Random(7)
    start, span_ms = datetime(1000, 1, 1, tzinfo=UTC), 9000 * 365 * 86_400_000
    moments = [start + timedelta(milliseconds=rng.randrange(span_ms)) for _ in range(20_000)]
    moments += [m.replace(microsecond=0) for m in moments[:2_000]]  # whole seconds: ".000Z"
    moments += [
        datetime(2024, 5, 1, 12, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2))),  # offset, microseconds
        datetime(2024, 5, 1, 12, 0, 0, 999_999),  # naive: taken as UTC
        datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
    ]
    assert [iso(m) for m in moments] == [_reference(m) for m in moments]
    assert iso(datetime(2024, 5, 1, 12, 0, tzinfo=UTC)) == "2024-05-01T12:00:00.000Z"


def test_now_is_utc_at_the_millisecond() -> None:
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    now = utc_now()
    assert now.tzinfo is UTC and now.microsecond % 1000 == 0
    assert before <= now <= datetime.now(UTC)


def test_a_spans_json_leaves_out_its_defaults_and_decodes_back_equal() -> None:
    span = SpanRecord(trace_id="t", span_id="s", name="n", span_type="generic", started_at=utc_now(), user_id="u")
    text = msgspec.json.encode(span)
    assert set(msgspec.json.decode(text)) == {"traceId", "spanId", "name", "spanType", "startedAt", "userId"}
    assert msgspec.json.decode(text, type=SpanRecord) == span
    # A trace's root span as list_traces returns it keeps every field, its status included.
    root = TraceSpan(**msgspec.structs.asdict(span))
    assert msgspec.json.decode(msgspec.json.encode(root))["status"] == "running"


def test_a_default_left_out_that_postgresql_cannot_fill_is_refused() -> None:
    # A field left out of a record's JSON is NULL in the recordset: only a default the codec can
    # write as SQL (a bool) may be left out; any other is refused, not guessed.
    class Listed(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
        id: str
        items: list[str] = msgspec.field(default_factory=list)

    class Named(msgspec.Struct, kw_only=True, rename="camel", omit_defaults=True):
        id: str
        items: str = "none"

    for record, kind in ((Listed, "jsonb"), (Named, "text")):
        table = Table("t", (Column("id", "text", primary_key=True), Column("items", kind)))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="no SQL literal"):
            PGRowCodec(record, table)
