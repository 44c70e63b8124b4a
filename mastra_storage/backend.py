"""The backend-store shape (one connection, a domain store per domain) and ``get_store`` lookup."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self, cast, overload

from .core.lifecycle import InitOnce
from .core.migrations import MigrationStep
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
from .errors import NotSupportedError, StorageError, StorageInitError, ValidationError
from .types import PruneResult


def masked_url(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***`` (for reprs and logs)."""
    return _URL_PASSWORD.sub(r"\1***@", url)


_URL_PASSWORD = re.compile(r"(://[^/:@]*:)[^/@]*@")


@dataclass(frozen=True)
class Check:
    """One thing ``diagnose()`` looked at: whether it is as this package needs it, and what it saw."""

    name: str
    ok: bool
    detail: str


class StoreLookup:
    """``get_store(name)``, typed per domain; ``stores`` maps each served domain to its store."""

    stores: dict[DomainName, DomainStore]

    async def init(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.init()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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

    def __init__(self, *, id: str, stores: Sequence[DomainStore], disable_init: bool = False) -> None:
        """``stores`` are the backend's domain stores, each reachable as ``self.<domain>`` too."""
        if not isinstance(id, str) or not id.strip():
            raise ValidationError(f"{type(self).__name__}: id must be provided and cannot be empty.")
        self.id = id
        self.stores: dict[DomainName, DomainStore] = {}
        for store in stores:
            name = cast(DomainName, store.domain)
            self.stores[name] = store
            setattr(self, name, store)
        self.disable_init = disable_init
        self._init_once = InitOnce(self._initialize)

    async def _initialize(self) -> None:
        """Initializes the domains concurrently (they share one connection; each migrates its own
        tables), gathering every failure."""
        names = list(self.stores)
        outcomes = await asyncio.gather(*(self.stores[n].init() for n in names), return_exceptions=True)
        failures: dict[str, BaseException] = {}
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, Exception):
                failures[name] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        if failures:
            raise StorageInitError(failures)

    async def init(self) -> None:
        await self._init_once()

    async def close(self) -> None:
        await self._init_once.stop()
        for store in _unique(self.stores.values()):
            await store.close()

    async def dangerously_clear_all(self) -> None:
        for store in _unique(self.stores.values()):
            await store.dangerously_clear_all()

    async def prune(self, *, retention: Mapping[str, Any]) -> list[PruneResult]:
        results: list[PruneResult] = []
        for store in _unique(self.stores.values()):
            results.extend(await store.prune(retention=retention))
        return results

    async def diagnose(self) -> list[Check]:
        """Checks what this backend needs — the engine and its version, access, the table layout —
        then each domain's schema (pending migrations are fine: ``init()`` applies them; a database
        newer than this package is not). Changes nothing; a failure to connect is a failed check."""
        try:
            checks = await self._engine_checks()
        except Exception as exc:  # whatever stops the checks is what the user needs to see
            return [Check("connect", False, f"{type(exc).__name__}: {exc}")]
        for store in _unique(self.stores.values()):
            try:
                steps = await store.migrate(dry_run=True)
            except NotSupportedError:
                continue
            except StorageError as exc:
                checks.append(Check(f"{store.domain} schema", False, str(exc)))
                continue
            pending = ", ".join(f"{step.version} {step.name}" for step in steps)
            version = max((m.version for m in store.migrations), default=0)
            detail = f"pending: {pending}" if steps else f"up to date (version {version})"
            recorded = await store.schema_ledger()
            changed = [m.version for m in store.migrations if recorded.get(m.version, m.checksum) != m.checksum]
            if changed:  # worth knowing, not a fault: another release's definition, or another TTL on ClickHouse
                detail += (
                    f"; note: version(s) {changed} were recorded with a different definition than this "
                    "package's (another release, or ClickHouse tables made with other TTL settings)"
                )
            checks.append(Check(f"{store.domain} schema", True, detail))
        return checks

    async def _engine_checks(self) -> list[Check]:
        """The backend's own checks (engine version, privileges, layout)."""
        return []

    async def size_bytes(self) -> int | None:
        """What the data takes on disk, where the engine tells (None where it does not)."""
        return None

    async def migrate(self, *, dry_run: bool = False) -> list[MigrationStep]:
        """Every domain's pending schema migrations, applied — or with ``dry_run``, only listed with
        their exact statements (see ``DomainStore.migrate``)."""
        steps: list[MigrationStep] = []
        for store in _unique(self.stores.values()):
            steps.extend(await store.migrate(dry_run=dry_run))
        return steps


def _unique(stores: Any) -> list[DomainStore]:
    seen: dict[int, DomainStore] = {}
    for store in stores:
        seen.setdefault(id(store), store)
    return list(seen.values())
