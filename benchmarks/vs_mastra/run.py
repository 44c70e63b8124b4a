"""mastra_storage against Mastra's own TypeScript stores: one workload, the same database, alternating runs.

For each backend, ``mastra_side.mjs`` (``@mastra/libsql``, ``@mastra/pg``, ``@mastra/dynamodb`` at the
versions pinned in ``package.json``, installed by this script into ``.cache/vs_mastra``) and
``python_side.py`` run the same operations on the same records with 16 concurrent callers, in
separate processes that both stay open for a round and take turns operation by operation: each
operation is timed on one side and then at once on the other, the side going first alternating
between operations and rounds, so a slow stretch of a noisy machine falls on both. Each figure is
the best of the rounds; ``ratio`` = our ops/s ÷ Mastra's (above 1: this package is faster). The
last column gives the lowest and highest ratio within one round (the two sides' measurements back
to back): how far a single measurement moves it. An operation is timed over its call count or 3
seconds, whichever ends first.

Run: ``make bench-mastra`` (or ``python -m benchmarks.vs_mastra.run --backends libsql --quick``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from ..harness import arguments, publish

HERE = Path(__file__).parent
CACHE = HERE.parent.parent / ".cache" / "vs_mastra"
PG_URL = os.environ.get("MASTRA_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
DYNAMODB_URL = os.environ.get("DYNAMODB_URL", "http://127.0.0.1:8000")

OPERATIONS = {  # name -> (label, calls per measurement)
    "save_thread": ("save thread", 2000),
    "save_messages_10": ("save 10 messages", 1000),
    "list_last_20_messages": ("list last 20 messages", 2000),
    "list_messages_with_include": ("list with include context", 1000),
    "get_thread_by_id": ("get thread by id", 4000),
    "list_threads_page": ("list threads page (20)", 2000),
    "update_working_memory": ("update resource working memory", 2000),
    "persist_snapshot": ("persist snapshot", 2000),
    "load_snapshot": ("load snapshot", 4000),
    "list_workflow_runs_page": ("list workflow runs page (20)", 1000),
    # Each of the 16 callers on a page of its own: nothing for concurrent callers to share.
    "list_workflow_runs_pages": ("list workflow runs, 16 different pages (20)", 1000),
    "save_score": ("save score", 2000),
    "list_scores_by_scorer": ("list scores by scorer (20)", 1000),
    "batch_create_spans": ("batch-create 10 spans", 1000),
    "get_trace": ("get trace (10 spans)", 2000),
    "init": ("init (store on an existing database)", 0),
}
SIZES = {"threads": 200, "messages": 1000, "resources": 50, "runs": 320, "scores": 200, "traces": 100}


def install_mastra() -> None:
    """``npm install`` of the pinned Mastra packages into the ignored cache (again when package.json changes)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = (HERE / "package.json").read_text()
    installed = CACHE / "package.json"
    if not (CACHE / "node_modules").exists() or not installed.exists() or installed.read_text() != wanted:
        installed.write_text(wanted)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CACHE, check=True)
    shutil.copy(HERE / "mastra_side.mjs", CACHE / "mastra_side.mjs")


async def prepare(backend: str) -> dict[str, Any]:
    """A fresh database for the run; what both sides connect to."""
    if backend == "libsql":
        for suffix in ("", "-wal", "-shm"):
            (CACHE / f"bench.db{suffix}").unlink(missing_ok=True)
        return {"url": f"file:{CACHE / 'bench.db'}"}
    if backend == "pg":
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        await conn.execute("DROP SCHEMA IF EXISTS vs_mastra CASCADE")
        await conn.close()
        return {"url": PG_URL, "schema": "vs_mastra"}
    import aioboto3

    creds = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    async with aioboto3.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url=DYNAMODB_URL, **creds
    ) as client:
        for table in ("vs_mastra_ts", "vs_mastra_py"):
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                await client.delete_table(TableName=table)
        # Mastra's TABLE_SETUP: pk/sk and gsi1…gsi7, each gsiNpk/gsiNsk, projection ALL.
        names = ["pk", "sk"] + [f"gsi{n}{k}" for n in range(1, 8) for k in ("pk", "sk")]
        await client.create_table(
            TableName="vs_mastra_ts",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in names],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": f"gsi{n}",
                    "KeySchema": [
                        {"AttributeName": f"gsi{n}pk", "KeyType": "HASH"},
                        {"AttributeName": f"gsi{n}sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for n in range(1, 8)
            ],
        )
    return {"url": DYNAMODB_URL, "table": "vs_mastra_ts", "py_table": "vs_mastra_py"}


