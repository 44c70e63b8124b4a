"""``MastraStorage``: routes each domain to its own backend (API.md section 2)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal, cast

from .backend import BackendStore, StoreLookup
from .core.lifecycle import InitOnce
from .domains import DOMAINS, DomainName, DomainStore
from .errors import StorageInitError, ValidationError
from .types import PruneResult

__all__ = ["MastraCompositeStore", "MastraStorage"]


class MastraStorage(StoreLookup):
    """A composite store: each domain comes from ``domains[name]`` if given (``False`` disables it),
    else from the ``default`` backend.

    ``get_store(name)`` returns the very store that was configured. ``init()`` initializes the
    default backend once, then every other domain store concurrently; concurrent callers share one
    run, a failure is not cached and names each failed domain. Domain stores initialize themselves
    on first use too, so a call made before ``init()`` works.
    """

    def __init__(
        self,
        *,
        id: str,
        default: BackendStore | None = None,
        domains: Mapping[str, DomainStore | Literal[False] | None] | None = None,
        disable_init: bool = False,
    ) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ValidationError("MastraStorage: id must be provided and cannot be empty.")
        overrides = dict(domains or {})
        unknown = sorted(set(overrides) - set(DOMAINS))
        if unknown:
            raise ValidationError(f"unknown storage domain(s) {unknown}; known: {list(DOMAINS)}")
        if default is not None and not isinstance(default, BackendStore):
            raise ValidationError(f"default must be a backend store, got {type(default).__name__}")
        self.id = id
        self.default = default
        self.disable_init = disable_init
        self.stores = {}
        self._from_default: set[DomainName] = set()
        for name in DOMAINS:
            override = overrides.get(name)
            if override is False:
                continue
            if override is not None:
                if not isinstance(override, DomainStore):
                    raise ValidationError(
                        f"domains[{name!r}] must be a domain store or False, got {type(override).__name__}"
                    )
                self.stores[name] = override
            elif default is not None and name in default.stores:
                self.stores[name] = default.stores[name]
                self._from_default.add(name)
        if default is None and not self.stores:
            raise ValidationError(
                "MastraStorage requires at least one storage source. Provide a default storage or domain overrides."
            )
        self._init_once = InitOnce(self._initialize)

    async def _initialize(self) -> None:
        failures: dict[str, BaseException] = {}
        if self.default is not None:
            try:
                await self.default.init()
            except StorageInitError as exc:
                failures.update(exc.failures)
            except Exception as exc:
                failures.update({name: exc for name in self._from_default})
        pending: dict[int, tuple[list[str], DomainStore]] = {}
        for name, store in self.stores.items():
            if name not in self._from_default:
                pending.setdefault(id(store), ([], store))[0].append(name)

        async def init_one(names: list[str], store: DomainStore) -> None:
            try:
                await store.init()
            except Exception as exc:
                failures.update({name: exc for name in names})

        async with asyncio.TaskGroup() as group:
            for names, store in pending.values():
                group.create_task(init_one(names, store))
        if failures:
            raise StorageInitError(failures)

    async def init(self) -> None:
        await self._init_once()

    def _owned(self) -> list[Any]:
        """Everything this composite closes: the default backend and each override store, once each."""
        owned: dict[int, Any] = {}
        if self.default is not None:
            owned[id(self.default)] = self.default
        for name, store in self.stores.items():
            if name not in self._from_default:
                owned.setdefault(id(store), store)
        return list(owned.values())

    async def close(self) -> None:
        await self._init_once.stop()
        for resource in self._owned():
            await resource.close()

    async def dangerously_clear_all(self) -> None:
        """Deletes every row of every configured domain (tests use it)."""
        for store in {id(s): s for s in self.stores.values()}.values():
            await store.dangerously_clear_all()

    async def prune(self, *, retention: Mapping[str, Mapping[str, Any]]) -> list[PruneResult]:
        """Deletes rows older than the configured ages, domain by domain, in bounded batches:
        ``retention={"memory": {"messages": timedelta(days=30)}, "observability": {"spans": "7d"}}``."""
        if not isinstance(retention, Mapping):
            raise ValidationError("retention must be a mapping of domain -> {table: max age}")
        unknown = sorted(set(retention) - set(DOMAINS))
        if unknown:
            raise ValidationError(f"unknown storage domain(s) in retention: {unknown}")
        results: list[PruneResult] = []
        for name, policies in retention.items():
            store = self.stores.get(cast(DomainName, name))
            if store is not None and policies:
                results.extend(await store.prune(retention={name: policies}))
        return results


MastraCompositeStore = MastraStorage
