"""Test servers shared by the test modules, and a pytest marker per backend.

``pytest -m libsql`` (or ``-m "libsql or clickhouse"``) runs what needs no server: the embedded
engines; ``-m pg`` and ``-m dynamodb`` need the servers ``make services`` starts. CI runs everything.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .chdb_engine import chdb_path
from .standins.clickhouse_http import ClickhouseHttpStandIn
from .standins.hrana import HranaStandIn


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


# Which backends a test module exercises, by its name: the marker ``pytest -m`` selects on.
_MARKERS = {
    "test_libsql_": ("libsql",),
    "test_pg_": ("pg",),
    "test_dynamodb_": ("dynamodb",),
    "test_clickhouse_": ("clickhouse",),
    "test_connect": ("pg", "dynamodb"),  # it opens every engine, the servers included
    "test_migrations": ("libsql", "pg"),
    "test_cli": ("libsql", "pg", "dynamodb"),
}
_EMBEDDED = ("libsql",)  # the integrations and the demo run on the embedded default


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.stem
        names = next((m for prefix, m in _MARKERS.items() if module.startswith(prefix)), _EMBEDDED)
        for name in names:
            item.add_marker(getattr(pytest.mark, name))