class Side:
    """One side's process for a round: its store open (and seeded in the first round), timing one
    operation per request."""

    def __init__(self, name: str, plan: dict[str, Any]) -> None:
        self.name = name
        self.plan = plan
        self.proc: asyncio.subprocess.Process | None = None
        # stderr goes to a file, read only on failure: a pipe nobody drains would stall a side
        # that logs more than the pipe holds.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115  (lives as long as the process; stop() closes it)

    async def start(self) -> None:
        if self.name == "mastra":
            cmd, cwd = ["node", "mastra_side.mjs", json.dumps(self.plan)], CACHE
        else:
            cmd = [sys.executable, "-m", "benchmarks.vs_mastra.python_side", json.dumps(self.plan)]
            cwd = HERE.parent.parent
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=self.errors,
            limit=2**20,
        )  # fmt: skip
        await self._line()  # "ready": opened and seeded

    async def measure(self, op: str) -> float | None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{op}\n".encode())
        await self.proc.stdin.drain()
        value: float | None = json.loads(await self._line())[op]
        return value

    async def stop(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        if await self.proc.wait() != 0:
            self._fail()
        self.errors.close()

    async def _line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            await self.proc.wait()
            self._fail()
        return line.decode()

    def _fail(self) -> NoReturn:
        self.errors.seek(0)
        raise RuntimeError(f"{self.name} side failed:\n{self.errors.read().decode(errors='replace')[-3000:]}")


class Row(NamedTuple):
    """One operation's figures: each side's best round, and the ratio of each round's pair."""

    theirs: float | None  # Mastra's best ops/s, None where Mastra lacks the operation
    ours: float
    round_ratios: list[float]  # ours ÷ Mastra within each round (the two measurements back to back)


async def compare(backend: str, rounds: int, scale: float) -> dict[str, Row]:
    """Per operation: both sides' figures over ``rounds`` alternating rounds."""
    target = await prepare(backend)
    seen: dict[str, dict[str, list[float | None]]] = {"mastra": {}, "ours": {}}
    for r in range(rounds):
        sides = {}
        for name in ("mastra", "ours"):  # one after the other: each seeds its own records
            plan = {
                "backend": backend, **target, "prefix": "ts-" if name == "mastra" else "py-", "seed": r == 0,
                "round": r, "base": "2026-01-01T00:00:00.000Z", "concurrency": 16, "inits": max(3, int(20 * scale)),
                "seconds": 3.0 * scale, **SIZES,
                "n": {op: max(50, int(count * scale)) for op, (_, count) in OPERATIONS.items()},
            }  # fmt: skip
            if name == "ours" and "py_table" in target:
                plan["table"] = target["py_table"]
            sides[name] = Side(name, plan)
            await sides[name].start()
        for i, op in enumerate(OPERATIONS):
            for name in ("mastra", "ours") if (r + i) % 2 == 0 else ("ours", "mastra"):
                seen[name].setdefault(op, []).append(await sides[name].measure(op))
        for side in sides.values():
            await side.stop()
    rows = {}
    for op in OPERATIONS:
        theirs, ours = seen["mastra"][op], [v or 0.0 for v in seen["ours"][op]]
        pairs = [o / t for t, o in zip(theirs, ours, strict=True) if t]
        best = None if any(t is None for t in theirs) else max(t or 0.0 for t in theirs)
        rows[op] = Row(best, max(ours), pairs)
    return rows


def engine_limit(path: Path) -> str:
    """The engine's own figures on the benchmark's file, synchronous on one thread (no asyncio, no
    records): what "close to the engine" is measured against."""
    import time

    import apsw

    db = apsw.Connection(str(path))
    ids = [row[0] for row in db.execute("SELECT id FROM mastra_threads WHERE id LIKE 'py-thread-%'")]
    lines = ["| raw apsw, one thread, no asyncio | ops/s |", "|---|---:|"]
    for label, sql, args in (
        ("get thread row by primary key", "SELECT * FROM mastra_threads WHERE id = ?", lambda i: (ids[i % len(ids)],)),
        ("load snapshot row", "SELECT snapshot FROM mastra_workflow_snapshot WHERE workflow_name = ? AND run_id = ?",
         lambda i: ("py-wf", f"py-run-{i % 200}")),
    ):  # fmt: skip
        start = time.perf_counter()
        for i in range(20_000):
            db.execute(sql, args(i)).fetchall()
        lines.append(f"| {label} | {20_000 / (time.perf_counter() - start):,.0f} |")
    start = time.perf_counter()
    for i in range(0, 20_000, 16):  # thread rows in transactions of 16, as a group commit makes them
        db.execute("BEGIN IMMEDIATE")
        for k in range(i, i + 16):
            db.execute(
                'INSERT INTO mastra_threads (id, "resourceId", title, metadata, "createdAt", "updatedAt") '
                "VALUES (?, ?, ?, ?, ?, ?)",
                (f"raw-{k}", "raw", "t", '{"i":1}', "2026-01-01T00:00:00.000Z", "2026-01-01T00:00:00.000Z"),
            )
        db.execute("COMMIT")
    lines.append(f"| insert thread row (16 per transaction) | {20_000 / (time.perf_counter() - start):,.0f} |")
    db.execute("DELETE FROM mastra_threads WHERE id LIKE 'raw-%'")
    db.close()
    return "\n".join(lines)


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def table(backend: str, label: str, rows: dict[str, Row]) -> tuple[str, float]:
    lines = [
        f"### {label}",
        "",
        "| operation | Mastra ops/s | mastra_storage ops/s | ratio (ours ÷ Mastra) | ratio within each round |",
        "|---|---:|---:|---:|---:|",
    ]
    ratios = []
    for op, row in rows.items():
        name = OPERATIONS[op][0]
        if row.theirs is None:
            lines.append(f"| {name} | not supported | {row.ours:,.0f} | — | — |")
            continue
        ratios.append(row.ours / row.theirs)
        spread = f"{min(row.round_ratios):.2f}x to {max(row.round_ratios):.2f}x"
        lines.append(f"| {name} | {row.theirs:,.0f} | {row.ours:,.0f} | {row.ours / row.theirs:.2f}x | {spread} |")
    mean = geomean(ratios)
    lines += ["", f"Geometric mean ({backend}, {len(ratios)} operations): **{mean:.2f}x**"]
    return "\n".join(lines), mean


def chart(path: str, results: dict[str, dict[str, Row]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ops = list(OPERATIONS)
    width = 0.8 / max(1, len(results))
    fig, ax = plt.subplots(figsize=(12, 5.5))
    for k, (backend, rows) in enumerate(results.items()):
        xs, ys = [], []
        for i, op in enumerate(ops):
            row = rows[op]
            if row.theirs:
                xs.append(i + k * width)
                ys.append(row.ours / row.theirs)
        ax.bar(xs, ys, width, label=backend)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_ylabel("mastra_storage ops/s ÷ Mastra ops/s (log)")
    ax.set_xticks([i + width * (len(results) - 1) / 2 for i in range(len(ops))])
    ax.set_xticklabels([OPERATIONS[op][0] for op in ops], rotation=35, ha="right", fontsize=8)
    ax.set_title("mastra_storage vs Mastra's TypeScript stores (16 concurrent callers, same database)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


LABELS = {
    "libsql": "libSQL — local file (WAL), `@mastra/libsql` vs `LibSQLStore`",
    "pg": "PostgreSQL 15 — `@mastra/pg` vs `PostgresStore`",
    "dynamodb": "DynamoDB Local — `@mastra/dynamodb` vs `DynamoDBStore`",
}


async def main() -> None:
    args = arguments(__doc__ or "", backends="libsql,pg,dynamodb", rounds="3", chart="")
    install_mastra()
    scale = 0.1 if args.quick else 1.0
    results: dict[str, dict[str, Row]] = {}
    sections = []
    for backend in args.backends.split(","):
        results[backend] = await compare(backend, int(args.rounds), scale)
        text, _ = table(backend, LABELS[backend], results[backend])
        sections.append(text)
        if backend == "libsql":
            sections.append(engine_limit(CACHE / "bench.db"))
    publish("\n\n".join(sections), args.markdown)
    if args.chart:
        chart(args.chart, results)


if __name__ == "__main__":
    asyncio.run(main())
