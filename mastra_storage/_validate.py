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

from ._codec import to_utc_ms
from .errors import ValidationError
from .types import DateRange, PerPage

T = TypeVar("T", bound=msgspec.Struct)

_METADATA_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_FORBIDDEN_KEYS = frozenset({"__proto__", "prototype", "constructor"})
Scalar = str | int | float | bool | None


_ENCODER = msgspec.json.Encoder()


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
        if type(value) is cls:  # the common case, validated by a JSON round trip in C
            decoder: msgspec.json.Decoder[T] = _json_decoder(cls)
            return decoder.decode(_ENCODER.encode(value))
        return msgspec.convert(_to_wire(cls, value), cls)
    except msgspec.EncodeError as exc:
        raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc
    except msgspec.ValidationError as exc:
        raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc
    except (ValueError, TypeError) as exc:  # raised by __post_init__ on a malformed timestamp
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
    """``coerce`` for a batch; a batch made only of ``cls`` instances is validated in one JSON round trip."""
    if all(type(v) is cls for v in values):
        try:
            decoder: msgspec.json.Decoder[list[T]] = _json_list_decoder(cls)
            out: list[T] = []
            with _gc_paused():  # decoding a large batch makes no cycles; collections would only slow it
                # In chunks: one C call holds the GIL throughout, and a worker thread doing this must
                # let the event loop's thread run in between.
                for i in range(0, len(values), _CHUNK):
                    out += decoder.decode(_ENCODER.encode(values[i : i + _CHUNK]))
            return out
        except (msgspec.ValidationError, msgspec.EncodeError, ValueError, TypeError) as exc:
            raise ValidationError(f"invalid {what}: {exc}", details={"input": what}) from exc
    return [coerce(cls, v, what) for v in values]


def require_id(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, got {value!r}", status=f"INVALID_{name}")
    return value


def require_ids(values: object, name: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ValidationError(f"{name} must be a sequence of non-empty strings, got {values!r}")
    return [require_id(v, name) for v in values]


def check_metadata_key(key: object) -> str:
    if not isinstance(key, str) or not _METADATA_KEY.match(key) or key in _FORBIDDEN_KEYS:
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
        if isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(f"Invalid metadata filter value for key {key!r}: {value!r} is not finite")
        checked[key] = value
    return checked


def check_page(page: object, per_page: object) -> tuple[int, PerPage]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 0:
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
    return page, per_page


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
    if value is None:
        return None
    if isinstance(value, datetime | str):
        try:
            return to_utc_ms(value)
        except ValueError as exc:
            raise ValidationError(f"{name} is not an ISO-8601 timestamp: {value!r}") from exc
    raise ValidationError(f"{name} must be a datetime or ISO-8601 string, got {type(value).__name__}")


def check_mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a mapping, got {type(value).__name__}")
    return dict(value)
