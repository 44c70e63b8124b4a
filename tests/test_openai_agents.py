"""The OpenAI Agents SDK session on the memory domain, driven by the real ``openai-agents`` package's
``Runner.run`` with a scripted model of its own (no network): a conversation over two runs, resumed
from a new store object on the same file, then on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, Runner, set_tracing_disabled
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseOutputMessage, ResponseOutputText

from mastra_storage import ValidationError
from mastra_storage.domains import MemoryStorage
from mastra_storage.integrations.openai_agents import MastraSession
from mastra_storage.libsql import LibSQLStore
from mastra_storage.pg import PostgresStore

from .pg_server import PG_URL, drop_schema, new_schema

set_tracing_disabled(True)  # the SDK would otherwise send its traces to OpenAI


class ScriptedModel(Model):
    """Answers from a script, and remembers what it was shown."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.seen: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        self.seen.append(input)
        text = self.answer(input)
        message = ResponseOutputMessage(
            id=f"msg_{len(self.seen)}", type="message", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )  # fmt: skip
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _said(items: Any) -> list[str]:
    return [str(i.get("content")) for i in items if isinstance(i, dict) and i.get("role") == "user"]


def remembering(items: Any) -> str:
    """Knows the user's name only if an earlier turn (from the session's history) told it."""
    said = _said(items)
    if said and said[-1] == "What is my name?":
        return "Your name is Ada." if "My name is Ada" in said[:-1] else "I do not know."
    return "Nice to meet you!"


async def converse(first: MemoryStorage, second: MemoryStorage) -> None:
    model = ScriptedModel(remembering)
    agent = Agent(name="support", instructions="Be brief.", model=model)
    run1 = await Runner.run(agent, "My name is Ada", session=MastraSession("conv-1", memory=first, resource_id="ada"))
    assert run1.final_output == "Nice to meet you!"
    # A later run, through a new session object on a new store: the history comes from storage.
    run2 = await Runner.run(agent, "What is my name?", session=MastraSession("conv-1", memory=second))
    assert run2.final_output == "Your name is Ada."
    assert "My name is Ada" in _said(model.seen[1])
    # Mastra reads the conversation as ordinary messages.
    page = await second.list_messages(thread_id="conv-1")
    assert [m.role for m in page.messages] == ["user", "assistant", "user", "assistant"]
    assert [m.content["parts"][0]["text"] for m in page.messages] == [
        "My name is Ada", "Nice to meet you!", "What is my name?", "Your name is Ada.",
    ]  # fmt: skip
    thread = await second.get_thread_by_id(thread_id="conv-1")
    assert thread is not None and thread.resource_id == "ada"


async def test_a_conversation_resumes_from_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    url = f"file:{tmp_path / 'agents.db'}"
    async with LibSQLStore(id="one", url=url) as one, LibSQLStore(id="two", url=url) as two:
        await converse(one.memory, two.memory)


async def test_a_conversation_on_postgresql() -> None:
    schema = new_schema()
    try:
        async with (
            PostgresStore(id="pg1", connection_string=PG_URL, schema_name=schema) as one,
            PostgresStore(id="pg2", connection_string=PG_URL, schema_name=schema) as two,
        ):
            await converse(one.memory, two.memory)
    finally:
        await drop_schema(schema)


@pytest.fixture
async def memory(tmp_path: Path) -> AsyncIterator[MemoryStorage]:
    async with LibSQLStore(id="s", url=f"file:{tmp_path / 's.db'}") as store:
        yield store.memory


async def test_session_protocol(memory: MemoryStorage) -> None:
    session = MastraSession("s-1", memory=memory)
    items = [{"role": "user", "content": f"m{i}"} for i in range(20)]
    await session.add_items(items)
    assert await session.get_items() == items
    assert await session.get_items(limit=3) == items[-3:]
    # A batch with one bad item adds nothing.
    with pytest.raises(ValidationError):
        await session.add_items([{"role": "user", "content": "ok"}, {"role": "user", "content": float("nan")}])
    assert len(await session.get_items()) == 20
    # Concurrent pops never return the same item.
    popped = await asyncio.gather(*(session.pop_item() for _ in range(25)))
    got = [p for p in popped if p is not None]
    assert sorted(p["content"] for p in got) == sorted(i["content"] for i in items) and popped.count(None) == 5
    assert await session.get_items() == []
    await session.add_items(items[:2])
    await session.clear_session()
    assert await session.get_items() == [] and await memory.get_thread_by_id(thread_id="s-1") is None
