"""FastAPI integration: a lifespan that opens and closes the storage, and typed dependencies.

```python
from fastapi import FastAPI
from mastra_storage import MastraStorage
from mastra_storage.fastapi import Memory, storage_lifespan
from mastra_storage.libsql import LibSQLStore

storage = MastraStorage(id="app", default=LibSQLStore(id="main", url="file:./mastra.db"))
app = FastAPI(lifespan=storage_lifespan(storage))

@app.get("/threads/{thread_id}")
async def get_thread(thread_id: str, memory: Memory):
    return await memory.get_thread_by_id(thread_id=thread_id)
```

``storage_lifespan(storage, lifespan=your_lifespan)`` runs your own lifespan inside the storage's
(the storage is open while yours starts and stops) and merges the state both yield. The storage is
``init()``-ed on startup and ``close()``-d on shutdown, also when startup fails half way. Endpoints
get a domain store through ``Memory``, ``Workflows``, ``Scores``, ``Observability``, ``Agents``
(a disabled domain answers 503) or the whole storage through ``Storage``.

Needs ``pip install mastra-storage[fastapi]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Annotated, Any

from .composite import MastraStorage
from .domains import AgentsStorage, MemoryStorage, ObservabilityStorage, ScoresStorage, WorkflowsStorage

try:
    from fastapi import Depends, FastAPI, HTTPException, Request
except ImportError as exc:  # pragma: no cover - exercised by the import-error test in a subprocess
    raise ImportError("mastra_storage.fastapi needs FastAPI: pip install 'mastra-storage[fastapi]'") from exc

__all__ = ["Agents", "Memory", "Observability", "Scores", "Storage", "Workflows", "storage_lifespan"]

STATE_KEY = "mastra_storage"
Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]


def storage_lifespan(
    storage: MastraStorage, *, lifespan: Lifespan | None = None
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[dict[str, Any]]]:
    """What ``FastAPI(lifespan=...)`` takes: the storage open for the app's lifetime (and, inside it,
    the app's own ``lifespan``, whose state is merged into the request state)."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(storage.close)  # closed even if init or the app's lifespan fails
            await storage.init()
            state: dict[str, Any] = {STATE_KEY: storage}
            if lifespan is not None:
                own: Mapping[str, Any] | None = await stack.enter_async_context(lifespan(app))
                state.update(own or {})
            yield state

    return run


def _storage(request: Request) -> MastraStorage:
    storage = getattr(request.state, STATE_KEY, None)
    if not isinstance(storage, MastraStorage):
        raise RuntimeError("no storage in the request state: create the app with lifespan=storage_lifespan(...)")
    return storage


def _domain(name: str) -> Callable[[Request], Awaitable[Any]]:
    """The dependency that gives an endpoint the store serving ``name`` (503 when it is disabled)."""

    async def dependency(request: Request) -> Any:
        store = await _storage(request).get_store(name)
        if store is None:
            raise HTTPException(status_code=503, detail=f"the {name} storage domain is disabled")
        return store

    return dependency


Storage = Annotated[MastraStorage, Depends(_storage)]
Memory = Annotated[MemoryStorage, Depends(_domain("memory"))]
Workflows = Annotated[WorkflowsStorage, Depends(_domain("workflows"))]
Scores = Annotated[ScoresStorage, Depends(_domain("scores"))]
Observability = Annotated[ObservabilityStorage, Depends(_domain("observability"))]
Agents = Annotated[AgentsStorage, Depends(_domain("agents"))]
