"""The local SQLite engine: a writer thread, reader threads, and queues of whole units of work.

A *unit* is one synchronous function of a ``sqlite3``-style connection (a statement, a batch, a
read-modify-write) submitted from any event loop. The engine holds no event-loop state: each unit
carries its own loop and future, so an engine outlives the loops that used it, and stores of one
file in different ``asyncio.run`` calls share it safely.

* **Writer.** One thread owns the only writing connection. It drains its queue many units at a
  time and runs them in one ``BEGIN IMMEDIATE`` transaction (group commit). When a unit raises, the
  group is rolled back and run again with each unit in its own ``SAVEPOINT``, so the failing unit
  rolls back alone and only its caller sees the error. ``BEGIN``, the unit bodies, ``COMMIT`` and
  ``ROLLBACK`` all run in that thread without yielding, so a cancelled caller can never split them:
  its unit has either committed wholly or left no trace, and the connection never stays inside a
  transaction. A unit whose caller was cancelled before the thread reached it is skipped.
* **Readers.** A file in WAL mode is read on a small pool of read-only connections, so reads never
  queue behind writes. A reader runs its drained group in one read transaction; every unit of the
  group was submitted before that snapshot began, so a read always sees every write acknowledged
  before it was issued. ``:memory:`` has no readers: its reads run on the writer, before the group's
  write transaction.
* **Wake-ups.** A drained group's results reach each caller's loop in one ``call_soon_threadsafe``
  per loop, not one per unit.
* **Other processes.** ``busy_timeout`` waits inside SQLite; a lock error that still surfaces rolls the
  group back and is retried with exponential backoff (``RetryPolicy``) before its callers see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from .checkpointer import WalCheckpointer
from .connection import RetryPolicy, Row, Stmt, is_lock_error

T = TypeVar("T")
Db = Any  # an apsw.Connection (autocommit unless a unit's transaction is open)
Work = Callable[[Db], Any]

_MAX_GROUP = 256  # units drained at once: bounds how long one transaction holds the write lock
_READERS = 2


class EngineClosedError(RuntimeError):
    """A unit was submitted to an engine whose last store has closed."""


class _Unit(Generic[T]):
    __slots__ = ("fn", "future", "loop", "read", "stop")

    def __init__(self, fn: Callable[[Db], T], loop: asyncio.AbstractEventLoop, *, read: bool, stop: bool = False):
        self.fn = fn
        self.loop = loop
        self.future: asyncio.Future[T] = loop.create_future()
        self.read = read
        self.stop = stop

    @property
    def cancelled(self) -> bool:
        """The caller was cancelled (``Task.cancel`` cancels the awaited future at once): skip the unit
        if it has not run yet. Read from the engine's thread: a plain state read, no loop call."""
        return self.future.cancelled()


Outcome = tuple[_Unit[Any], bool, Any]  # (unit, succeeded, result or exception)


def _settle(outcomes: list[Outcome]) -> None:
    for unit, ok, value in outcomes:
        if unit.future.done():
            continue
        if ok:
            unit.future.set_result(value)
        else:
            unit.future.set_exception(value)


