"""Copying every record of chosen domains from one store to another, page by page, then verifying.

```python
from mastra_storage import connect
from mastra_storage.cli.copy import copy_domains

async with connect("file:./mastra.db") as src, connect("postgresql://...") as dst:
    report = await copy_domains(src, dst, ["memory", "workflows"])
    assert report.ok
```

Pages stream: one page (``page_size`` records) is in memory at a time, exported from the source
and imported into the destination before the next is read. Imports replace records with the same
key, so running a copy again after an interruption finishes the job without duplicates. At the end
each kind's count is compared (the destination holds at least what the source does) and a sample
spread over the copy is read back from the destination through the public getters and compared
field by field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..backend import BackendStore
from ..domains import DomainStore
from ..errors import ValidationError

SAMPLE_EVERY = 50  # one record in this many is read back from the destination, up to SAMPLE_MAX
SAMPLE_MAX = 200


@dataclass
class KindReport:
    domain: str
    kind: str
    copied: int = 0
    source_count: int = 0
    target_count: int = 0
    sampled: int = 0
    mismatched: list[str] = field(default_factory=list)  # keys of sampled records that differ

    @property
    def ok(self) -> bool:
        return self.target_count >= self.source_count and not self.mismatched


@dataclass
class CopyReport:
    kinds: list[KindReport]

    @property
    def ok(self) -> bool:
        return all(kind.ok for kind in self.kinds)

    @property
    def copied(self) -> int:
        return sum(kind.copied for kind in self.kinds)


Progress = Callable[[KindReport], None]  # called after every page


def _getter(store: DomainStore, kind: str) -> Callable[[Any], Awaitable[Any]]:
    """How a copied record is read back by its key, through the public API."""
    s: Any = store
    getters: dict[str, Callable[[Any], Awaitable[Any]]] = {
        "threads": lambda r: s.get_thread_by_id(thread_id=r.id),
        "messages": lambda r: _first(s.list_messages_by_id(message_ids=[r.id])),
        "resources": lambda r: s.get_resource_by_id(resource_id=r.id),
        "runs": lambda r: s.get_workflow_run_by_id(run_id=r.run_id, workflow_name=r.workflow_name),
        "scores": lambda r: s.get_score_by_id(id=r.id),
        "spans": lambda r: s.get_span(trace_id=r.trace_id, span_id=r.span_id),
        "agents": lambda r: s.get_by_id(id=r.id),
        "versions": lambda r: s.get_version(id=r.id),
    }
    return getters[kind]


async def _first(found: Awaitable[list[Any]]) -> Any:
    records = await found
    return records[0] if records else None


def _key(store: DomainStore, kind: str, record: Any) -> str:
    return "/".join(str(getattr(record, key)) for key in store.record_kinds[kind].keys)


async def copy_domains(
    src: BackendStore,
    dst: BackendStore,
    domains: Sequence[str] | None = None,
    *,
    page_size: int = 1000,
    progress: Progress | None = None,
) -> CopyReport:
    """Copies every record of ``domains`` (default: every domain both stores serve) from ``src`` to
    ``dst`` and verifies the result; see the module docstring."""
    names = list(domains) if domains is not None else [d for d in src.stores if d in dst.stores]
    for name in names:
        if name not in src.stores or name not in dst.stores:
            raise ValidationError(f"domain {name!r} is not served by both stores")
    reports: list[KindReport] = []
    for name in names:
        source, target = src.stores[name], dst.stores[name]  # type: ignore[index]
        for kind in source.record_kinds:
            report = KindReport(name, kind, source_count=await source.count_records(kind=kind))
            reports.append(report)
            await _copy_kind(source, target, report, page_size, progress)
    return CopyReport(reports)


async def _copy_kind(
    source: DomainStore, target: DomainStore, report: KindReport, page_size: int, progress: Progress | None
) -> None:
    kind = report.kind
    read_back = _getter(target, kind)
    cursor: str | None = None
    while True:
        page = await source.export_records(kind=kind, after=cursor, limit=page_size)
        await target.import_records(kind=kind, records=page.records)
        for i, record in enumerate(page.records):
            if (report.copied + i) % SAMPLE_EVERY == 0 and report.sampled < SAMPLE_MAX:
                report.sampled += 1
                if await read_back(record) != record:
                    report.mismatched.append(_key(source, kind, record))
        report.copied += len(page.records)
        if progress is not None:
            progress(report)
        cursor = page.next
        if cursor is None:
            break
    report.target_count = await target.count_records(kind=kind)
