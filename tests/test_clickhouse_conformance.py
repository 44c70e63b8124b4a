"""The conformance suite's observability and scores tests against ClickHouse: the engine embedded
through chdb (one data path per process, a fresh database per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from mastra_storage.clickhouse import ClickhouseStore
from mastra_storage.testing import ObservabilityConformance, ScoresConformance

from .chdb_engine import chdb_path

CHDB_PATH = chdb_path()


@pytest.fixture
async def backend() -> AsyncIterator[ClickhouseStore]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    store = ClickhouseStore(id="ch", url=f"chdb://{CHDB_PATH}", database=database)
    await store.init()
    yield store
    await store.transport.command(f"DROP DATABASE IF EXISTS `{database}`")
    await store.close()


class TestObservability(ObservabilityConformance):
    pass


class TestScores(ScoresConformance):
    pass
