"""Input validation shared by every backend: it runs before anything is written."""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec
import msgspec.inspect

from ..errors import ValidationError
from ..types import DateRange, PerPage, check_timestamp
from .codec import join_json_arrays

T = TypeVar("T", bound=msgspec.Struct)

_METADATA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_FORBIDDEN_KEYS = frozenset({"__proto__", "prototype", "constructor"})
Scalar = str | int | float | bool | None


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()

# ---------------------------------------------------------------- the value contract
# Payloads (metadata, content, snapshots, span attributes, ...) are JSON values: objects with string
# keys, arrays (a tuple is taken as an array), strings, booleans, null, integers (of any size: every
# backend keeps them exactly; metadata filter values stay within 64 bits) and finite floats, nested
# at most MAX_JSON_DEPTH deep. No string anywhere (ids and text fields included) holds a NUL
# character or a lone surrogate: PostgreSQL cannot store NUL in text or jsonb, and a lone surrogate
# is not UTF-8. Everything else is a ValidationError naming the path.
MAX_JSON_DEPTH = 500  # deterministic, and below what msgspec, SQLite's JSON (1000) and jsonb handle
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _suspicious(encoded: bytes) -> bool:
    """What the JSON text alone can flag cheaply (it may be inside a string: the walk decides): a NUL,
    or more brackets than MAX_JSON_DEPTH (only then can a value be nested too deep)."""
    return _has_nul(encoded) or _many_brackets(encoded)


def _has_nul(encoded: bytes) -> bool:
    """A NUL character, which msgspec writes as ``\\u0000``. Most texts hold no backslash at all,
    which one ``memchr`` pass tells (42 KB: 7.5 -> 0.4 µs); the others are searched from the end:
    the reverse search skips on the rare backslash, the forward one on the common ``0``."""
    return encoded.find(b"\\") >= 0 and encoded.rfind(b"\\u0000") >= 0


