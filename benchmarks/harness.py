"""Timing helpers shared by the backend benchmarks: ops/s of ours next to the raw driver's (the floor)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class Result:
    operation: str
    ours: float  # ops/s through mastra_storage
    floor: float  # ops/s of the raw driver doing the same work

    @property
    def ratio(self) -> float:
        """How many times slower than the floor (1.0 = as fast as the raw driver)."""
        return self.floor / self.ours


async def paired_ops_per_second(
    ours: Callable[[int], Awaitable[object]], floor: Callable[[int], Awaitable[object]], n: int, rounds: int = 3
) -> tuple[float, float]:
    """ops/s of ``ours`` and ``floor``, each the best of ``rounds`` runs of ``n`` sequential calls.
    The two sides take turns call by call (the first alternating), each call timed alone, so a
    slow stretch of the machine — a late fsync, a busy neighbour — falls on both sides alike."""
    best = [float("inf"), float("inf")]
    clock = time.perf_counter
    for r in range(rounds):
        spent = [0.0, 0.0]
        for i in range(n):
            for side in (0, 1) if i % 2 == 0 else (1, 0):
                start = clock()
                await (ours, floor)[side](r * n + i)
                spent[side] += clock() - start
        best = [min(b, t) for b, t in zip(best, spent, strict=True)]
    return n / best[0], n / best[1]


def table(title: str, results: list[Result], target: float) -> str:
    lines = [
        f"### {title}",
        "",
        "| operation | mastra_storage ops/s | raw driver ops/s (floor) | ratio | within target |",
        "|---|---:|---:|---:|:---:|",
    ]
    for r in results:
        ok = "yes" if r.ratio <= target else "NO"
        lines.append(f"| {r.operation} | {r.ours:,.0f} | {r.floor:,.0f} | {r.ratio:.2f}x | {ok} |")
    return "\n".join(lines)


def arguments(description: str, quick: str = "fewer operations (a smoke run)", **options: str) -> argparse.Namespace:
    """A benchmark's command line: ``--quick``, ``--markdown FILE`` and ``--<option>`` for each
    keyword (its value is the default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--markdown", help="also write the table to this file")
    for name, default in options.items():
        parser.add_argument(f"--{name}", default=default)
    return parser.parse_args()


def publish(text: str, markdown: str | None) -> None:
    """Prints a results table and, when asked, writes it to a Markdown file."""
    print(text)
    if markdown:
        with open(markdown, "w") as out:
            out.write(text + "\n")
