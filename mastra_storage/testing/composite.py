"""Conformance tests for ``MastraStorage`` composition (reference §10 composite-tests.ts).

Needs a ``make_backend`` fixture: an async factory ``await make_backend(name)`` returning a new,
uninitialized backend store (two calls give two independent databases; the test closes them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from ..composite import MastraStorage
from ..domains import DOMAINS, DomainStore
from ..errors import StorageInitError, ValidationError
from .cancel import cancel_after_turns
from .samples import sample_message, sample_thread

MakeBackend = Callable[[str], Awaitable[Any]]


class CompositeConformance:
    async def test_default_serves_every_domain(self, make_backend: MakeBackend) -> None:
        backend = await make_backend("default")
        async with MastraStorage(id="composite", default=backend) as storage:
            for name in DOMAINS:
                assert await storage.get_store(name) is backend.stores[name]
            memory = await storage.get_store("memory")
            assert memory is not None
            thread = await memory.save_thread(thread=sample_thread())
            assert await memory.get_thread_by_id(thread_id=thread.id) == thread

    async def test_overrides_route_and_isolate(self, make_backend: MakeBackend) -> None:
        default, alternate = await make_backend("default"), await make_backend("alternate")
        storage = MastraStorage(id="composite", default=default, domains={"memory": alternate.stores["memory"]})
        try:
            await storage.init()
            assert await storage.get_store("memory") is alternate.stores["memory"]
            assert await storage.get_store("workflows") is default.stores["workflows"]
            memory = await storage.get_store("memory")
            assert memory is not None
            thread = await memory.save_thread(thread=sample_thread())
            default_memory: Any = default.stores["memory"]
            alternate_memory: Any = alternate.stores["memory"]
            assert await default_memory.get_thread_by_id(thread_id=thread.id) is None
            assert await alternate_memory.get_thread_by_id(thread_id=thread.id) == thread
        finally:
            await storage.close()
            await alternate.close()

    async def test_domains_without_default_and_disabled(self, make_backend: MakeBackend) -> None:
        a, b = await make_backend("a"), await make_backend("b")
        storage = MastraStorage(
            id="composite",
            domains={"memory": a.stores["memory"], "workflows": b.stores["workflows"], "scores": False},
        )
        try:
            assert await storage.get_store("observability") is None
            assert await storage.get_store("agents") is None
            assert await storage.get_store("scores") is None
            memory, workflows = await storage.get_store("memory"), await storage.get_store("workflows")
            assert memory is not None and workflows is not None
            thread = await memory.save_thread(thread=sample_thread())
            await memory.save_messages(messages=[sample_message(thread)])
            await workflows.persist_workflow_snapshot(workflow_name="wf", run_id="r", snapshot={"status": "running"})
            assert (await memory.list_messages(thread_id=thread.id)).total == 1
        finally:
            await storage.close()

    async def test_disabled_domain_does_not_fall_back(self, make_backend: MakeBackend) -> None:
        backend = await make_backend("default")
        storage = MastraStorage(id="composite", default=backend, domains={"observability": False, "memory": None})
        assert await storage.get_store("observability") is None
        assert await storage.get_store("memory") is backend.stores["memory"]
        await storage.close()

    async def test_configuration_errors(self, make_backend: MakeBackend) -> None:
        backend = await make_backend("default")
        with pytest.raises(ValidationError):
            MastraStorage(id="")
        with pytest.raises(ValidationError):
            MastraStorage(id="c")
        with pytest.raises(ValidationError):
            MastraStorage(id="c", domains={"memory": False})
        with pytest.raises(ValidationError):
            MastraStorage(id="c", default=backend, domains={"vectors": backend.stores["memory"]})
        storage = MastraStorage(id="c", default=backend, domains={})
        with pytest.raises(ValidationError):
            await storage.get_store("vectors")
        await storage.close()

    async def test_init_is_coalesced_and_auto(self, make_backend: MakeBackend) -> None:
        backend = await make_backend("default")
        storage = MastraStorage(id="composite", default=backend, disable_init=True)
        memory = await storage.get_store("memory")
        assert memory is not None
        thread = await memory.save_thread(thread=sample_thread())  # auto-init by the domain store itself
        await asyncio.gather(*(storage.init() for _ in range(5)))
        await storage.init()
        assert await memory.get_thread_by_id(thread_id=thread.id) == thread
        await storage.close()

    async def test_a_cancelled_init_leaves_nothing_running_after_close(self, make_backend: MakeBackend) -> None:
        """``init()`` cancelled after 0, 5, 10, … turns of the loop (every await is a cancellation
        point), then ``close()``: no task of the store is left running (a shielded init running on
        would open a pool or client after close, and nobody would close it); the store still works."""
        backend = await make_backend("default")
        ours = asyncio.current_task()
        for turns in range(0, 150, 5):
            await cancel_after_turns(backend.init(), turns)
            await backend.close()
            left = [t for t in asyncio.all_tasks() if t is not ours and not t.done()]
            assert left == [], f"after {turns} turns: {left}"
        memory = backend.stores["memory"]
        thread = await memory.save_thread(thread=sample_thread())
        assert await memory.get_thread_by_id(thread_id=thread.id) == thread

    async def test_close_during_init_fails_its_waiting_callers_with_validation_error(
        self, make_backend: MakeBackend
    ) -> None:
        backend = await make_backend("default")
        waiting = [asyncio.ensure_future(backend.init()) for _ in range(2)]
        await asyncio.sleep(0)  # both now wait on the one shared run, which needs the database
        assert not any(w.done() for w in waiting)
        await backend.close()
        for w in waiting:
            with pytest.raises(ValidationError, match="closed while it initialized"):
                await w
        await backend.init()  # a later init runs again

    async def test_failed_init_names_the_domain_and_is_retried(self, make_backend: MakeBackend) -> None:
        backend = await make_backend("default")
        failing = _FailingStore()
        storage = MastraStorage(id="composite", default=backend, domains={"scores": failing})
        with pytest.raises(StorageInitError) as err:
            await storage.init()
        assert list(err.value.failures) == ["scores"] and "scores" in str(err.value)
        failing.broken = False
        await storage.init()
        assert failing.inits == 2
        await storage.close()


class _FailingStore(DomainStore):
    """A domain store whose init fails until ``broken`` is cleared (exercises the composite only)."""

    domain = "scores"

    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.inits = 0

    async def _initialize(self) -> None:
        self.inits += 1
        if self.broken:
            raise RuntimeError("cannot reach the scores database")

    async def close(self) -> None:
        return None

    async def dangerously_clear_all(self) -> None:
        return None
