"""What every store shares: coalesced init, auto-init, error wrapping, and the backend-store shape."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Concatenate, Literal, ParamSpec, Self, TypeVar, overload

from ._codec import parse_duration, utc_now
from .domains import (
    DOMAINS,
    AgentsStorage,
    DomainName,
    DomainStore,
    MemoryStorage,
    ObservabilityStorage,
    ScoresStorage,
    WorkflowsStorage,
)
from .errors import BackendError, StorageError, StorageInitError, ValidationError, storage_error_id
from .types import PruneResult

P = ParamSpec("P")
R = TypeVar("R")


def masked_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (for reprs and logs)."""
    return _URL_PASSWORD.sub(r"\1***@", url)


_URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


@dataclass(frozen=True)
class PrunePlan:
    """One table to prune: rows whose ``column`` is older than ``cutoff`` go, ``batch`` at a time."""

    key: str
    table: str
    column: str
    cutoff: datetime
    batch: int


def retention_plan(domain: str, tables: Mapping[str, tuple[str, str]], retention: Mapping[str, Any]) -> list[PrunePlan]:
    """The validated prune plan of one domain, children first (the order of ``tables``).

    A policy is a positive age (``"30d"``, a timedelta, milliseconds) or
    ``{"max_age": ..., "batch_size": n}``. Anything else is a ValidationError, before anything is deleted.
    """
    if not isinstance(retention, Mapping):
        raise ValidationError(f"retention must be a mapping of domain -> {{table: max age}}, got {retention!r:.60}")
    policies = retention.get(domain)
    if policies is None:
        return []
    if not isinstance(policies, Mapping):
        raise ValidationError(f"retention[{domain!r}] must be a mapping of table -> max age, got {policies!r:.60}")
    unknown = set(policies) - set(tables)
    if unknown:
        raise ValidationError(f"unknown retention table(s) for {domain}: {sorted(unknown)}; known: {list(tables)}")
    plans: list[PrunePlan] = []
    for key, (table, column) in tables.items():
        if key not in policies:
            continue
        policy = policies[key]
        if isinstance(policy, Mapping):
            max_age, batch = policy.get("max_age"), policy.get("batch_size", 1000)
        else:
            max_age, batch = policy, 1000
        try:
            age = parse_duration(max_age)  # type: ignore[arg-type]  # a wrong type is reported below
            if age <= timedelta(0):  # a cutoff in the future would delete every row
                raise ValueError(f"the age must be a positive duration, got {max_age!r}")
            cutoff = utc_now() - age
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise ValidationError(f"retention {domain}.{key}: {exc}") from exc
        if isinstance(batch, bool) or not isinstance(batch, int) or not 0 < batch <= 1_000_000:
            raise ValidationError(f"retention {domain}.{key}: batch_size must be an integer in 1..1000000")
        plans.append(PrunePlan(key, table, column, cutoff, batch))
    return plans


class InitOnce:
    """Runs an async initializer at most once; concurrent callers share the run, failures are not cached."""

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self._task: asyncio.Future[None] | None = None
        self.done = False

    async def __call__(self) -> None:
        if self.done:
            return
        if self._task is None:
            self._task = asyncio.ensure_future(self._attempt())
        await asyncio.shield(self._task)

    async def _attempt(self) -> None:
        try:
            await self._run()
            self.done = True
        finally:
            if not self.done:
                self._task = None

    def reset(self) -> None:
        self.done = False
        self._task = None


class CallTracker:
    """The public calls in flight on one connection (pool, client), so closing it can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def drained(self) -> None:
        """Returns when no call is in flight (bound it with ``asyncio.timeout``)."""
        if self.count:
            self._idle = asyncio.Event()  # made in the closing loop, the loop the calls run in
            await self._idle.wait()

    async def settle(self, seconds: float) -> None:
        """Waits up to ``seconds`` for the calls in flight; what is still running after that is left
        to the caller to end (it closes the connection under them)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.drained()


