"""Test servers shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .chdb_engine import chdb_path
from .clickhouse_http_server import ClickhouseHttpStandIn
from .hrana_server import HranaStandIn


@pytest.fixture(scope="session")
def hrana() -> Iterator[HranaStandIn]:
    """The Hrana-over-HTTP stand-in for a remote libSQL server (see its docstring)."""
    server = HranaStandIn().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clickhouse_http() -> Iterator[ClickhouseHttpStandIn]:
    """The ClickHouse-HTTP stand-in over the session's chdb engine (see its docstring)."""
    server = ClickhouseHttpStandIn(chdb_path()).start()
    yield server
    server.stop()