_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[{")


def _many_brackets(encoded: bytes) -> bool:
    """More opening brackets than MAX_JSON_DEPTH: only then may a value nest too deep. A shorter
    text cannot hold that many pairs; a longer one is counted in one pass (deleting every other
    byte: 42 KB 14.6 µs, where two counts took 24.2)."""
    return len(encoded) > 2 * MAX_JSON_DEPTH and len(encoded.translate(None, _NOT_BRACKETS)) > MAX_JSON_DEPTH


_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


def _too_deep(encoded_batch: bytes) -> bool:
    """Whether a record of an encoded batch may nest more than MAX_JSON_DEPTH deep: only one with more
    brackets than that can. Each record's raw JSON is sliced out and counted, every step a C loop."""
    return any(map(_many_brackets, map(bytes, _RAW_ITEMS.decode(encoded_batch))))


def check_text(value: str, path: str) -> str:
    if "\x00" in value:
        raise ValidationError(f"{path} contains a NUL character (not storable on every backend)", status="INVALID_TEXT")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{path} contains a lone surrogate (not UTF-8)", status="INVALID_TEXT") from exc
    return value


def _explain(value: object, path: str, depth: int) -> None:
    """Walks ``value`` and raises a ValidationError at the first thing the contract does not allow."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(f"{path} is nested deeper than {MAX_JSON_DEPTH} levels", status="INVALID_JSON")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        check_text(value, path)
    elif isinstance(value, int):
        pass
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{path}: {value} is not a finite number", status="INVALID_JSON")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{path}: key {key!r} is not a string", status="INVALID_JSON")
            check_text(key, f"{path} key {key[:40]!r}")
            _explain(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _explain(item, f"{path}[{i}]", depth + 1)
    else:
        raise ValidationError(
            f"{path}: a {type(value).__name__} is not a JSON value (use dict, list, str, int, float, bool or None)",
            status="INVALID_JSON",
        )


def check_json(value: object, path: str) -> Any:
    """``value`` as stored — checked against the value contract, tuples become lists — or a
    ValidationError naming the first bad path. The common case costs one JSON round trip in C."""
    return check_json_text(value, path)[0]


def check_json_text(value: object, path: str) -> tuple[Any, bytes]:
    """``check_json``, and the value's JSON: what the check encoded, which encoding the checked
    copy would give again (so a backend writing JSON text need not)."""
    try:
        encoded = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        _explain(value, path, 0)
        raise ValidationError(f"{path} is not a JSON value: {exc}", status="INVALID_JSON") from exc
    decoded = _DECODER.decode(encoded)
    if _suspicious(encoded) or decoded != value:  # NaN, bytes, datetime, sets, int keys... change on the way
        _explain(value, path, 0)
    return decoded, encoded


def check_json_items(values: list[Any], path: str) -> None:
    """The value contract over many independent values at once (a column of a batch): one JSON round
    trip in C for all of them; a walk only to name the bad one."""
    try:
        encoded = _ENCODER.encode(values)
        with _gc_paused():  # thousands of new containers, no cycles
            clean = _DECODER.decode(encoded) == values and not _has_nul(encoded)
        clean = clean and not (_many_brackets(encoded) and _too_deep(encoded))
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        clean = False
    if not clean:
        for i, value in enumerate(values):
            _explain(value, f"{path}[{i}]", 0)


def check_texts(values: list[str | None], path: str) -> None:
    """No NUL and no lone surrogate in a column of strings (one pass in C, a search only on failure)."""
    joined = "\x01".join(v for v in values if v is not None)
    try:
        joined.encode("utf-8")
        if "\x00" not in joined:
            return
    except UnicodeEncodeError:
        pass
    for i, value in enumerate(values):
        if value is not None:
            check_text(value, f"{path}[{i}]")


def _check_record(record: msgspec.Struct, original: object, encoded: bytes, what: str) -> None:
    """The value contract over a whole record: its JSON round trip must give back what was given."""
    if not _suspicious(encoded) and record == original:
        return
    _explain_fields(original if isinstance(original, msgspec.Struct) else record, what)


def _explain_fields(value: object, what: str, timestamps: tuple[str, ...] = ()) -> None:
    """Walks the fields of a record (or a mapping given for one); its timestamp fields are the
    record's own business (``Record.__post_init__``), nested records are walked the same way."""
    if isinstance(value, Mapping):
        items = list(value.items())
    else:
        items = [(f, getattr(value, f)) for f in value.__struct_fields__]  # type: ignore[attr-defined]
        timestamps = getattr(value, "_timestamps", ())
    for name, item in items:
        if name in timestamps:
            continue
        if isinstance(item, msgspec.Struct):
            _explain_fields(item, f"{what}.{name}")
        else:
            _explain(item, f"{what}.{name}", 0)


@functools.cache
def _json_decoder(cls: type[T]) -> msgspec.json.Decoder[T]:
    return msgspec.json.Decoder(cls)


@functools.cache
def _json_list_decoder(cls: type[T]) -> msgspec.json.Decoder[list[T]]:
    return msgspec.json.Decoder(list[cls])  # type: ignore[valid-type]


@functools.cache
def _wire_names(cls: type[msgspec.Struct]) -> dict[str, tuple[str, type[msgspec.Struct] | None]]:
    """attribute name -> (wire name, the Struct type of a nested record field, if any)."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    names: dict[str, tuple[str, type[msgspec.Struct] | None]] = {}
    for f in info.fields:
        options = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        nested = next((o.cls for o in options if isinstance(o, msgspec.inspect.StructType)), None)
        names[f.name] = (f.encode_name, nested)
    return names


def _to_wire(cls: type[msgspec.Struct], value: Mapping[str, Any] | msgspec.Struct) -> dict[str, Any]:
    """A mapping (or Struct) keyed by attribute names, rewritten to wire names, nested records too."""
    names = _wire_names(cls)
    raw = {f: getattr(value, f) for f in value.__struct_fields__} if isinstance(value, msgspec.Struct) else value
    wire: dict[str, Any] = {}
    for key, item in raw.items():
        encode_name, nested = names.get(key, (key, None))
        if nested is not None and isinstance(item, Mapping | msgspec.Struct):
            item = _to_wire(nested, item)
        wire[encode_name] = item
    return wire


def coerce(cls: type[T], value: object, what: str) -> T:
    """A validated ``cls`` from a Struct or a mapping with snake_case (or camelCase) keys.

    A Struct built by its constructor is not type-checked by msgspec, so it is validated the same
    way as a mapping: its fields go through ``msgspec.convert``.
    """
    if not isinstance(value, msgspec.Struct | Mapping):
        raise ValidationError(f"{what} must be a {cls.__name__} or a mapping, got {type(value).__name__}")
    try:
        decoder: msgspec.json.Decoder[T] = _json_decoder(cls)
        if type(value) is cls:  # the common case, validated by a JSON round trip in C
            encoded = _ENCODER.encode(value)
            record = decoder.decode(encoded)
            _check_record(record, value, encoded, what)
            return record
        record = msgspec.convert(_to_wire(cls, value), cls)
        encoded = _ENCODER.encode(record)
        _check_record(decoder.decode(encoded), record, encoded, what)
        return record
    except ValidationError:
        raise
    except msgspec.EncodeError as exc:
        raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # a lone surrogate, an unencodable value
        _explain_fields(value, what, getattr(cls, "_timestamps", ()))
        raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc


_CHUNK = 500


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def coerce_many(cls: type[T], values: Sequence[object], what: str) -> list[T]:
    """``coerce`` for a batch; a batch made only of ``cls`` instances is validated in one JSON round trip
    (anything that does not come back equal is checked record by record, for the precise error)."""
    return _coerce_batch(cls, values, what)[0]


def coerce_many_json(cls: type[T], values: Sequence[object], what: str) -> tuple[list[T], bytes]:
    """``coerce_many``, and the batch as one JSON array that decodes to records equal to those
    returned: the text the validation encoded, where its records came back equal (timestamps as
    the same instants, with explicit offsets), so a backend that sends JSON need not encode again."""
    records, texts = _coerce_batch(cls, values, what)
    return records, _ENCODER.encode(records) if texts is None else join_json_arrays(texts)


def _coerce_batch(cls: type[T], values: Sequence[object], what: str) -> tuple[list[T], list[bytes] | None]:
    """The records, and the JSON of each chunk when every chunk came back equal from its round trip."""
    if all(type(v) is cls for v in values):
        try:
            decoder: msgspec.json.Decoder[list[T]] = _json_list_decoder(cls)
            out: list[T] = []
            texts: list[bytes] | None = []
            with _gc_paused():  # decoding a large batch makes no cycles; collections would only slow it
                # In chunks: one C call holds the GIL throughout, and a worker thread doing this must
                # let the event loop's thread run in between.
                for i in range(0, len(values), _CHUNK):
                    chunk = values[i : i + _CHUNK]
                    encoded = _ENCODER.encode(chunk)
                    decoded = decoder.decode(encoded)
                    suspicious = _has_nul(encoded)
                    if not suspicious and _many_brackets(encoded):  # many records: count each
                        suspicious = _too_deep(encoded)
                    if suspicious or decoded != list(chunk):
                        decoded, texts = [coerce(cls, v, what) for v in chunk], None
                    elif texts is not None:
                        texts.append(encoded)
                    out += decoded
            return out, texts
        except ValidationError:
            raise
        except (msgspec.ValidationError, msgspec.EncodeError, ValueError, TypeError, RecursionError):
            return [coerce(cls, v, what) for v in values], None  # raises the precise error
    return [coerce(cls, v, what) for v in values], None


MAX_ID_BYTES = 256  # every backend keys and indexes an id of this size (DynamoDB keys, PostgreSQL btrees)


def id_size(value: str) -> int:
    """An id's size as every backend must hold it: UTF-8 bytes, '#' and '%' counting three (DynamoDB
    escapes them inside its keys), so an id that fits one backend fits all of them."""
    return len(value.encode()) + 2 * (value.count("#") + value.count("%"))


def require_id(value: object, name: str) -> str:
    """An id: a non-blank string of at most MAX_ID_BYTES (see ``id_size``), without NUL or lone surrogates."""
    if not isinstance(value, str) or not value or value.isspace():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r:.80}", status=f"INVALID_{name}")
    if "\x00" in value or len(value) > MAX_ID_BYTES // 4 or not value.isascii():  # short ASCII ids skip the rest
        check_text(value, name)
        if id_size(value) > MAX_ID_BYTES:
            raise ValidationError(
                f"{name} is longer than {MAX_ID_BYTES} bytes (UTF-8, '#' and '%' counting three)",
                status=f"INVALID_{name}",
            )
    return value


def optional_text(value: object, name: str) -> str | None:
    """An optional string filter (``''`` is a value, e.g. an empty resource id); a wrong type is an error."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string, got {type(value).__name__}", status=f"INVALID_{name}")
    return check_text(value, name)


