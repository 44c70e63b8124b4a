"""The ClickHouse backend (observability and scores) on clickhouse-connect: a server over async HTTP,
or the engine embedded in process through chdb. Needs ``pip install mastra-storage[clickhouse]``."""

from .batching import SpanBatchWriter
from .observability import ObservabilityStorageClickhouse
from .scores import ScoresClickhouse
from .store import ClickhouseStore

__all__ = ["ClickhouseStore", "ObservabilityStorageClickhouse", "ScoresClickhouse", "SpanBatchWriter"]