class DomainBase:
    """Base of every domain store: ``init()`` once (coalesced), auto-init on first use unless disabled."""

    store_name = "STORE"  # the <STORE> part of error ids, e.g. LIBSQL

    def __init__(self, *, disable_init: bool = False) -> None:
        # As in Mastra, MASTRA_DISABLE_STORAGE_INIT=true turns automatic init off (explicit init() still works).
        self.disable_init = disable_init or os.environ.get("MASTRA_DISABLE_STORAGE_INIT") == "true"
        self._init_once = InitOnce(self._initialize)
        self.calls = CallTracker()  # a backend shares one per connection (see its close())

    async def _initialize(self) -> None:
        raise NotImplementedError

    async def init(self) -> None:
        try:
            await self._init_once()
        except StorageError as exc:
            exc.complete_id(self.store_name, "INIT")
            raise
        except Exception as exc:
            raise BackendError(f"{type(self).__name__} init failed: {exc}", id=_id(self, "INIT")) from exc

    async def _ensure_ready(self) -> None:
        if not self._init_once.done and not self.disable_init:
            await self.init()

    domain: ClassVar[str] = ""
    # retention key -> (table, timestamp column), in the order prune() deletes (children first)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {}

    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """A store with nothing to prune still checks ``retention`` (a bad policy is a ValidationError)."""
        retention_plan(self.domain, self.retention_tables, retention)
        return []


def _id(store: DomainBase, operation: str) -> str:
    return storage_error_id(store.store_name, operation, "FAILED")


S = TypeVar("S", bound=DomainBase)


def operation(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Wraps a public store method: auto-init first, complete error ids, wrap driver errors.

    The operation name in error ids is the method name (``save_thread`` → ``SAVE_THREAD``).
    """
    op = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        call = fn(self, *args, **kwargs)  # a wrong call raises TypeError here, unwrapped, as for any function
        calls = self.calls
        calls.enter()
        try:
            if not self._init_once.done:
                try:
                    await self._ensure_ready()
                except BaseException:
                    call.close()  # type: ignore[attr-defined]
                    raise
            return await call
        except StorageError as exc:
            exc.complete_id(self.store_name, op)
            raise
        except Exception as exc:
            raise BackendError(
                f"{type(self).__name__}.{op} failed: {type(exc).__name__}: {exc}", id=_id(self, op)
            ) from exc
        finally:
            calls.leave()

    return wrapper


class StoreLookup:
    """``get_store(name)``, typed per domain; ``stores`` maps each served domain to its store."""

    stores: dict[DomainName, DomainStore]

    @overload
    async def get_store(self, name: Literal["memory"]) -> MemoryStorage | None: ...
    @overload
    async def get_store(self, name: Literal["workflows"]) -> WorkflowsStorage | None: ...
    @overload
    async def get_store(self, name: Literal["scores"]) -> ScoresStorage | None: ...
    @overload
    async def get_store(self, name: Literal["observability"]) -> ObservabilityStorage | None: ...
    @overload
    async def get_store(self, name: Literal["agents"]) -> AgentsStorage | None: ...
    @overload
    async def get_store(self, name: str) -> DomainStore | None: ...

    async def get_store(self, name: str) -> DomainStore | None:
        """The store serving ``name`` — the very object configured — or None if it is missing or disabled."""
        if name not in DOMAINS:
            raise ValidationError(f"unknown storage domain {name!r}; known: {list(DOMAINS)}")
        return self.stores.get(name)


class BackendStore(StoreLookup):
    """A backend that owns one connection and exposes a domain store for each domain it supports."""

    def __init__(self, *, id: str, stores: Mapping[DomainName, DomainStore], disable_init: bool = False) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ValidationError(f"{type(self).__name__}: id must be provided and cannot be empty.")
        self.id = id
        self.stores: dict[DomainName, DomainStore] = dict(stores)
        self.disable_init = disable_init
        self._init_once = InitOnce(self._initialize)

    async def _initialize(self) -> None:
        """Initializes the domains one after another (a backend may override to go concurrent)."""
        failures: dict[str, BaseException] = {}
        for name, store in self.stores.items():
            try:
                await store.init()
            except Exception as exc:
                failures[name] = exc
        if failures:
            raise StorageInitError(failures)

    async def init(self) -> None:
        await self._init_once()

    async def close(self) -> None:
        for store in _unique(self.stores.values()):
            await store.close()
        self._init_once.reset()

    async def dangerously_clear_all(self) -> None:
        for store in _unique(self.stores.values()):
            await store.dangerously_clear_all()

    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        results: list[PruneResult] = []
        for store in _unique(self.stores.values()):
            results.extend(await store.prune(retention=retention))
        return results

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _unique(stores: Any) -> list[DomainStore]:
    seen: dict[int, DomainStore] = {}
    for store in stores:
        seen.setdefault(id(store), store)
    return list(seen.values())
