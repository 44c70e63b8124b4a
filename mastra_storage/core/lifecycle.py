"""What every domain store shares: coalesced init, auto-init on first use, calls in flight, and the
``@operation`` wrapper that completes error ids and wraps driver errors."""

from __future__ import annotations

import abc
import asyncio
import functools
import os
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Mapping, Sequence
from typing import Any, ClassVar, Concatenate, ParamSpec, TypeVar

from ..errors import BackendError, NotSupportedError, StorageError, ValidationError, storage_error_id
from ..types import PruneResult
from .coalesce import SharedReads
from .migrations import MigrationStep, Versioned
from .retention import retention_plan
from .transfer import RecordKind, RecordPage, check_cursor, check_kind, check_limit, check_records

P = ParamSpec("P")
R = TypeVar("R")


class InitOnce:
    """Runs an async initializer at most once; concurrent callers share the run, failures are not cached.

    The run is shielded: a cancelled caller leaves it to the others. ``stop()`` (every ``close()``
    calls it first) cancels a run still in flight and waits for it, so no init outlives its store
    (one running on would open a pool or client after ``close()``, and nobody would close it)."""

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self._task: asyncio.Future[None] | None = None
        self.done = False

    async def __call__(self) -> None:
        if self.done:
            return
        if self._task is None:
            self._task = asyncio.ensure_future(self._attempt())
        task = self._task
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and (current is None or not current.cancelling()):
                # Not this caller's cancel: the store was closed under it.
                raise ValidationError("the store was closed while it initialized") from None
            raise

    async def _attempt(self) -> None:
        try:
            await self._run()
            self.done = True
        finally:
            if not self.done:
                self._task = None

    async def stop(self) -> None:
        """Cancels a run in flight and waits until it has unwound; then the next call runs again."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])  # the run unwinds (a cancel of close() itself still propagates)
            if not task.cancelled():
                task.exception()  # its failure is its callers' concern, not close()'s
        self.reset()

    def reset(self) -> None:
        self.done = False
        self._task = None


class CallTracker:
    """The public calls in flight on one connection (pool, client), so closing it can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle: asyncio.Event | None = None
        self._waited_out = False  # a settle already waited its full time for the calls in flight

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0:
            self._waited_out = False
            if self._idle is not None:
                self._idle.set()

    async def drained(self) -> None:
        """Returns when no call is in flight (bound it with ``asyncio.timeout``)."""
        if self.count:
            self._idle = asyncio.Event()  # made in the closing loop, the loop the calls run in
            await self._idle.wait()

    async def settle(self, seconds: float) -> None:
        """Waits up to ``seconds`` for the calls in flight; what is still running after that is left
        to the caller to end (it closes the connection under them). Once a settle has waited its full
        time, later ones return at once until the calls are done: the domains of one store closing
        in turn wait once, not once each."""
        if self._waited_out:
            return
        try:
            async with asyncio.timeout(seconds):
                await self.drained()
        except TimeoutError:
            self._waited_out = True


S = TypeVar("S", bound="DomainStore")