def _deliver(outcomes: list[Outcome]) -> None:
    """Hands results to their loops: one wake-up per loop per group."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_settle, items)


def _run_one(unit: _Unit[Any], db: Db) -> Outcome:
    try:
        return unit, True, unit.fn(db)
    except Exception as exc:
        return unit, False, exc


def _drain(q: queue.SimpleQueue[_Unit[Any]], limit: int) -> list[_Unit[Any]]:
    """Blocks for one unit, then takes whatever else is already queued (up to ``limit``)."""
    group = [q.get()]
    while len(group) < limit:
        try:
            group.append(q.get_nowait())
        except queue.Empty:
            break
    return group


class LocalEngine:
    """One SQLite database file (or ``:memory:``) served by a writer thread and reader threads."""

    def __init__(self, path: str, *, busy_timeout_ms: int, retry: RetryPolicy) -> None:
        self.path = path
        self.key = os.path.abspath(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.retry = retry
        self.users = 0  # stores attached (see ``open_engine``)
        self._closed = False
        self.checkpointer: WalCheckpointer | None = None  # a file's, made by the writer when it connects
        self._writes: queue.SimpleQueue[_Unit[Any]] = queue.SimpleQueue()
        self._reads: queue.SimpleQueue[_Unit[Any]] | None = None if path == ":memory:" else queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._writer, name="mastra-sqlite-writer", daemon=True)]
        if self._reads is not None:
            self._threads += [
                threading.Thread(target=self._reader, name=f"mastra-sqlite-reader-{n}", daemon=True)
                for n in range(_READERS)
            ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------ submitting (event-loop side)

    # These return the unit's future itself rather than wrapping it in a coroutine: every call of
    # the store goes through here, and each coroutine layer costs a frame on every resume.

    def _submit(self, fn: Callable[[Db], T], *, read: bool) -> asyncio.Future[T]:
        if self._closed:
            raise EngineClosedError(f"the SQLite engine of {self.path} is closed")
        unit = _Unit(fn, asyncio.get_running_loop(), read=read)
        (self._reads if read and self._reads is not None else self._writes).put(unit)
        return unit.future

    def write(self, fn: Callable[[Db], T]) -> asyncio.Future[T]:
        """Runs ``fn(db)`` inside a write transaction on the writer thread; all of it commits or none."""
        return self._submit(fn, read=False)

    def read(self, fn: Callable[[Db], T]) -> asyncio.Future[T]:
        """Runs ``fn(db)`` on a reader (one consistent snapshot); it must not write."""
        return self._submit(fn, read=True)

    async def close(self) -> None:
        """Runs what is queued, closes the connections and ends the threads."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        stops: list[_Unit[None]] = []
        for q in (self._writes, self._reads):
            if q is None:
                continue
            for _ in range(1 if q is self._writes else _READERS):
                stops.append(_Unit(lambda db: None, loop, read=q is self._reads, stop=True))
                q.put(stops[-1])
        # Shielded: a cancelled close still stops the threads; the caller just does not wait for it.
        await asyncio.shield(asyncio.gather(*(stop.future for stop in stops)))

    # ------------------------------------------------------------ threads

    def _connect(self, *, reader: bool) -> Db:
        import apsw

        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        db = apsw.Connection(self.path)
        db.set_busy_timeout(int(self.busy_timeout_ms))
        pragmas = ["PRAGMA temp_store = MEMORY"]
        if reader:
            pragmas += ["PRAGMA query_only = ON", "PRAGMA cache_size = -8000"]
        else:
            if self.path != ":memory:":
                pragmas.insert(0, "PRAGMA journal_mode = WAL")
            pragmas += ["PRAGMA synchronous = NORMAL", "PRAGMA cache_size = -16000"]
        for pragma in pragmas:
            self.retry.run_sync(lambda p=pragma: db.execute(p), is_lock_error)  # type: ignore[misc]
        if not reader and self.path != ":memory:":
            self.checkpointer = self.checkpointer or WalCheckpointer(self.path)
            self.checkpointer.attach(db)
        return db

    def _serve(self, q: queue.SimpleQueue[_Unit[Any]], *, reader: bool) -> None:
        db: Db = None
        while True:
            group = _drain(q, _MAX_GROUP)
            stop = any(unit.stop for unit in group)
            live = [unit for unit in group if not unit.cancelled and not unit.stop]
            outcomes: list[Outcome] = []
            if live:
                if db is None:
                    try:
                        db = self._connect(reader=reader)
                    except Exception as exc:  # every unit learns why; the next group tries again
                        outcomes = [(unit, False, exc) for unit in live]
                if db is not None:
                    reads = [u for u in live if u.read]
                    writes = [u for u in live if not u.read]
                    if reads:
                        outcomes += self._run_reads(db, reads)
                    if writes:
                        outcomes += self._run_writes(db, writes)
            if stop:
                if self.checkpointer is not None and not reader:
                    self.checkpointer.stop()
                if db is not None:
                    db.close()
                    db = None
                outcomes += [(unit, True, None) for unit in group if unit.stop]
            _deliver(outcomes)
            if stop:
                return
            if self.checkpointer is not None and db is not None and not reader:
                self.checkpointer.bound(db)

    def _writer(self) -> None:
        self._serve(self._writes, reader=False)

    def _reader(self) -> None:
        assert self._reads is not None
        self._serve(self._reads, reader=True)

    def _run_reads(self, db: Db, units: list[_Unit[Any]]) -> list[Outcome]:
        """One read transaction for the group: each unit sees one snapshot taken after it was submitted."""
        if len(units) == 1:
            outcomes = [_run_one(units[0], db)]
        else:
            db.execute("BEGIN")
            try:
                outcomes = [_run_one(unit, db) for unit in units]
            finally:
                db.execute("COMMIT")
        # A reader rarely meets a lock (WAL recovery by another process): those units are retried alone.
        return [
            (unit, *self._retry_read(unit, db)) if not ok and is_lock_error(value) else (unit, ok, value)
            for unit, ok, value in outcomes
        ]

    def _retry_read(self, unit: _Unit[Any], db: Db) -> tuple[bool, Any]:
        try:
            return True, self.retry.run_sync(lambda: unit.fn(db), is_lock_error)
        except Exception as exc:
            return False, exc

    def _run_writes(self, db: Db, units: list[_Unit[Any]]) -> list[Outcome]:
        """Group commit with lock-error retries; nothing here yields to a cancellation."""
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                units = [unit for unit in units if not unit.cancelled]
                if not units:
                    return []
            try:
                return self._commit_group(db, units)
            except Exception as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if attempt == self.retry.max_retries or not is_lock_error(exc):
                    return [(unit, False, exc) for unit in units]
                time.sleep(self.retry.backoff(attempt))
        raise AssertionError("unreachable")

    def _commit_group(self, db: Db, units: list[_Unit[Any]]) -> list[Outcome]:
        """One transaction for the group. Units run back to back first (the common case: all
        succeed, one COMMIT); if one raises, the transaction is rolled back and the group runs again
        with a SAVEPOINT around each unit, so only the failing units are undone."""
        db.execute("BEGIN IMMEDIATE")
        outcomes = [_run_one(unit, db) for unit in units]
        failed = [outcome[2] for outcome in outcomes if not outcome[1]]
        if not failed:
            db.execute("COMMIT")
            return outcomes
        if any(is_lock_error(exc) for exc in failed):
            raise failed[0]
        if db.in_transaction:
            db.execute("ROLLBACK")
        if len(units) == 1:
            return outcomes
        db.execute("BEGIN IMMEDIATE")
        outcomes = []
        for unit in units:
            db.execute("SAVEPOINT unit")
            outcome = _run_one(unit, db)
            if not outcome[1]:
                if is_lock_error(outcome[2]) or not db.in_transaction:
                    # SQLite rolled the whole transaction back (or will retry it): redo or fail the group.
                    raise outcome[2]
                db.execute("ROLLBACK TO unit")
            db.execute("RELEASE unit")
            outcomes.append(outcome)
        db.execute("COMMIT")
        return outcomes


