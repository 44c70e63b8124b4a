"""mastra-storage: an async-first storage SDK for AI agent runtimes, the Python counterpart of
Mastra's storage layer. Backends live in ``mastra_storage.libsql`` (the embedded default),
``.pg``, ``.dynamodb`` and ``.clickhouse`` (``connect(url)`` picks one from a URL); compose them
with ``MastraStorage``."""

from .composite import MastraCompositeStore, MastraStorage
from .connect import connect
from .domains import (
    DOMAINS,
    AgentsStorage,
    MemoryStorage,
    ObservabilityStorage,
    ScoresStorage,
    WorkflowsStorage,
)
from .errors import (
    BackendError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    SchemaVersionError,
    StorageError,
    StorageInitError,
    ValidationError,
)
from .types import *  # noqa: F403
from .types import __all__ as _types_all

__all__ = [
    "DOMAINS",
    "AgentsStorage",
    "BackendError",
    "ConflictError",
    "MastraCompositeStore",
    "MastraStorage",
    "MemoryStorage",
    "NotFoundError",
    "NotSupportedError",
    "ObservabilityStorage",
    "SchemaVersionError",
    "ScoresStorage",
    "StorageError",
    "StorageInitError",
    "ValidationError",
    "WorkflowsStorage",
    "connect",
    *_types_all,
]
