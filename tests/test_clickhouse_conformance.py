"""The conformance suite's observability and scores tests against ClickHouse: the engine embedded
through chdb, and the async HTTP client against the HTTP stand-in over that engine (one data path
per process; a fresh database per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from mastra_storage.clickhouse import ClickhouseStore
from mastra_storage.testing.suites import TestObservability, TestScores  # noqa: F401 (collected by pytest)

from .chdb_engine import chdb_path
from .standins.clickhouse_http import ClickhouseHttpStandIn

CHDB_PATH = chdb_path()


@pytest.fixture(params=["chdb", "http"])
async def backend(
    request: pytest.FixtureRequest, clickhouse_http: ClickhouseHttpStandIn
) -> AsyncIterator[ClickhouseStore]:
    database = f"t_{uuid.uuid4().hex[:12]}"
    url = f"chdb://{CHDB_PATH}" if request.param == "chdb" else clickhouse_http.url
    store = ClickhouseStore(id="ch", url=url, database=database)
    await store.init()
    yield store
    await store.transport.command(f"DROP DATABASE IF EXISTS `{database}`")
    await store.close()
