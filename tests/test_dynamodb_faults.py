"""DynamoDB under real faults: a DynamoDB Local of the test's own (on its own port, data on disk)
frozen with SIGSTOP, stopped with SIGTERM and started again; event loops that end with a store open;
cancelled lists; ``close()`` with calls in flight. Any "never retrieved" or "unclosed" report from
asyncio or aiohttp fails the test."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mastra_storage import BackendError
from mastra_storage.dynamodb import DynamoDBStore
from mastra_storage.dynamodb.connection import DynamoSettings
from mastra_storage.testing.samples import sample_thread, timed_messages

from .dynamodb_server import CREDENTIALS, DYNAMODB_URL, drop_table, new_table

EMULATOR = Path(__file__).resolve().parent.parent / ".services" / "dynamodb" / "package" / "emulator"


class PrivateDynamoDB:
    """DynamoDB Local on a free port with its data in a temporary directory (it survives restarts)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ddb-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "java", f"-Djava.library.path={EMULATOR / 'DynamoDBLocal_lib'}", "-jar",
            str(EMULATOR / "DynamoDBLocal.jar"), "-dbPath", self.dir, "-sharedDb", "-disableTelemetry",
            "-port", str(self.port), cwd=self.dir, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(0.1)
        raise AssertionError("DynamoDB Local did not start")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            await self.proc.wait()
            self.proc = None


@pytest.fixture
async def private() -> AsyncIterator[PrivateDynamoDB]:
    server = PrivateDynamoDB()
    await server.start()
    yield server
    await server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def no_leak_reports(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test on asyncio's "exception was never retrieved" / aiohttp's "Unclosed" reports."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    gc.collect()  # unclosed sessions report from their finalizers
    records = caplog.get_records("call") + caplog.records  # during the test, and from the collection just now
    reports = [r.getMessage() for r in records if r.name == "asyncio"]
    leaks = [m for m in reports if "never retrieved" in m or "Unclosed" in m or "unclosed" in m]
    assert not leaks, leaks[:3]


def store_on(url: str, table: str, **options: object) -> DynamoDBStore:
    return DynamoDBStore(
        id="faults",
        table_name=table,
        endpoint_url=url,
        credentials=CREDENTIALS,
        create_table=True,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("no_leak_reports")
async def test_a_frozen_endpoint_fails_fast_and_recovers(private: PrivateDynamoDB) -> None:
    store = store_on(private.url, new_table(), connect_timeout=1, read_timeout=1, max_attempts=2)
    async with store:
        thread = await store.memory.save_thread(thread=sample_thread())
        attempts: list[float] = []
        client = await store.connection.client()
        client.meta.events.register("before-send.dynamodb.GetItem", lambda **_: attempts.append(time.perf_counter()))
        private.signal(signal.SIGSTOP)  # the process is frozen: connections open, nothing answers
        try:
            start = time.perf_counter()
            with pytest.raises(BackendError):
                await store.memory.get_thread_by_id(thread_id=thread.id)
            # max_attempts counts every attempt (botocore's own "max_attempts" counts only retries).
            assert len(attempts) == 2 and attempts[1] - attempts[0] >= 1  # the first waited its read timeout
            assert time.perf_counter() - start < 6  # 2 attempts x 1 s read timeout, plus backoff
            with pytest.raises(BackendError):
                await store.memory.list_messages(thread_id=thread.id)
        finally:
            private.signal(signal.SIGCONT)
        assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread


@pytest.mark.usefixtures("no_leak_reports")
async def test_a_stopped_endpoint_fails_fast_and_calls_work_after_restart(private: PrivateDynamoDB) -> None:
    store = store_on(private.url, new_table(), connect_timeout=1, read_timeout=2, max_attempts=2)
    async with store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await private.stop()  # connection refused from now on
        start = time.perf_counter()
        with pytest.raises(BackendError):
            await store.memory.save_messages(messages=timed_messages(thread, 3))
        with pytest.raises(BackendError):
            await store.memory.list_messages(thread_id=thread.id)
        assert time.perf_counter() - start < 6
        await private.start()
        assert await store.memory.get_thread_by_id(thread_id=thread.id) == thread
        await store.memory.save_messages(messages=timed_messages(thread, 3))
        assert (await store.memory.list_messages(thread_id=thread.id)).total == 3


@pytest.mark.usefixtures("no_leak_reports")
async def test_cancelled_lists_leave_no_task_behind() -> None:
    table = new_table()
    async with store_on(DYNAMODB_URL, table) as store:
        thread = await store.memory.save_thread(thread=sample_thread())
        await store.memory.save_messages(messages=timed_messages(thread, 30))
        cancelled = 0
        for i in range(120):
            try:
                await asyncio.wait_for(store.memory.list_messages(thread_id=thread.id, per_page=5), 0.0005 * (i % 8))
            except TimeoutError:
                cancelled += 1
        assert cancelled > 0
        before = len(asyncio.all_tasks())
        await asyncio.sleep(0.05)
        assert len(asyncio.all_tasks()) <= before  # nothing the cancelled calls started is still running
        assert (await store.memory.list_messages(thread_id=thread.id)).total == 30
        await store.memory.dangerously_clear_all()
    await drop_table(table)


@pytest.mark.usefixtures("no_leak_reports")
async def test_close_waits_for_calls_in_flight() -> None:
    table = new_table()
    store = store_on(DYNAMODB_URL, table)
    thread = await store.memory.save_thread(thread=sample_thread())
    calls = [asyncio.create_task(store.memory.save_messages(messages=timed_messages(thread, 20))) for _ in range(10)]
    await asyncio.sleep(0)
    await store.close()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, list) and len(r) == 20 for r in results), results
    async with store_on(DYNAMODB_URL, table) as fresh:
        assert (await fresh.memory.list_messages(thread_id=thread.id, per_page=1)).total == 200
    await drop_table(table)


def test_an_unclosed_store_does_not_break_the_next_event_loop() -> None:
    table = new_table()

    async def first() -> None:
        store = store_on(DYNAMODB_URL, table)
        await store.memory.save_thread(thread=sample_thread(id="from-first"))

    async def second() -> None:
        async with store_on(DYNAMODB_URL, table) as store:
            assert await store.memory.get_thread_by_id(thread_id="from-first") is not None
            await store.memory.save_thread(thread=sample_thread(id="from-second"))

    asyncio.run(first())  # its client belonged to a loop that is gone
    asyncio.run(second())
    asyncio.run(second())
    asyncio.run(drop_table(table))


def test_secrets_never_appear_in_a_repr() -> None:
    secret = {
        "aws_access_key_id": "AKIAEXAMPLEKEY",
        "aws_secret_access_key": "s3cr3t/value",
        "aws_session_token": "tok",
    }
    settings = DynamoSettings(table_name="mastra", credentials=secret)
    store = DynamoDBStore(id="x", table_name="mastra", credentials=secret)
    for text in (repr(settings), repr(store.connection), str(vars(store.connection))):
        assert "s3cr3t" not in text and "AKIAEXAMPLEKEY" not in text and "tok'" not in text
