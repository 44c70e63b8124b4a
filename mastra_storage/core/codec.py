"""Timestamps and JSON as every backend stores them.

Timestamps are aware UTC datetimes truncated to the millisecond: that is what Mastra stores
(JavaScript ``Date``), and its ISO text form (``2024-05-01T12:00:00.123Z``) sorts correctly as text.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_JSON_ENCODER = msgspec.json.Encoder()
_JSON_DECODER = msgspec.json.Decoder()
ONE_MS = timedelta(milliseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc_ms(value: datetime | str) -> datetime:
    """Aware UTC datetime at millisecond precision; naive datetimes are taken as UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is UTC and value.microsecond % 1000 == 0:
        return value  # the common case: already normalized (e.g. read back from storage)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset() != timedelta(0) or value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utc_now() -> datetime:
    # Whole milliseconds of the clock added to the epoch: 0.8 µs, where normalizing
    # ``datetime.now(UTC)`` took 4.4 (it runs on every write that stamps a record).
    return _EPOCH + timedelta(0, 0, time.time_ns() // 1_000_000 * 1000)


def iso(value: datetime) -> str:
    """JavaScript ``Date.toISOString()`` form of an aware UTC millisecond datetime (4-digit year)."""
    # msgspec writes an aware UTC datetime as JSON ``"YYYY-MM-DDTHH:MM:SS[.ffffff]Z"`` in C (0.15 µs;
    # isoformat and its slicing took 2.3): the quotes go and the fraction becomes milliseconds.
    # Records hold normalized values, so normalizing is skipped when it would change nothing.
    if value.tzinfo is not UTC or value.microsecond % 1000:
        value = to_utc_ms(value)
    text = _JSON_ENCODER.encode(value)
    return (text[1:-5] + b"Z" if value.microsecond else text[1:-2] + b".000Z").decode()


_RANDOM_POOL = bytearray()
_RANDOM_LOCK = threading.Lock()


def new_id() -> str:
    """A random (version 4) UUID string. Random bytes come from ``os.urandom`` 4 KB at a time: one
    system call per 256 ids instead of one per id (ids are minted on every save of a new record)."""
    with _RANDOM_LOCK:
        if not _RANDOM_POOL:
            _RANDOM_POOL.extend(os.urandom(4096))
        raw = _RANDOM_POOL[-16:]
        del _RANDOM_POOL[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def from_iso(text: str) -> datetime:
    return to_utc_ms(datetime.fromisoformat(text))


def later_than(previous: datetime) -> datetime:
    """Now, or one millisecond after ``previous`` if the clock has not moved past it."""
    now = utc_now()
    return now if now > previous else previous + ONE_MS


def dumps(value: Any) -> str:
    return _JSON_ENCODER.encode(value).decode()


def loads(text: str | bytes) -> Any:
    return _JSON_DECODER.decode(text)


_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: timedelta | int | float | str) -> timedelta:
    """A retention age: a timedelta, milliseconds, or Mastra's ``"<n><ms|s|m|h|d|w>"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(milliseconds=value)
    text = value.strip().lower()
    for unit in ("ms", "s", "m", "h", "d", "w"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return timedelta(seconds=float(text[: -len(unit)]) * _UNITS[unit])
    raise ValueError(f"not a duration: {value!r} (use e.g. '30d', '12h', a timedelta or milliseconds)")


def join_json_arrays(texts: Sequence[bytes]) -> bytes:
    """JSON arrays, as msgspec writes them (``[]`` when empty), as one array of all their items."""
    if len(texts) == 1:
        return texts[0]
    return b"[" + b",".join(text[1:-1] for text in texts if text != b"[]") + b"]"


def json_in_a_string(value: object) -> bool:
    """Whether a value read from a JSON column may be Mastra's stringified JSON object or array."""
    return isinstance(value, str) and value[:1] in ("{", "[")


def decode_row(decoder: msgspec.json.Decoder[T], text: str | bytes, record: type[T]) -> T:
    """Decodes a row's JSON object into its record.

    Rows written by Mastra's TypeScript stores may hold a JSON column as a *string* of JSON (it
    stringifies some values before binding them to ``jsonb``). The fast path decodes straight into
    the record; if that fails, string values that are JSON objects or arrays are parsed first.
    """
    try:
        return decoder.decode(text)
    except msgspec.ValidationError:
        data = _JSON_DECODER.decode(text)
        for key, value in data.items():
            if json_in_a_string(value):
                with contextlib.suppress(msgspec.DecodeError):  # a plain string that starts with a bracket
                    data[key] = _JSON_DECODER.decode(value)
        return msgspec.convert(data, record)
