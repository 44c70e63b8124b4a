"""The error hierarchy every store raises (API.md section 4).

Every error carries Mastra's error id ``MASTRA_STORAGE_<STORE>_<OPERATION>_<STATUS>``. Shared
helpers raise errors that know only their *status* (``INVALID_THREAD_ID``); the operation wrapper
of the store that called them completes the id, so helpers need not know who called them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

__all__ = [
    "BackendError",
    "ConflictError",
    "NotFoundError",
    "NotSupportedError",
    "SchemaVersionError",
    "StorageError",
    "StorageInitError",
    "ValidationError",
    "storage_error_id",
]

Category = Literal["USER", "SYSTEM", "THIRD_PARTY"]

_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def _upper_snake(part: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", part)
    return _NON_WORD.sub("_", spaced).strip("_").upper()


def storage_error_id(store: str, operation: str, status: str) -> str:
    """``("libsql", "updateThread", "not found")`` → ``MASTRA_STORAGE_LIBSQL_UPDATE_THREAD_NOT_FOUND``."""
    return "_".join(["MASTRA_STORAGE", _upper_snake(store), _upper_snake(operation), _upper_snake(status)])


class StorageError(Exception):
    """Base of every error a store raises; ``__cause__`` holds the driver error, if any."""

    default_category: Category = "SYSTEM"
    default_status = "FAILED"

    def __init__(
        self,
        message: str,
        *,
        id: str | None = None,
        status: str | None = None,
        category: Category | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status or self.default_status
        self.id = id or ""
        self.domain = "STORAGE"
        self.category: Category = category or self.default_category
        self.details: dict[str, Any] = dict(details or {})

    def complete_id(self, store: str, operation: str) -> None:
        """Fill in the id from the store and operation, unless one was given explicitly."""
        if not self.id:
            self.id = storage_error_id(store, operation, self.status)

    def __str__(self) -> str:
        return self.message


class ValidationError(StorageError, ValueError):
    """Bad input: types, ids, pagination, metadata keys, payload shape. Nothing was written."""

    default_category: Category = "USER"
    default_status = "INVALID_INPUT"


class NotFoundError(StorageError, LookupError):
    """An update needed an existing row and there was none."""

    default_category: Category = "USER"
    default_status = "NOT_FOUND"


class ConflictError(StorageError):
    """An id is already taken where that is an error (e.g. a clone target)."""

    default_category: Category = "USER"
    default_status = "ALREADY_EXISTS"


class NotSupportedError(StorageError, NotImplementedError):
    """The backend cannot perform this operation."""

    default_category: Category = "SYSTEM"
    default_status = "NOT_SUPPORTED"


class BackendError(StorageError):
    """The database or the network failed; the driver's exception is ``__cause__``."""

    default_category: Category = "THIRD_PARTY"
    default_status = "FAILED"


class SchemaVersionError(StorageError):
    """The database was migrated by a newer version of this package: it is refused, never altered."""

    default_category: Category = "SYSTEM"
    default_status = "SCHEMA_TOO_NEW"


class StorageInitError(StorageError):
    """``init()`` failed for one or more domains; ``failures`` maps each domain to its cause."""

    default_category: Category = "THIRD_PARTY"
    default_status = "FAILED"

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures: dict[str, BaseException] = dict(failures)
        listed = "; ".join(f"{domain}: {type(exc).__name__}: {exc}" for domain, exc in self.failures.items())
        super().__init__(
            f"storage init failed for {len(self.failures)} domain(s): {listed}",
            id="MASTRA_STORAGE_INIT_FAILED",
            details={"domains": list(self.failures)},
        )
