"""Test servers shared by the test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .hrana_server import HranaStandIn


@pytest.fixture(scope="session")
def hrana() -> Iterator[HranaStandIn]:
    """The Hrana-over-HTTP stand-in for a remote libSQL server (see its docstring)."""
    server = HranaStandIn().start()
    yield server
    server.stop()
