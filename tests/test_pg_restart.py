"""A PostgreSQL restart under a live store, on a throwaway cluster this test creates (the shared
server is never disturbed): calls made after the server is back succeed."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mastra_storage.pg import PostgresStore
from mastra_storage.testing.samples import sample_thread, timed_messages


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").iterdir())
    return versions[-1] / "bin"


async def _as_postgres(*command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "runuser", "-u", "postgres", "--", *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()


class Cluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.data = root / "data"

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        await _as_postgres(
            str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"), "start"
        )

    async def stop(self) -> None:
        await _as_postgres(str(_pg_bin() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="mastra-pg-"))
    shutil.chown(root, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = Cluster(root, port)
    await _as_postgres(str(_pg_bin() / "initdb"), "-D", str(c.data), "-A", "trust", "-U", "postgres", "--no-sync")
    await c.start()
    yield c
    await c.stop()
    shutil.rmtree(root, ignore_errors=True)


async def test_calls_after_a_restart_succeed(cluster: Cluster) -> None:
    url = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    async with PostgresStore(id="restart", connection_string=url, min_size=3, max_size=3) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await asyncio.gather(*(store.memory.get_thread_by_id(thread_id=thread.id) for _ in range(6)))
        assert store.memory._pool.get_size() == 3  # three live connections that the restart will kill
        await cluster.stop()
        # A call made while the server is down waits (retrying with backoff) until it is back.
        during = asyncio.create_task(store.memory.get_thread_by_id(thread_id=thread.id))
        await cluster.start()
        assert await during == thread
        for _ in range(3):  # every pooled connection is dead; each call must still succeed
            assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread
        await store.memory.save_messages(messages=timed_messages(thread, 5))
        assert (await store.memory.list_messages(thread_id=thread.id)).total == 5
