"""The conformance suite against libSQL: a local file, ``:memory:``, and a remote URL (stand-in)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mastra_storage.libsql import LibSQLStore
from mastra_storage.testing.suites import *  # noqa: F403 (every suite, collected by pytest)

from .standins.hrana import HranaStandIn


@pytest.fixture(params=["file", "memory", "remote"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path, hrana: HranaStandIn) -> AsyncIterator[LibSQLStore]:
    url = {
        "file": f"file:{tmp_path / 'mastra.db'}",
        "memory": ":memory:",
        "remote": hrana.url(f"db-{uuid.uuid4().hex}"),
    }[request.param]
    store = LibSQLStore(id=f"libsql-{request.param}", url=url)
    await store.init()
    yield store
    await store.close()


@pytest.fixture
async def make_backend(tmp_path: Path) -> AsyncIterator[Callable[[str], Awaitable[LibSQLStore]]]:
    made: list[LibSQLStore] = []

    async def make(name: str) -> LibSQLStore:
        made.append(LibSQLStore(id=name, url=f"file:{tmp_path / name}.db"))
        return made[-1]

    yield make
    for store in made:
        await store.close()