def operation(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """Wraps a public store method: auto-init first, complete error ids, wrap driver errors.

    The operation name in error ids is the method name (``save_thread`` → ``SAVE_THREAD``).
    """
    return _wrap(fn, auto_init=True)


def maintenance(
    fn: Callable[Concatenate[S, P], Awaitable[R]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """``operation`` for a method that works on the schema itself (``migrate``): no auto-init first."""
    return _wrap(fn, auto_init=False)


def _wrap(
    fn: Callable[Concatenate[S, P], Awaitable[R]], *, auto_init: bool
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    op = fn.__name__

    @functools.wraps(fn)
    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        call = fn(self, *args, **kwargs)  # a wrong call raises TypeError here, unwrapped, as for any function
        calls = self.calls
        calls.enter()
        try:
            if auto_init and not self._init_once.done:
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


class DomainStore(abc.ABC):
    """Base of every domain store: the lifecycle every domain shares.

    ``init()`` creates what the store needs (tables, indexes) once: concurrent callers share one run
    and a failure is not cached; ``close()`` stops a run still in flight (its waiting callers get
    ``ValidationError``). Every public method initializes the store on first use unless
    ``disable_init`` (or ``MASTRA_DISABLE_STORAGE_INIT=true``) is set. A backend implements
    ``_initialize``, ``close`` and ``dangerously_clear_all``, and ``prune`` where it keeps data that ages.
    """

    store_name = "STORE"  # the <STORE> part of error ids, e.g. LIBSQL

    def __init__(self, *, disable_init: bool = False) -> None:
        # As in Mastra, MASTRA_DISABLE_STORAGE_INIT=true turns automatic init off (explicit init() still works).
        self.disable_init = disable_init or os.environ.get("MASTRA_DISABLE_STORAGE_INIT") == "true"
        self._init_once = InitOnce(self._initialize)
        self.calls = CallTracker()  # a backend shares one per connection (see its close())
        self._shared_reads: SharedReads[Any] = SharedReads()

    def shared_read(
        self, statement: Hashable, values: Sequence[object], fetch: Callable[[], Awaitable[R]]
    ) -> Awaitable[R]:
        """``fetch()`` of the rows of ``statement`` with ``values``, shared by the callers asking for
        the same at once (``core.coalesce.SharedReads``): a page read by many concurrent callers
        costs the database one query. ``fetch``'s rows must never be changed; decode them."""
        return self._shared_reads.read(statement, values, fetch)

    @abc.abstractmethod
    async def _initialize(self) -> None:
        """Creates the store's schema (idempotent); ``init()`` runs it once."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Releases the store's use of its connection; the last user closes it. Idempotent."""

    @abc.abstractmethod
    async def dangerously_clear_all(self) -> None:
        """Deletes every record of this domain (tests use it between cases)."""

    async def init(self) -> None:
        """Creates the tables and indexes this domain needs, once; raises ``StorageError`` on failure."""
        try:
            await self._init_once()
        except StorageError as exc:
            exc.complete_id(self.store_name, "INIT")
            raise
        except Exception as exc:
            raise BackendError(f"{type(self).__name__} init failed: {exc}", id=_id(self, "INIT")) from exc

    @property
    def migrations(self) -> Sequence[Versioned]:
        """This domain's schema, version by version (none for a store that keeps no ledger)."""
        return ()

    @maintenance
    async def schema_ledger(self) -> dict[int, str]:
        """What the database's migration ledger records for this domain: version -> checksum (empty
        when there is no ledger yet). Changes nothing."""
        return await self._applied()

    async def _applied(self) -> dict[int, str]:
        return {}

    async def migrate(self, *, dry_run: bool = False) -> list[MigrationStep]:
        """Applies this domain's pending schema migrations — what ``init()`` does — and returns what
        ran, with the exact statements; ``dry_run=True`` returns what would run and changes nothing.
        A database migrated by a newer release raises ``SchemaVersionError`` and is left as it is."""
        raise NotSupportedError(
            f"{type(self).__name__} keeps no migration ledger",
            id=storage_error_id(self.store_name, "MIGRATE", NotSupportedError.default_status),
        )

    # kind -> its record type and key: what export_records / import_records move (set per domain)
    record_kinds: ClassVar[dict[str, RecordKind]] = {}

    @operation
    async def export_records(self, *, kind: str, after: str | None = None, limit: int = 1000) -> RecordPage:
        """A page of up to ``limit`` records of ``kind`` (see ``record_kinds``) in key order, every
        field as stored, and the cursor of the next page (``None`` after the last). Pass that cursor
        back as ``after``. Bad ``kind``, ``limit`` (1 to 5000) or cursor → ``ValidationError``."""
        check_kind(self.record_kinds, self.domain, kind)
        records, cursor = await self._export(kind, check_cursor(after), check_limit(limit))
        return RecordPage(records, cursor)

    @operation
    async def import_records(self, *, kind: str, records: Sequence[Any]) -> None:
        """Writes ``records`` of ``kind`` as they are (timestamps included), replacing any with the
        same key — importing the same page twice leaves one copy. Records of another type, or with a
        field of the wrong type → ``ValidationError``, nothing written. libSQL and PostgreSQL write
        the page atomically; DynamoDB in batches that are not atomic across records, so after a
        failure or a cancellation there, import the page again (it is idempotent)."""
        spec = check_kind(self.record_kinds, self.domain, kind)
        batch = check_records(spec, kind, records)
        if batch:
            await self._import(kind, batch)

    @operation
    async def count_records(self, *, kind: str) -> int:
        """How many records of ``kind`` the store holds."""
        check_kind(self.record_kinds, self.domain, kind)
        return await self._count(kind)

    async def _export(self, kind: str, after: str | None, limit: int) -> tuple[list[Any], str | None]:
        """Up to ``limit`` records from the cursor ``after`` on (a string this hook returned), and
        the next cursor; ``check_cursor`` has checked only that it is a string."""
        raise NotSupportedError(f"{type(self).__name__} cannot export records")

    async def _import(self, kind: str, records: list[Any]) -> None:
        raise NotSupportedError(f"{type(self).__name__} cannot import records")

    async def _count(self, kind: str) -> int:
        raise NotSupportedError(f"{type(self).__name__} cannot count records")

    async def _ensure_ready(self) -> None:
        if not self._init_once.done and not self.disable_init:
            await self.init()

    domain: ClassVar[str] = ""
    # retention key -> (table, timestamp column), in the order prune() deletes (children first)
    retention_tables: ClassVar[dict[str, tuple[str, str]]] = {}

    @property
    def retention_keys(self) -> list[str]:
        """What ``prune`` accepts under ``retention[domain]`` (``mastra-storage prune`` prunes them all)."""
        return list(self.retention_tables)

    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        """Deletes records older than the ages in ``retention[domain]`` (``{"memory": {"messages": "30d"}}``;
        a policy may be ``{"max_age": timedelta(days=30), "batch_size": 500}``) and says what went.

        A bad policy is a ``ValidationError`` before anything is deleted. A store with nothing that ages
        still checks ``retention``.
        """
        retention_plan(self.domain, self.retention_tables, retention)
        return []


def _id(store: DomainStore, operation: str) -> str:
    return storage_error_id(store.store_name, operation, "FAILED")
