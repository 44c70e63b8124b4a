"""The OpenAI Agents SDK's ``Session`` on any ``MemoryStorage``: a session is a thread, its items are
messages that Mastra's own stores read too.

```python
from agents import Agent, Runner
from mastra_storage.integrations.openai_agents import MastraSession

session = MastraSession("conversation-42", memory=store.memory, resource_id="alice")
result = await Runner.run(Agent(name="support", instructions="Be brief."), "Hi!", session=session)
```

Mapping: the session id is the thread id (created on the first write, ``resource_id`` defaulting to
the session id); each item is a v2 message whose ``role`` is the item's (``developer`` → ``system``;
tool calls → ``assistant``, tool results → ``tool``), whose text parts are the item's text, and whose
``content.metadata.openaiAgents.item`` keeps the item itself, so it comes back exactly. Items get
strictly increasing ``created_at`` (the order the session returns them in).

``add_items`` is one atomic batch (all of the items or none); ``pop_item`` is atomic among the calls
of one ``MastraSession`` object (the SDK uses one per run): concurrent pops never return the same item.

Needs ``pip install mastra-storage[openai-agents]`` only for the SDK itself; this module imports
nothing from it.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from ..core.codec import ONE_MS, new_id, utc_now
from ..domains import MemoryStorage
from ..errors import ValidationError
from ..types import Message, StorageThread

__all__ = ["MastraSession"]

_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


def _role(item: dict[str, Any]) -> str:
    role = item.get("role")
    if isinstance(role, str) and role in _ROLES:
        return _ROLES[role]
    kind = str(item.get("type", ""))
    return "tool" if kind.endswith("_output") else "assistant"


def _texts(item: dict[str, Any]) -> list[dict[str, Any]]:
    content = item.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    parts = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
    if isinstance(item.get("output"), str):  # a tool result
        parts.append({"type": "text", "text": item["output"]})
    return parts


def _item(message: Message) -> dict[str, Any]:
    """The SDK item a message holds; a message written by something else becomes a plain one."""
    kept = (message.content.get("metadata") or {}).get("openaiAgents", {}).get("item")
    if isinstance(kept, dict):
        return kept
    text = "".join(p.get("text", "") for p in message.content.get("parts", []) if isinstance(p, dict))
    return {"role": "assistant" if message.role not in ("user", "system") else message.role, "content": text}


class MastraSession:
    """An OpenAI Agents SDK session stored as a Mastra thread (see the module docstring)."""

    session_settings: Any = None

    def __init__(self, session_id: str, *, memory: MemoryStorage, resource_id: str | None = None) -> None:
        if not isinstance(session_id, str) or not session_id.strip():
            raise ValidationError(f"session_id must be a non-empty string, got {session_id!r}")
        self.session_id = session_id
        self.resource_id = resource_id or session_id
        self._memory = memory
        self._pop_lock: asyncio.Lock | None = None

    async def get_items(self, limit: int | None = None) -> list[Any]:
        """The latest ``limit`` items (all when None), oldest first."""
        page = await self._memory.list_messages(
            thread_id=self.session_id, per_page=False if limit is None else limit, direction="DESC"
        )
        return [_item(m) for m in reversed(page.messages)]

    async def add_items(self, items: list[Any]) -> None:
        """Appends ``items`` in one atomic write."""
        if not items:
            return
        thread = await self._memory.get_thread_by_id(thread_id=self.session_id)
        if thread is None:
            await self._memory.save_thread(
                thread=StorageThread(id=self.session_id, resource_id=self.resource_id, title="OpenAI Agents session")
            )
        latest = await self._memory.list_messages(thread_id=self.session_id, per_page=1, direction="DESC")
        start = utc_now()
        if latest.messages and latest.messages[0].created_at >= start:
            start = latest.messages[0].created_at + ONE_MS
        await self._memory.save_messages(
            messages=[
                Message(
                    id=new_id(), thread_id=self.session_id, resource_id=self.resource_id, role=_role(dict(item)),
                    type="v2", created_at=start + timedelta(milliseconds=i),
                    content={"format": 2, "parts": _texts(dict(item)),
                             "metadata": {"openaiAgents": {"item": dict(item)}}},
                )
                for i, item in enumerate(items)
            ]
        )  # fmt: skip

    async def pop_item(self) -> Any | None:
        """Removes and returns the most recent item (None when the session is empty)."""
        if self._pop_lock is None:
            self._pop_lock = asyncio.Lock()
        async with self._pop_lock:
            latest = await self._memory.list_messages(thread_id=self.session_id, per_page=1, direction="DESC")
            if not latest.messages:
                return None
            message = latest.messages[0]
            await self._memory.delete_messages(message_ids=[message.id])
            return _item(message)

    async def clear_session(self) -> None:
        """Deletes the session's thread and every item in it."""
        await self._memory.delete_thread(thread_id=self.session_id)
