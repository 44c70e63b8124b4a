"""The ``mastra-storage`` command: migrate, copy, prune, stats and doctor, on any store URL.

```
mastra-storage migrate file:./mastra.db --dry-run
mastra-storage copy file:./mastra.db "postgresql://app@db:5432/app?schema=mastra"
mastra-storage prune file:./mastra.db --older-than 30d --domains observability
mastra-storage stats postgresql://app@db:5432/app --json
mastra-storage doctor "dynamodb://mastra?region=eu-west-1"
```

URLs are those of ``mastra_storage.connect``; passwords in them are masked in every line printed.
Exit codes: 0 done (doctor: every check passed), 1 a check or a verification failed, 2 bad usage or
input, 3 the database is newer than this package, 4 the database or network failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from typing import Any, TextIO

import msgspec

from ..backend import BackendStore, masked_url
from ..connect import connect
from ..domains import DOMAINS
from ..errors import SchemaVersionError, StorageError, ValidationError
from .copy import CopyReport, KindReport, copy_domains

__all__ = ["main"]

OK, FAILED, USAGE, TOO_NEW, BACKEND = 0, 1, 2, 3, 4


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line ``argv`` (default: ``sys.argv[1:]``) and returns its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]] = args.run
    try:
        return asyncio.run(command(args))
    except SchemaVersionError as exc:
        return _fail(str(exc), TOO_NEW)
    except ValidationError as exc:
        return _fail(str(exc), USAGE)
    except StorageError as exc:
        return _fail(str(exc), BACKEND)
    except BrokenPipeError:  # the reader (``| head``) has gone: what it read is all it wanted
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (stays open for the interpreter's final flush)
        return OK
    except KeyboardInterrupt:
        return _fail("interrupted: run the same command again to finish (copies are idempotent)", 130)


def _fail(message: str, code: int) -> int:
    print(f"mastra-storage: {message}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mastra-storage",
        description="Operate Mastra storage: schema migrations, copying between backends, retention, "
        "statistics and health checks. URL: file:PATH, :memory:, libsql://, postgresql://USER@HOST/DB"
        "[?schema=S], dynamodb://TABLE[?region=R&endpoint=E], chdb://PATH, clickhouse://HOST:PORT.",
        epilog="Exit codes: 0 ok, 1 a check or verification failed, 2 bad input, 3 database newer than "
        "this package, 4 database or network failure.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, summary: str, run: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Any:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        sub.add_argument("--json", action="store_true", help="print one JSON document for scripts")
        return sub

    migrate = command("migrate", "Apply the pending schema migrations (or show them).", _migrate)
    migrate.add_argument("url", metavar="URL")
    migrate.add_argument("--dry-run", action="store_true", help="list the pending migrations, change nothing")
    migrate.add_argument("--sql", action="store_true", help="print the exact DDL they run (implies --dry-run)")

    copy = command("copy", "Copy every record of the chosen domains to another store, then verify.", _copy)
    copy.add_argument("src", metavar="SRC_URL")
    copy.add_argument("dst", metavar="DST_URL")
    _domains_option(copy)
    copy.add_argument("--page-size", type=int, default=1000, help="records per page (default 1000)")

    prune = command("prune", "Delete records older than an age.", _prune)
    prune.add_argument("url", metavar="URL")
    prune.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m")
    _domains_option(prune)

    stats = command("stats", "Records per domain and kind, and the size on disk where the engine tells.", _stats)
    stats.add_argument("url", metavar="URL")

    doctor = command("doctor", "Check what the backend needs, without changing anything.", _doctor)
    doctor.add_argument("url", metavar="URL")
    return parser


def _domains_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--domains",
        type=lambda text: [d.strip() for d in text.split(",") if d.strip()],
        metavar="D1,D2",
        help=f"comma-separated, among {', '.join(DOMAINS)} (default: all the store serves)",
    )


def _domains(store: BackendStore, chosen: list[str] | None) -> list[str]:
    if chosen is None:
        return list(store.stores)
    unknown = [d for d in chosen if d not in DOMAINS]
    if unknown:
        raise ValidationError(f"unknown domain(s) {unknown}; known: {', '.join(DOMAINS)}")
    return [d for d in chosen if d in store.stores]


def _emit(args: argparse.Namespace, document: Any, lines: Sequence[str], out: TextIO = sys.stdout) -> None:
    if args.json:
        json.dump(document, out, indent=2, default=str)
        out.write("\n")
    else:
        for line in lines:
            print(line, file=out)


# ------------------------------------------------------------------ commands


async def _migrate(args: argparse.Namespace) -> int:
    dry_run = args.dry_run or args.sql
    async with _opened(args.url) as store:
        steps = await store.migrate(dry_run=dry_run)
    if args.sql and not args.json:
        for step in steps:
            print(f"-- {step.domain} {step.version}: {step.name}")
            for statement in step.statements:
                print(f"{statement};")
        return OK
    verb = "pending" if dry_run else "applied"
    lines = [f"{step.domain} {step.version} {step.name}: {verb}" for step in steps] or ["up to date"]
    _emit(args, {"url": masked_url(args.url), "dry_run": dry_run, "steps": [asdict(s) for s in steps]}, lines)
    return OK


async def _copy(args: argparse.Namespace) -> int:
    async with _opened(args.src, read_only=True) as src, _opened(args.dst) as dst:
        await dst.init()  # the destination's schema first: migrations, not a copy, create tables
        # By default every domain both stores serve (ClickHouse keeps only observability and scores).
        domains = _domains(src, args.domains) if args.domains is not None else None
        report = await copy_domains(src, dst, domains, page_size=args.page_size, progress=_progress_bar())
    if sys.stderr.isatty():
        print(file=sys.stderr)
    lines = [_kind_line(k) for k in report.kinds]
    lines.append(f"copied {report.copied} records: " + ("verified" if report.ok else "VERIFICATION FAILED"))
    _emit(args, _copy_document(args, report), lines)
    return OK if report.ok else FAILED


def _kind_line(k: KindReport) -> str:
    verdict = "ok" if k.ok else f"MISMATCH {k.mismatched[:5]}"
    return (
        f"{k.domain}.{k.kind}: {k.copied} copied, source {k.source_count}, destination {k.target_count}, "
        f"{k.sampled} sampled: {verdict}"
    )


def _copy_document(args: argparse.Namespace, report: CopyReport) -> dict[str, Any]:
    return {
        "src": masked_url(args.src),
        "dst": masked_url(args.dst),
        "ok": report.ok,
        "copied": report.copied,
        "kinds": [{**asdict(k), "ok": k.ok} for k in report.kinds],
    }


def _progress_bar() -> Callable[[KindReport], None] | None:
    """A one-line bar on a terminal, redrawn after every page (nothing when stderr is not a terminal)."""
    if not sys.stderr.isatty():
        return None

    def draw(k: KindReport) -> None:
        share = k.copied / k.source_count if k.source_count else 1.0
        bar = "#" * int(30 * min(share, 1.0))
        sys.stderr.write(f"\r{k.domain}.{k.kind:<10} [{bar:<30}] {k.copied}/{k.source_count}")
        sys.stderr.flush()

    return draw


async def _prune(args: argparse.Namespace) -> int:
    async with _opened(args.url) as store:
        domains = _domains(store, args.domains)
        retention = {d: {key: args.older_than for key in store.stores[d].retention_keys} for d in domains}  # type: ignore[index]
        results = await store.prune(retention=retention)
    lines = [f"{r.domain}.{r.table}: {r.deleted} deleted" for r in results] or ["nothing ages in these domains"]
    _emit(args, {"url": masked_url(args.url), "results": [_plain(r) for r in results]}, lines)
    return OK


async def _stats(args: argparse.Namespace) -> int:
    async with _opened(args.url, read_only=True) as store:
        counts: dict[str, dict[str, int]] = {}
        for name, domain in store.stores.items():
            counts[name] = {kind: await domain.count_records(kind=kind) for kind in domain.record_kinds}
        size = await store.size_bytes()
    lines = [f"{d}.{k}: {n}" for d, kinds in counts.items() for k, n in kinds.items()]
    lines.append(f"size on disk: {size} bytes" if size is not None else "size on disk: not reported by this engine")
    _emit(args, {"url": masked_url(args.url), "records": counts, "size_bytes": size}, lines)
    return OK


async def _doctor(args: argparse.Namespace) -> int:
    async with _opened(args.url, read_only=True) as store:
        checks = await store.diagnose()
    healthy = all(c.ok for c in checks)
    lines = [f"[{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in checks]
    lines.append("verdict: healthy" if healthy else "verdict: NOT READY (see the failed checks)")
    _emit(args, {"url": masked_url(args.url), "healthy": healthy, "checks": [asdict(c) for c in checks]}, lines)
    return OK if healthy else FAILED


def _plain(record: Any) -> Any:
    return msgspec.to_builtins(record)


class _opened:
    """``connect(url)`` as a context manager that closes the store but does not ``init()`` it: the
    commands decide what may change (``read_only`` stores never create tables)."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self.store = connect(url, disable_init=read_only)

    async def __aenter__(self) -> BackendStore:
        return self.store

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()