def require_ids(values: object, name: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationError(f"{name} must be a sequence of non-empty strings, got {values!r:.80}")
    ids = list(values)
    # The common case in a few C passes: short non-blank ASCII strings without NUL.
    if set(map(type, ids)) <= {str} and all(ids) and max(map(len, ids), default=0) <= MAX_ID_BYTES // 4:
        joined = "\x01".join(ids)
        if joined.isascii() and "\x00" not in joined and not any(map(str.isspace, ids)):
            return ids
    return [require_id(v, name) for v in ids]


def is_filter_key(key: object) -> bool:
    """Whether a metadata filter may name ``key`` (see ``check_metadata_key``)."""
    return isinstance(key, str) and _METADATA_KEY.fullmatch(key) is not None and key not in _FORBIDDEN_KEYS


def check_metadata_key(key: object) -> str:
    if not isinstance(key, str) or not _METADATA_KEY.fullmatch(key) or key in _FORBIDDEN_KEYS:
        raise ValidationError(
            f"Invalid metadata key: {key!r} (keys must match {_METADATA_KEY.pattern})",
            status="INVALID_METADATA_KEY",
            details={"key": key},
        )
    return key


def check_scalar_filter(metadata: Mapping[str, object] | None) -> dict[str, Scalar]:
    """A metadata filter whose keys are safe identifiers and whose values are JSON scalars."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"metadata filter must be a mapping, got {type(metadata).__name__}")
    checked: dict[str, Scalar] = {}
    for key, value in metadata.items():
        check_metadata_key(key)
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(
                f"Invalid metadata filter value for key {key!r}: {value!r} (must be a str, number, bool or None)",
                status="INVALID_METADATA_VALUE",
            )
        _explain(value, f"metadata filter {key!r}", 0)  # finite, no NUL: what a value may be
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"Invalid metadata filter value for key {key!r}: {value} is outside 64 bits")
        checked[key] = value
    return checked


def check_page(page: object, per_page: object) -> tuple[int, PerPage]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 0 or page > _SAFE_INTEGER:
        raise ValidationError("page must be >= 0", status="INVALID_PAGE", details={"page": page})
    if per_page is False:
        return page, False
    if isinstance(per_page, bool) or not isinstance(per_page, int):
        raise ValidationError(
            "perPage must be false or a non-negative integer",
            status="INVALID_PAGE",
            details={"perPage": per_page},
        )
    if per_page < 0:
        raise ValidationError("perPage must be >= 0", status="INVALID_PAGE", details={"perPage": per_page})
    if page * per_page + per_page > _SAFE_INTEGER:  # Mastra's "page value too large"
        raise ValidationError(
            "page value too large", status="INVALID_PAGE", details={"page": page, "perPage": per_page}
        )
    return page, per_page


_SAFE_INTEGER = 2**53 - 1  # JavaScript's: what Mastra accepts, and every backend can offset by


def check_direction(direction: object) -> str:
    if not isinstance(direction, str) or direction.upper() not in ("ASC", "DESC"):
        raise ValidationError(f"direction must be 'ASC' or 'DESC', got {direction!r}")
    return direction.upper()


def check_timestamp_order(order_by: object, direction: object) -> tuple[str, str]:
    """``order_by`` in ("created_at", "updated_at") and a direction → (Mastra's column, ASC|DESC)."""
    field = check_choice(order_by, ("created_at", "updated_at"), "order_by")
    return ("createdAt" if field == "created_at" else "updatedAt"), check_direction(direction)


def check_choice(value: object, choices: Sequence[str], name: str) -> str:
    if value not in choices:
        raise ValidationError(f"{name} must be one of {list(choices)}, got {value!r}")
    return str(value)


def check_date_range(value: object) -> DateRange | None:
    if value is None:
        return None
    return coerce(DateRange, value, "date_range")


def check_datetime(value: object, name: str) -> datetime | None:
    return None if value is None else check_timestamp(value, name)


def check_mapping(value: object, name: str) -> dict[str, Any]:
    """A JSON object under the value contract (a copy: later changes by the caller do not leak in)."""
    return check_mapping_text(value, name)[0]


def check_mapping_text(value: object, name: str) -> tuple[dict[str, Any], bytes]:
    """``check_mapping``, and its JSON (see ``check_json_text``)."""
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a mapping, got {type(value).__name__}")
    checked: tuple[dict[str, Any], bytes] = check_json_text(value if type(value) is dict else dict(value), name)
    return checked
