"""A chat backend on FastAPI: threads, messages, working memory, and a workflow run that suspends
for approval and is resumed by a later request.

    uvicorn examples.fastapi_chat.app:app                          # the embedded default: ./mastra.db
    MASTRA_STORAGE_URL=postgresql://postgres@127.0.0.1/test uvicorn examples.fastapi_chat.app:app
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from mastra_storage import MastraStorage
from mastra_storage.fastapi import Memory, Workflows, storage_lifespan
from mastra_storage.types import Message, StorageThread


def make_storage(url: str | None = None) -> MastraStorage:
    url = url or os.environ.get("MASTRA_STORAGE_URL", "file:./mastra.db")
    if url.startswith(("postgresql://", "postgres://")):
        from mastra_storage.pg import PostgresStore

        schema = os.environ.get("MASTRA_PG_SCHEMA", "public")
        default: Any = PostgresStore(id="pg", connection_string=url, schema_name=schema)
    else:
        from mastra_storage.libsql import LibSQLStore

        default = LibSQLStore(id="main", url=url)
    return MastraStorage(id="chat", default=default)


class NewThread(BaseModel):
    id: str
    resource_id: str
    title: str = ""


class NewMessage(BaseModel):
    role: str
    text: str


class WorkingMemory(BaseModel):
    working_memory: str


class Resume(BaseModel):
    approved: bool


def create_app(storage: MastraStorage | None = None) -> FastAPI:
    app = FastAPI(lifespan=storage_lifespan(storage or make_storage()))

    @app.post("/threads")
    async def create_thread(body: NewThread, memory: Memory) -> dict[str, Any]:
        thread = await memory.save_thread(
            thread=StorageThread(id=body.id, resource_id=body.resource_id, title=body.title)
        )
        return {"id": thread.id, "resource_id": thread.resource_id, "title": thread.title}

    @app.post("/threads/{thread_id}/messages")
    async def add_messages(thread_id: str, body: list[NewMessage], memory: Memory) -> dict[str, int]:
        thread = await memory.get_thread_by_id(thread_id=thread_id)
        if thread is None:
            raise HTTPException(404, f"no thread {thread_id}")
        saved = await memory.save_messages(
            messages=[
                Message(
                    id=str(uuid.uuid4()),
                    thread_id=thread_id,
                    resource_id=thread.resource_id,
                    role=m.role,
                    type="v2",
                    content={"format": 2, "parts": [{"type": "text", "text": m.text}]},
                )
                for m in body
            ]
        )  # one atomic batch: all of it or none
        return {"saved": len(saved)}

    @app.get("/threads/{thread_id}/messages")
    async def list_messages(thread_id: str, memory: Memory, per_page: int = 20) -> dict[str, Any]:
        page = await memory.list_messages(thread_id=thread_id, per_page=per_page, direction="DESC")
        texts = [m.content["parts"][0]["text"] for m in page.messages]
        return {"total": page.total, "texts": texts}

    @app.put("/resources/{resource_id}/working-memory")
    async def set_working_memory(resource_id: str, body: WorkingMemory, memory: Memory) -> dict[str, Any]:
        res = await memory.update_resource(resource_id=resource_id, working_memory=body.working_memory)
        return {"id": res.id, "working_memory": res.working_memory}

    @app.get("/resources/{resource_id}")
    async def get_resource(resource_id: str, memory: Memory) -> dict[str, Any]:
        res = await memory.get_resource_by_id(resource_id=resource_id)
        if res is None:
            raise HTTPException(404, f"no resource {resource_id}")
        return {"id": res.id, "working_memory": res.working_memory}

    @app.post("/runs/{run_id}")
    async def start_run(run_id: str, workflows: Workflows) -> dict[str, Any]:
        # The run does its first step, then suspends waiting for a human's approval.
        await workflows.persist_workflow_snapshot(
            workflow_name="refund", run_id=run_id,
            snapshot={"status": "suspended", "context": {"draft": {"status": "success", "output": {"amount": 42}}},
                      "suspendedPaths": {"approval": [1]}},
        )  # fmt: skip
        return {"run_id": run_id, "status": "suspended"}

    @app.post("/runs/{run_id}/resume")
    async def resume_run(run_id: str, body: Resume, workflows: Workflows) -> dict[str, Any]:
        step = {"status": "success", "output": {"approved": body.approved}}
        await workflows.update_workflow_results(
            workflow_name="refund", run_id=run_id, step_id="approval", result=step, request_context={}
        )
        state = await workflows.update_workflow_state(
            workflow_name="refund", run_id=run_id, expected_status="suspended",
            updates={"status": "success" if body.approved else "canceled", "suspendedPaths": {}},
        )  # fmt: skip
        if state is None:  # not suspended (any more): resumed twice, or never started
            raise HTTPException(409, f"run {run_id} is not waiting for approval")
        return {"run_id": run_id, "status": state["status"], "steps": sorted(state["context"])}

    return app


app = create_app()  # opens nothing until the server starts it
