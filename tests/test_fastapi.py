"""The FastAPI integration on a real uvicorn server on 127.0.0.1, driven with httpx: the example chat
app on the embedded default and on PostgreSQL, concurrent requests, a client that gives up mid-request,
a workflow run suspended by one request and resumed by another, and shutdown closing everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from examples.fastapi_chat.app import create_app, make_storage
from mastra_storage import MastraStorage, ValidationError
from mastra_storage.fastapi import Memory, Storage, storage_lifespan
from mastra_storage.libsql import LibSQLStore

from .pg_server import PG_URL, drop_schema, new_schema


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """A real uvicorn server for ``app`` on a free port of 127.0.0.1, stopped (lifespan shutdown) on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # startup failed: raise its error
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def exercise(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        assert (
            await client.post("/threads", json={"id": "t1", "resource_id": "alice", "title": "Hi"})
        ).status_code == 200
        # 40 concurrent requests, 5 messages each.
        replies = await asyncio.gather(
            *(client.post("/threads/t1/messages", json=[{"role": "user", "text": f"{i}-{k}"} for k in range(5)])
              for i in range(40))
        )  # fmt: skip
        assert all(r.status_code == 200 and r.json() == {"saved": 5} for r in replies)
        assert (await client.get("/threads/t1/messages")).json()["total"] == 200

        # A client that gives up while its 3,000-message request is being handled.
        big = [{"role": "user", "text": f"big {k}"} for k in range(3000)]
        with pytest.raises(httpx.TimeoutException):
            await client.post("/threads/t1/messages", json=big, timeout=httpx.Timeout(30, read=0.001))
        for _ in range(20):  # whenever it is looked at, the batch is there wholly or not at all
            assert (await client.get("/threads/t1/messages", params={"per_page": 1})).json()["total"] in (200, 3200)
        reply = await client.post("/threads/t1/messages", json=[{"role": "assistant", "text": "still here"}])
        assert reply.status_code == 200

        put = await client.put("/resources/alice/working-memory", json={"working_memory": "likes tea"})
        assert put.json() == {"id": "alice", "working_memory": "likes tea"}
        assert (await client.get("/resources/alice")).json()["working_memory"] == "likes tea"

        # A run suspends in one request and is resumed by a later one (exactly once).
        assert (await client.post("/runs/r1")).json() == {"run_id": "r1", "status": "suspended"}
        resumed = await client.post("/runs/r1/resume", json={"approved": True})
        assert resumed.json() == {"run_id": "r1", "status": "success", "steps": ["approval", "draft"]}
        assert (await client.post("/runs/r1/resume", json={"approved": True})).status_code == 409


@pytest.fixture
def no_leak_reports(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.WARNING)
    yield
    reports = [r.getMessage() for r in caplog.get_records("call") + caplog.records]
    assert not [m for m in reports if "nclosed" in m or "never retrieved" in m], reports


@pytest.mark.usefixtures("no_leak_reports")
async def test_the_chat_app_on_the_embedded_default(tmp_path: Path) -> None:
    storage = make_storage(f"file:{tmp_path / 'chat.db'}")
    async with serving(create_app(storage)) as base:
        await exercise(base)
    memory = await storage.get_store("memory")
    with pytest.raises(ValidationError):  # shutdown closed it
        _ = memory.db  # type: ignore[union-attr]
    # What was acknowledged is on disk for the next process.
    async with LibSQLStore(id="after", url=f"file:{tmp_path / 'chat.db'}") as store:
        assert (await store.memory.list_messages(thread_id="t1", per_page=1)).total in (201, 3201)


@pytest.mark.usefixtures("no_leak_reports")
async def test_the_chat_app_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = new_schema()
    monkeypatch.setenv("MASTRA_STORAGE_URL", PG_URL)
    monkeypatch.setenv("MASTRA_PG_SCHEMA", schema)
    storage = make_storage()
    try:
        async with serving(create_app(storage)) as base:
            await exercise(base)
        assert storage.stores["memory"]._pool is None  # type: ignore[attr-defined]
    finally:
        await drop_schema(schema)


async def test_an_apps_own_lifespan_runs_inside_the_storages(tmp_path: Path) -> None:
    storage = MastraStorage(id="x", default=LibSQLStore(id="l", url=f"file:{tmp_path / 'x.db'}"))
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def own(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        memory = await storage.get_store("memory")
        assert memory is not None
        await memory.save_thread(thread={"id": "boot", "resource_id": "sys", "title": "written at startup"})
        seen.append("startup")
        yield {"greeting": "hello"}
        seen.append("shutdown")
        assert await memory.get_thread_by_id(thread_id="boot") is not None  # still open here

    app = FastAPI(lifespan=storage_lifespan(storage, lifespan=own))

    @app.get("/boot")
    async def boot(memory: Memory, whole: Storage) -> dict[str, Any]:
        thread = await memory.get_thread_by_id(thread_id="boot")
        return {"title": thread.title if thread else None, "same": whole is storage}

    async with serving(app) as base, httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/boot")).json() == {"title": "written at startup", "same": True}
    assert seen == ["startup", "shutdown"]


def test_importing_without_fastapi_names_the_extra() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import mastra_storage; import mastra_storage.fastapi"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "pip install 'mastra-storage[fastapi]'" in proc.stderr