# ------------------------------------------------------------ one engine per file per process

_ENGINES: dict[str, LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()  # a thread lock, not an asyncio one: any loop may open or close


def open_engine(path: str, *, busy_timeout_ms: int, retry: RetryPolicy) -> LocalEngine:
    """The engine of ``path`` (shared by every store of that file in this process, whatever their
    loop or options, so they never compete for the write lock), with one more user."""
    if path == ":memory:":
        engine = LocalEngine(path, busy_timeout_ms=busy_timeout_ms, retry=retry)
    else:
        key = os.path.abspath(path)
        with _ENGINES_LOCK:
            engine = _ENGINES.get(key) or LocalEngine(path, busy_timeout_ms=busy_timeout_ms, retry=retry)
            _ENGINES[key] = engine
            # Mixed options on one file: the most patient settings win.
            engine.busy_timeout_ms = max(engine.busy_timeout_ms, busy_timeout_ms)
            engine.retry = RetryPolicy(
                max(engine.retry.max_retries, retry.max_retries),
                max(engine.retry.initial_backoff_ms, retry.initial_backoff_ms),
            )
    engine.users += 1
    return engine


async def release_engine(engine: LocalEngine) -> None:
    """One user fewer; the last one closes the engine."""
    with _ENGINES_LOCK:
        engine.users -= 1
        if engine.users > 0:
            return
        if _ENGINES.get(engine.key) is engine:
            del _ENGINES[engine.key]
    await engine.close()


class LocalConnection:
    """The ``Connection`` API over a ``LocalEngine``: each call is one unit of work."""

    def __init__(self, engine: LocalEngine) -> None:
        self.engine = engine

    async def open(self) -> None:
        return None  # the engine's threads connect on their first unit

    def query(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[list[Row]]:
        return self.engine.read(lambda db: db.execute(sql, params).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Awaitable[int]:
        return self.engine.write(lambda db: _changes(db, sql, params))

    def read(self, statements: Sequence[Stmt]) -> Awaitable[list[list[Row]]]:
        """Several queries in one unit, on one snapshot (e.g. a page and its total)."""
        return self.engine.read(lambda db: [db.execute(s.sql, s.params).fetchall() for s in statements])

    def batch(self, statements: Sequence[Stmt]) -> Awaitable[None]:
        return self.engine.write(lambda db: _run_statements(db, statements))

    def transaction(self, body: Callable[[Any], T]) -> Awaitable[T]:
        return self.engine.write(lambda db: body(SyncTx(db)))

    async def close(self) -> None:
        await release_engine(self.engine)


def _changes(db: Db, sql: str, params: Sequence[Any]) -> int:
    db.execute(sql, params)
    changed: int = db.changes()
    return changed


def _run_statements(db: Db, statements: Sequence[Stmt]) -> None:
    for stmt in statements:
        if stmt.many:
            db.executemany(stmt.sql, stmt.params)
        else:
            db.execute(stmt.sql, stmt.params)


class SyncTx:
    """A read-modify-write body's view of the writer connection, inside its transaction."""

    __slots__ = ("_db",)

    def __init__(self, db: Db) -> None:
        self._db = db

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        rows: list[Row] = self._db.execute(sql, params).fetchall()
        return rows

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)
