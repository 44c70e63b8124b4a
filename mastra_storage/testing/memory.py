"""Conformance tests for ``MemoryStorage``: threads, messages, resources (reference §10 memory/*)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import msgspec
import pytest

from ..core.codec import iso, utc_now
from ..domains import MemoryStorage
from ..errors import ConflictError, NotFoundError, ValidationError
from ..types import DateRange, IncludeContext, Message, StorageThread
from .samples import sample_message, sample_resource, sample_thread, timed_messages, uid


async def _thread_with_messages(memory: MemoryStorage, count: int, **kw: Any) -> tuple[StorageThread, list[Message]]:
    thread = await memory.save_thread(thread=sample_thread(**kw))
    messages = timed_messages(thread, count)
    await memory.save_messages(messages=messages)
    return thread, messages


def _ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


class MemoryConformance:
    """Behaviour every ``MemoryStorage`` must have. A backend's test module subclasses this and
    provides a ``backend`` fixture: an initialized store whose ``get_store("memory")`` is empty."""

    @pytest.fixture
    async def memory(self, backend: Any) -> MemoryStorage:
        store: MemoryStorage = await backend.get_store("memory")
        return store

    # ------------------------------------------------------------ threads

    async def test_thread_round_trips(self, memory: MemoryStorage) -> None:
        thread = sample_thread(title="Quotes ' \" and emoji 🎉", metadata={"nested": {"a": [1, None, True]}})
        assert await memory.save_thread(thread=thread) == thread
        assert await memory.get_thread_by_id(thread_id=thread.id) == thread

    async def test_thread_accepts_a_plain_mapping(self, memory: MemoryStorage) -> None:
        saved = await memory.save_thread(thread={"id": "12345", "resource_id": "67890", "title": "t"})
        fetched = await memory.get_thread_by_id(thread_id="12345")
        assert fetched is not None and fetched.resource_id == "67890" and fetched == saved

    async def test_empty_title_is_preserved(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread(title=""))
        fetched = await memory.get_thread_by_id(thread_id=thread.id)
        assert fetched is not None and fetched.title == ""

    async def test_timestamps_round_trip_to_the_millisecond(self, memory: MemoryStorage) -> None:
        created = utc_now() - timedelta(days=3, microseconds=123_456)
        thread = await memory.save_thread(thread=sample_thread(created_at=created, updated_at=created))
        fetched = await memory.get_thread_by_id(thread_id=thread.id)
        assert fetched is not None
        assert iso(fetched.created_at) == iso(created) and fetched.created_at.microsecond % 1000 == 0
        assert fetched.created_at.tzinfo is not None

    async def test_missing_thread_is_none(self, memory: MemoryStorage) -> None:
        assert await memory.get_thread_by_id(thread_id="no-such-thread") is None

    async def test_resource_id_scopes_get_thread(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        assert await memory.get_thread_by_id(thread_id=thread.id, resource_id=thread.resource_id) == thread
        assert await memory.get_thread_by_id(thread_id=thread.id, resource_id="someone-else") is None
        assert await memory.get_thread_by_id(thread_id=thread.id, resource_id="") is None
        assert await memory.get_thread_by_id(thread_id=thread.id) == thread

    async def test_concurrent_reads_each_get_their_own_thread(self, memory: MemoryStorage) -> None:
        # Reads in flight together (a backend may fetch them in one request) answer as one by one.
        threads = [await memory.save_thread(thread=sample_thread()) for _ in range(5)]
        asks: list[tuple[str, str | None]] = [(t.id, None) for t in threads]
        asks += [(threads[0].id, None)] * 3 + [
            ("no-such-thread", None),
            (threads[1].id, threads[1].resource_id),
            (threads[2].id, "someone-else"),
        ]
        got = await asyncio.gather(*(memory.get_thread_by_id(thread_id=i, resource_id=r) for i, r in asks))
        assert got == [*threads, threads[0], threads[0], threads[0], None, threads[1], None]
        # Callers of the same thread own separate records: one caller's change is not another's.
        first, second = got[0], got[5]
        assert first is not None and second is not None and first is not second
        first.title = "changed by one caller"
        assert second.title == threads[0].title

    async def test_concurrent_saves_each_land_whole(self, memory: MemoryStorage) -> None:
        # Saves in flight together (a backend may write them in one statement) land as one by one;
        # two saves of one thread in flight together leave one of the two, whole.
        threads = [
            sample_thread(
                title=f"quote ' \" \\ {i} 🎉 \u2028", metadata=None if i % 3 == 0 else {"i": i, "l": [1, None]}
            )
            for i in range(12)
        ]
        assert await asyncio.gather(*(memory.save_thread(thread=t) for t in threads)) == threads
        for thread in threads:
            assert await memory.get_thread_by_id(thread_id=thread.id) == thread
        first = msgspec.structs.replace(threads[0], title="first")
        second = msgspec.structs.replace(threads[0], title="second", metadata={"second": True})
        await asyncio.gather(memory.save_thread(thread=first), memory.save_thread(thread=second))
        assert await memory.get_thread_by_id(thread_id=threads[0].id) in (first, second)

    async def test_a_cancelled_read_leaves_the_concurrent_ones_whole(self, memory: MemoryStorage) -> None:
        threads = [await memory.save_thread(thread=sample_thread()) for _ in range(6)]
        reads = [asyncio.ensure_future(memory.get_thread_by_id(thread_id=t.id)) for t in threads]
        await asyncio.sleep(0)  # every read has started and is waiting
        for read in reads[::2]:
            read.cancel()
        results = await asyncio.gather(*reads, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
        assert results[1::2] == threads[1::2]
        assert await memory.get_thread_by_id(thread_id=threads[0].id) == threads[0]

    async def test_save_thread_upserts(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread(title="first"))
        thread.title = "second"
        await memory.save_thread(thread=thread)
        listed = await memory.list_threads(resource_id=thread.resource_id)
        assert listed.total == 1 and listed.threads[0].title == "second"

    async def test_invalid_thread_is_rejected_and_nothing_written(self, memory: MemoryStorage) -> None:
        with pytest.raises(ValidationError):
            await memory.save_thread(thread={"id": "", "resource_id": "r"})
        with pytest.raises(ValidationError):
            await memory.save_thread(thread={"id": "x", "resource_id": "r", "metadata": "not a dict"})
        with pytest.raises(ValidationError):
            await memory.save_thread(thread={"id": "y"})
        assert (await memory.list_threads()).total == 0

    async def test_update_thread_merges_metadata_and_bumps_updated_at(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread(metadata={"key": "value", "keep": 1}))
        updated = await memory.update_thread(id=thread.id, title="Updated", metadata={"key": "new", "added": True})
        assert updated.title == "Updated"
        assert updated.metadata == {"key": "new", "keep": 1, "added": True}
        assert updated.updated_at > thread.updated_at
        assert await memory.get_thread_by_id(thread_id=thread.id) == updated
        again = await memory.update_thread(id=thread.id, title="Again")
        assert again.updated_at > updated.updated_at and again.metadata == updated.metadata

    async def test_update_missing_thread_is_not_found(self, memory: MemoryStorage) -> None:
        with pytest.raises(NotFoundError) as err:
            await memory.update_thread(id="missing", title="x")
        assert err.value.id.endswith("UPDATE_THREAD_NOT_FOUND") and err.value.category == "USER"

    async def test_concurrent_thread_updates_all_land(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread(metadata={}))
        await asyncio.gather(*(memory.update_thread(id=thread.id, metadata={f"k{i}": i}) for i in range(5)))
        fetched = await memory.get_thread_by_id(thread_id=thread.id)
        assert fetched is not None and fetched.metadata == {f"k{i}": i for i in range(5)}

    async def test_delete_thread_cascades_to_messages(self, memory: MemoryStorage) -> None:
        thread, _ = await _thread_with_messages(memory, 3)
        other, _ = await _thread_with_messages(memory, 2)
        await memory.delete_thread(thread_id=thread.id)
        assert await memory.get_thread_by_id(thread_id=thread.id) is None
        assert (await memory.list_messages(thread_id=thread.id)).total == 0
        assert (await memory.list_messages(thread_id=other.id)).total == 2
        await memory.delete_thread(thread_id=thread.id)  # missing: a no-op

    async def test_list_threads_by_resource_with_pagination(self, memory: MemoryStorage) -> None:
        resource = uid("resource")
        base = utc_now()
        for i in range(17):
            at = base + timedelta(seconds=i)
            await memory.save_thread(thread=sample_thread(resource_id=resource, created_at=at, updated_at=at))
        await memory.save_thread(thread=sample_thread())
        first = await memory.list_threads(resource_id=resource, page=0, per_page=7)
        assert (len(first.threads), first.total, first.page, first.per_page, first.has_more) == (
            7,
            17,
            0,
            7,
            True,
        )
        last = await memory.list_threads(resource_id=resource, page=2, per_page=7)
        assert (len(last.threads), last.has_more) == (3, False)
        beyond = await memory.list_threads(resource_id=resource, page=5, per_page=7)
        assert (beyond.threads, beyond.total, beyond.has_more) == ([], 17, False)
        everything = await memory.list_threads(resource_id=resource, per_page=False)
        assert (len(everything.threads), everything.per_page, everything.has_more) == (17, False, False)
        default = await memory.list_threads(resource_id=resource)
        assert (default.page, default.per_page, default.has_more) == (0, 100, False)

    async def test_list_threads_sorting(self, memory: MemoryStorage) -> None:
        resource = uid("resource")
        base = utc_now()
        threads = []
        for i in range(5):
            created = base + timedelta(seconds=i)
            updated = base + timedelta(seconds=10 - i)
            threads.append(
                await memory.save_thread(
                    thread=sample_thread(resource_id=resource, created_at=created, updated_at=updated)
                )
            )
        ids = [t.id for t in threads]

        async def order(**kw: Any) -> list[str]:
            return [t.id for t in (await memory.list_threads(resource_id=resource, **kw)).threads]

        assert await order() == ids[::-1]
        assert await order(direction="ASC") == ids
        assert await order(order_by="updated_at") == ids
        assert await order(order_by="updated_at", direction="ASC") == ids[::-1]
        paged = [t for p in range(3) for t in await order(page=p, per_page=2)]
        assert paged == ids[::-1]
        with pytest.raises(ValidationError):
            await memory.list_threads(order_by="title")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            await memory.list_threads(direction="SIDEWAYS")  # type: ignore[arg-type]

    async def test_list_threads_metadata_filter(self, memory: MemoryStorage) -> None:
        resource = uid("resource")
        a = await memory.save_thread(thread=sample_thread(resource_id=resource, metadata={"kind": "support", "n": 1}))
        b = await memory.save_thread(
            thread=sample_thread(resource_id=resource, metadata={"kind": "support", "n": True})
        )
        c = await memory.save_thread(thread=sample_thread(metadata={"kind": "sales", "n": "1"}))
        await memory.save_thread(thread=sample_thread(metadata=None))

        async def ids(**kw: Any) -> set[str]:
            return {t.id for t in (await memory.list_threads(**kw)).threads}

        assert await ids(metadata={"kind": "support"}) == {a.id, b.id}
        assert await ids(metadata={"kind": "support", "n": 1}) == {a.id}
        assert await ids(metadata={"n": True}) == {b.id}
        assert await ids(metadata={"n": "1"}) == {c.id}
        assert await ids(metadata={"kind": "support"}, resource_id=resource, per_page=1) <= {a.id, b.id}
        assert await ids(metadata={"kind": "nothing"}) == set()
        assert await ids(metadata={"absent": None}) == set()
        for bad in ("bad-key", "__proto__", "1abc", "a" * 129, "a.b"):
            with pytest.raises(ValidationError):
                await memory.list_threads(metadata={bad: "x"})
        with pytest.raises(ValidationError):
            await memory.list_threads(metadata={"kind": {"nested": 1}})  # type: ignore[dict-item]

    async def test_bad_pagination_is_rejected(self, memory: MemoryStorage) -> None:
        with pytest.raises(ValidationError, match="page must be >= 0"):
            await memory.list_threads(page=-1)
        with pytest.raises(ValidationError, match="perPage must be >= 0"):
            await memory.list_threads(per_page=-5)
        with pytest.raises(ValidationError):
            await memory.list_threads(page=1, per_page=False)

    # ------------------------------------------------------------ messages

    async def test_save_and_list_messages(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 5)
        result = await memory.list_messages(thread_id=thread.id)
        assert result.messages == messages
        assert (result.total, result.page, result.per_page, result.has_more) == (5, 0, 40, False)
        assert all(m.type == "v2" and m.content["format"] == 2 for m in result.messages)

    async def test_concurrent_message_saves_each_land_whole(self, memory: MemoryStorage) -> None:
        # Saves in flight together (a backend may write them in one statement) land as one by one,
        # each thread's updated_at bumped; a message in two saves in flight together is one of the two.
        threads = [
            await memory.save_thread(thread=sample_thread(updated_at=utc_now() - timedelta(days=1))) for _ in range(3)
        ]
        start = utc_now()

        def message(i: int, k: int) -> Message:
            text, at = f"quote ' \" \\ {i}.{k} 🎉", start + timedelta(milliseconds=10 * i + k)
            return sample_message(threads[i % 3], text=text, created_at=at)

        batches = [[message(i, k) for k in range(4)] for i in range(9)]
        shared = batches[0][0]
        rewritten = msgspec.structs.replace(shared, content={**shared.content, "content": "rewritten"})
        batches[1].append(rewritten)
        await asyncio.gather(*(memory.save_messages(messages=b) for b in batches))
        found = []
        for n, thread in enumerate(threads):
            listed = await memory.list_messages(thread_id=thread.id, per_page=False)
            wanted = [m for i, b in enumerate(batches) if i % 3 == n for m in b if m.id != shared.id]
            stored = [m for m in listed.messages if m.id != shared.id]
            assert sorted(stored, key=lambda m: m.id) == sorted(wanted, key=lambda m: m.id)
            found += [m for m in listed.messages if m.id == shared.id]
            bumped = await memory.get_thread_by_id(thread_id=thread.id)
            assert bumped is not None and bumped.updated_at > thread.updated_at
        assert len(found) == 1 and found[0] in (shared, rewritten)

    async def test_save_messages_returns_input_and_accepts_mappings(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        raw = {
            "id": "m-raw",
            "role": "assistant",
            "thread_id": thread.id,
            "resource_id": thread.resource_id,
            "content": {"format": 2, "parts": [{"type": "text", "text": '{"a": 1}'}], "content": '{"a": 1}'},
        }
        (saved,) = await memory.save_messages(messages=[raw])
        (listed,) = (await memory.list_messages(thread_id=thread.id)).messages
        assert saved == listed and listed.content["content"] == '{"a": 1}'
        assert await memory.save_messages(messages=[]) == []

    async def test_a_batch_keeps_the_last_of_a_message_given_twice(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        first, other = timed_messages(thread, 2)
        last = msgspec.structs.replace(first, role="assistant", content=sample_message(thread, text="last").content)
        await memory.save_messages(messages=[first, other, last])
        listed = (await memory.list_messages(thread_id=thread.id)).messages
        assert {m.id: (m.role, m.content["content"]) for m in listed} == {
            first.id: ("assistant", "last"),
            other.id: (other.role, other.content["content"]),
        }

    async def test_part_metadata_round_trips(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        msg = sample_message(thread)
        msg.content["parts"][0]["providerMetadata"] = {"mastra": {"tokenEstimate": 42}}
        await memory.save_messages(messages=[msg])
        (listed,) = (await memory.list_messages(thread_id=thread.id)).messages
        assert listed.content["parts"][0]["providerMetadata"] == {"mastra": {"tokenEstimate": 42}}

    async def test_invalid_message_batch_writes_nothing(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        good = timed_messages(thread, 3)
        bad = sample_message(thread)
        bad.resource_id = None
        with pytest.raises(ValidationError):
            await memory.save_messages(messages=[*good, bad])
        no_thread = sample_message(thread)
        no_thread.thread_id = ""
        with pytest.raises(ValidationError):
            await memory.save_messages(messages=[*good, no_thread])
        with pytest.raises(ValidationError):
            await memory.save_messages(messages=[*good, {"id": "x", "role": "user", "content": "not a dict"}])
        assert (await memory.list_messages(thread_id=thread.id)).total == 0

    async def test_saving_messages_bumps_thread_updated_at(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        await memory.save_messages(messages=[sample_message(thread)])
        fetched = await memory.get_thread_by_id(thread_id=thread.id)
        assert fetched is not None and fetched.updated_at > thread.updated_at

    async def test_message_upsert_updates_moves_and_keeps_created_at(self, memory: MemoryStorage) -> None:
        thread, (first, *_) = await _thread_with_messages(memory, 2)
        edited = msgspec.structs.replace(
            first,
            content={"format": 2, "parts": [{"type": "text", "text": "edited"}], "content": "edited"},
            created_at=first.created_at + timedelta(hours=1),
        )
        await memory.save_messages(messages=[edited])
        listed = (await memory.list_messages(thread_id=thread.id)).messages
        assert len(listed) == 2
        stored = next(m for m in listed if m.id == first.id)
        assert stored.content["content"] == "edited" and stored.created_at == first.created_at
        other = await memory.save_thread(thread=sample_thread(resource_id=thread.resource_id))
        edited.thread_id = other.id
        await memory.save_messages(messages=[edited])
        assert _ids((await memory.list_messages(thread_id=other.id)).messages) == [first.id]
        assert first.id not in _ids((await memory.list_messages(thread_id=thread.id)).messages)

    async def test_list_messages_pagination(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 5)
        pages = [await memory.list_messages(thread_id=thread.id, page=p, per_page=2) for p in range(3)]
        assert [_ids(p.messages) for p in pages] == [
            _ids(messages[0:2]),
            _ids(messages[2:4]),
            _ids(messages[4:]),
        ]
        assert [p.has_more for p in pages] == [True, True, False]
        assert all(p.total == 5 and p.per_page == 2 for p in pages)
        everything = await memory.list_messages(thread_id=thread.id, per_page=False)
        assert (len(everything.messages), everything.per_page, everything.has_more) == (5, False, False)
        desc = await memory.list_messages(thread_id=thread.id, direction="DESC", per_page=2)
        assert _ids(desc.messages) == _ids(messages[::-1][:2])

    async def test_list_messages_without_total_peeks_for_more(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 5)
        first = await memory.list_messages(thread_id=thread.id, per_page=2, include_total=False)
        assert _ids(first.messages) == _ids(messages[:2]) and first.has_more
        last = await memory.list_messages(thread_id=thread.id, page=2, per_page=2, include_total=False)
        assert _ids(last.messages) == _ids(messages[4:]) and not last.has_more

    async def test_list_messages_validates_input(self, memory: MemoryStorage) -> None:
        message = "threadId must be a non-empty string or array of non-empty strings"
        for bad in ("", "   ", [], ["ok", " "]):
            with pytest.raises(ValidationError, match=message):
                await memory.list_messages(thread_id=bad)
        with pytest.raises(ValidationError, match="perPage must be >= 0"):
            await memory.list_messages(thread_id="t", per_page=-1)
        with pytest.raises(ValidationError, match="page must be >= 0"):
            await memory.list_messages(thread_id="t", page=-1)

    async def test_list_messages_of_several_threads_and_by_resource(self, memory: MemoryStorage) -> None:
        resource = uid("resource")
        a, msgs_a = await _thread_with_messages(memory, 2, resource_id=resource)
        b, msgs_b = await _thread_with_messages(memory, 3, resource_id=resource)
        await _thread_with_messages(memory, 4)
        both = await memory.list_messages(thread_id=[a.id, b.id])
        assert set(_ids(both.messages)) == set(_ids(msgs_a + msgs_b)) and both.total == 5
        by_resource = await memory.list_messages_by_resource_id(resource_id=resource, per_page=2)
        assert (len(by_resource.messages), by_resource.total, by_resource.has_more) == (2, 5, True)
        assert (await memory.list_messages_by_resource_id(resource_id="nobody")).total == 0
        with pytest.raises(ValidationError):
            await memory.list_messages_by_resource_id(resource_id=" ")

    async def test_list_messages_filters_by_resource_id(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 5)
        await memory.save_messages(messages=[sample_message(thread, resource_id="other-resource")])
        result = await memory.list_messages(thread_id=thread.id, resource_id=thread.resource_id)
        assert _ids(result.messages) == _ids(messages) and result.total == 5

    async def test_list_messages_date_ranges(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 6)
        at = [m.created_at for m in messages]

        async def ids(**rng: Any) -> list[str]:
            return _ids((await memory.list_messages(thread_id=thread.id, date_range=rng)).messages)

        assert await ids(start=at[2]) == _ids(messages[2:])
        assert await ids(start=at[2], start_exclusive=True) == _ids(messages[3:])
        assert await ids(end=at[3]) == _ids(messages[:4])
        assert await ids(end=at[3], end_exclusive=True) == _ids(messages[:3])
        assert await ids(start=at[1], end=at[4], start_exclusive=True, end_exclusive=True) == _ids(messages[2:4])
        assert await ids(start=iso(at[4])) == _ids(messages[4:])
        assert await ids(start=at[5] + timedelta(milliseconds=1)) == []
        assert await ids(start=at[5] - timedelta(milliseconds=1)) == _ids(messages[5:])
        ranged = await memory.list_messages(thread_id=thread.id, date_range=DateRange(start=at[1]), per_page=2)
        assert (ranged.total, ranged.has_more) == (5, True)

    async def test_cursor_pagination_with_exclusive_end(self, memory: MemoryStorage) -> None:
        thread, messages = await _thread_with_messages(memory, 4)
        newest = await memory.list_messages(thread_id=thread.id, direction="DESC", per_page=2)
        await memory.save_messages(messages=[sample_message(thread, created_at=utc_now() + timedelta(minutes=5))])
        cursor = newest.messages[-1].created_at
        older = await memory.list_messages(
            thread_id=thread.id,
            direction="DESC",
            per_page=2,
            date_range={"end": cursor, "end_exclusive": True},
        )
        assert _ids(older.messages) == _ids(messages[:2][::-1]) and not older.has_more

    async def test_include_context_windows(self, memory: MemoryStorage) -> None:
        thread, m = await _thread_with_messages(memory, 6)
        other, o = await _thread_with_messages(memory, 3)

        async def ids(**kw: Any) -> list[str]:
            return _ids((await memory.list_messages(**kw)).messages)

        prev = await ids(thread_id=other.id, per_page=0, include=[{"id": m[3].id, "with_previous_messages": 2}])
        assert prev == _ids(m[1:4])
        nxt = await ids(thread_id=other.id, per_page=0, include=[IncludeContext(id=m[1].id, with_next_messages=2)])
        assert nxt == _ids(m[1:4])
        both = await ids(
            thread_id=thread.id,
            per_page=0,
            include=[{"id": m[2].id, "with_previous_messages": 1, "with_next_messages": 30}],
        )
        assert both == _ids(m[1:])
        overlapping = await ids(
            thread_id=thread.id,
            per_page=0,
            include=[{"id": m[2].id, "with_next_messages": 2}, {"id": m[3].id, "with_previous_messages": 2}],
        )
        assert overlapping == _ids(m[1:5])
        cross = await memory.list_messages(thread_id=thread.id, include=[{"id": o[1].id}])
        assert set(_ids(cross.messages)) == {*_ids(m), o[1].id} and cross.total == 6
        assert [x.created_at for x in cross.messages] == sorted(x.created_at for x in cross.messages)
        missing = await ids(thread_id=thread.id, per_page=0, include=[{"id": "no-such-message"}])
        assert missing == []
        assert await ids(thread_id=thread.id, per_page=0) == []
        desc = await ids(
            thread_id=thread.id,
            per_page=0,
            direction="DESC",
            include=[{"id": m[2].id, "with_previous_messages": 1}],
        )
        assert desc == [m[2].id, m[1].id]

    async def test_include_with_pagination(self, memory: MemoryStorage) -> None:
        thread, m = await _thread_with_messages(memory, 5)
        page = await memory.list_messages(
            thread_id=thread.id, per_page=3, include=[{"id": m[0].id, "with_next_messages": 10}]
        )
        assert _ids(page.messages) == _ids(m) and page.total == 5 and not page.has_more
        small = await memory.list_messages(
            thread_id=thread.id, per_page=2, include=[{"id": m[2].id, "with_previous_messages": 1}]
        )
        assert _ids(small.messages) == _ids(m[:3]) and small.has_more
        only = await memory.list_messages(
            thread_id=thread.id, per_page=0, include=[{"id": m[3].id, "with_previous_messages": 1}]
        )
        assert (only.total, only.has_more, only.per_page) == (0, False, 0)
        last_two = await memory.list_messages(thread_id=thread.id, per_page=2, direction="DESC")
        assert _ids(last_two.messages) == [m[4].id, m[3].id]

    async def test_include_stays_inside_the_resource(self, memory: MemoryStorage) -> None:
        thread, m = await _thread_with_messages(memory, 3)
        result = await memory.list_messages(
            thread_id=thread.id,
            resource_id="another-tenant",
            per_page=0,
            include=[{"id": m[1].id, "with_previous_messages": 1}],
        )
        assert result.messages == []

    async def test_large_thread_with_scattered_includes(self, memory: MemoryStorage) -> None:
        thread, m = await _thread_with_messages(memory, 200)
        targets = [10, 50, 100, 150, 190]
        result = await memory.list_messages(
            thread_id=thread.id,
            per_page=0,
            include=[{"id": m[t].id, "with_previous_messages": 2, "with_next_messages": 2} for t in targets],
        )
        expected = [m[i].id for t in targets for i in range(t - 2, t + 3)]
        assert _ids(result.messages) == expected and result.total == 0

    async def test_message_metadata_filter_is_type_exact(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        values: list[Any] = [1, True, "1", None, 1.5]
        msgs = [
            sample_message(thread, created_at=utc_now() + timedelta(seconds=i), metadata={"v": v, "tag": "x"})
            for i, v in enumerate(values)
        ]
        msgs.append(sample_message(thread, metadata={"tag": "x"}))
        await memory.save_messages(messages=msgs)

        async def ids(filter_: dict[str, Any]) -> list[str]:
            return _ids((await memory.list_messages(thread_id=thread.id, metadata=filter_)).messages)

        for i, v in enumerate(values):
            assert await ids({"v": v}) == [msgs[i].id], v
        assert await ids({"v": 2}) == []
        assert len(await ids({"tag": "x"})) == 6
        assert await ids({}) == _ids((await memory.list_messages(thread_id=thread.id)).messages)
        paged = await memory.list_messages(thread_id=thread.id, metadata={"tag": "x"}, per_page=4)
        assert (paged.total, paged.has_more) == (6, True)
        with pytest.raises(ValidationError):
            await memory.list_messages(thread_id=thread.id, metadata={"bad key": 1})
        with pytest.raises(ValidationError):
            await memory.list_messages(thread_id=thread.id, metadata={"v": [1]})  # type: ignore[dict-item]
        with pytest.raises(ValidationError):
            await memory.list_messages(thread_id=thread.id, metadata={"v": float("nan")})

    async def test_list_messages_by_id(self, memory: MemoryStorage) -> None:
        assert await memory.list_messages_by_id(message_ids=[]) == []
        _, ma = await _thread_with_messages(memory, 3)
        _, mb = await _thread_with_messages(memory, 2)
        wanted = [mb[1].id, ma[0].id, "missing", ma[2].id]
        found = await memory.list_messages_by_id(message_ids=wanted)
        assert sorted(_ids(found)) == sorted([ma[0].id, ma[2].id, mb[1].id])
        assert [m.created_at for m in found] == sorted(m.created_at for m in found)

    async def test_update_messages(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())
        msg = sample_message(thread, text="original", metadata={"initial": True})
        await memory.save_messages(messages=[msg])
        (updated,) = await memory.update_messages(messages=[{"id": msg.id, "role": "assistant"}])
        assert updated.role == "assistant" and updated.content == msg.content
        (updated,) = await memory.update_messages(messages=[{"id": msg.id, "content": {"metadata": {"updated": True}}}])
        assert updated.content["metadata"] == {"initial": True, "updated": True}
        assert updated.content["parts"] == msg.content["parts"] and updated.content["content"] == "original"
        (updated,) = await memory.update_messages(messages=[{"id": msg.id, "content": {"content": "changed"}}])
        assert updated.content["content"] == "changed" and updated.content["metadata"] == {
            "initial": True,
            "updated": True,
        }
        (stored,) = await memory.list_messages_by_id(message_ids=[msg.id])
        assert stored == updated
        assert await memory.update_messages(messages=[{"id": "no-such-message", "role": "user"}]) == []
        with pytest.raises(ValidationError):
            await memory.update_messages(messages=[{"id": ""}])

    async def test_update_messages_bumps_and_moves_threads(self, memory: MemoryStorage) -> None:
        a, (msg, *_) = await _thread_with_messages(memory, 2)
        b = await memory.save_thread(thread=sample_thread(resource_id=a.resource_id))
        before_a = await memory.get_thread_by_id(thread_id=a.id)
        assert before_a is not None
        await memory.update_messages(messages=[{"id": msg.id, "thread_id": b.id}])
        after_a, after_b = (
            await memory.get_thread_by_id(thread_id=a.id),
            await memory.get_thread_by_id(thread_id=b.id),
        )
        assert after_a is not None and after_b is not None
        assert after_a.updated_at > before_a.updated_at and after_b.updated_at > b.updated_at
        assert _ids((await memory.list_messages(thread_id=b.id)).messages) == [msg.id]

    async def test_delete_messages(self, memory: MemoryStorage) -> None:
        thread, m = await _thread_with_messages(memory, 100)
        other, o = await _thread_with_messages(memory, 2)
        before = await memory.get_thread_by_id(thread_id=thread.id)
        assert before is not None
        await memory.delete_messages(message_ids=[x.id for x in m[:50]] + [o[0].id, "missing"])
        assert _ids((await memory.list_messages(thread_id=thread.id, per_page=False)).messages) == _ids(m[50:])
        assert _ids((await memory.list_messages(thread_id=other.id)).messages) == [o[1].id]
        after = await memory.get_thread_by_id(thread_id=thread.id)
        assert after is not None and after.updated_at > before.updated_at
        await memory.delete_messages(message_ids=[])
        await memory.delete_messages(message_ids=["still-missing"])

    async def test_concurrent_saves_lose_nothing(self, memory: MemoryStorage) -> None:
        thread = await memory.save_thread(thread=sample_thread())

        async def writer(n: int) -> None:
            for i in range(4):
                await memory.save_messages(
                    messages=timed_messages(thread, 5, start=utc_now() + timedelta(minutes=n, seconds=i * 10))
                )

        await asyncio.gather(*(writer(n) for n in range(50)))
        assert (await memory.list_messages(thread_id=thread.id, per_page=1)).total == 1000

    async def test_a_page_listed_after_a_write_holds_it_while_others_list_it(self, memory: MemoryStorage) -> None:
        # Concurrent lists of one page may share one read (core/coalesce.SharedReads): never one
        # sent before a caller's own write was acknowledged.
        thread, _ = await _thread_with_messages(memory, 3)
        start = utc_now() + timedelta(minutes=1)

        async def write_then_list(k: int) -> None:
            message = sample_message(thread, text=f"new {k}", created_at=start + timedelta(seconds=k))
            await memory.save_messages(messages=[message])
            page = await memory.list_messages(thread_id=thread.id, per_page=False)
            assert message.id in _ids(page.messages)

        async def just_list() -> None:
            await memory.list_messages(thread_id=thread.id, per_page=False)

        await asyncio.gather(*(write_then_list(k) for k in range(12)), *(just_list() for _ in range(12)))
        assert (await memory.list_messages(thread_id=thread.id, per_page=1)).total == 15

    async def test_cancelled_lists_leave_the_others_their_shared_page(self, memory: MemoryStorage) -> None:
        thread, _ = await _thread_with_messages(memory, 5)
        expected = await memory.list_messages(thread_id=thread.id, per_page=3)
        for turns in range(4):  # cancelled before their read goes out, as it goes, while it runs
            lists = [asyncio.ensure_future(memory.list_messages(thread_id=thread.id, per_page=3)) for _ in range(8)]
            for _ in range(turns):
                await asyncio.sleep(0)
            for task in lists[::2]:
                task.cancel()
            done = await asyncio.gather(*lists, return_exceptions=True)
            kept = done[1::2]
            assert kept == [expected] * 4, kept
            assert all(d == expected or isinstance(d, asyncio.CancelledError) for d in done[::2])
        assert await memory.list_messages(thread_id=thread.id, per_page=3) == expected

    async def test_concurrent_lists_of_one_page_each_get_their_own(self, memory: MemoryStorage) -> None:
        thread, _ = await _thread_with_messages(memory, 5)
        other, _ = await _thread_with_messages(memory, 2)
        asks = [(thread.id, 0), (thread.id, 0), (thread.id, 1), (other.id, 0), (thread.id, 0)]
        expected = [await memory.list_messages(thread_id=t, page=p, per_page=2) for t, p in asks]
        got = await asyncio.gather(*(memory.list_messages(thread_id=t, page=p, per_page=2) for t, p in asks))
        assert got == expected and len(_ids(got[2].messages)) == 2 and got[3].total == 2
        first, last = got[1].messages[0], got[4].messages[0]  # (the first call went out alone)
        assert first == last and first is not last and first.content is not last.content
        first.content["parts"] = []  # one caller changing its record changes nobody else's
        assert last == expected[0].messages[0]

    # ------------------------------------------------------------ clone

    async def test_clone_thread(self, memory: MemoryStorage) -> None:
        source, m = await _thread_with_messages(memory, 5, metadata={"own": "meta"})
        result = await memory.clone_thread(source_thread_id=source.id, new_thread_id="clone-1", metadata={"extra": 1})
        assert result.thread.id == "clone-1" and result.thread.resource_id == source.resource_id
        assert result.thread.title == "Clone of Test Thread"
        clone_info = result.thread.metadata["clone"] if result.thread.metadata else {}
        assert clone_info["sourceThreadId"] == source.id and clone_info["lastMessageId"] == m[-1].id
        assert result.thread.metadata and result.thread.metadata["extra"] == 1 and "own" not in result.thread.metadata
        assert [result.message_id_map[x.id] for x in m] == _ids(result.cloned_messages)
        listed = (await memory.list_messages(thread_id="clone-1")).messages
        assert _ids(listed) == _ids(result.cloned_messages)
        assert [x.created_at for x in listed] == [x.created_at for x in m]
        assert not set(_ids(listed)) & set(_ids(m))
        assert await memory.get_thread_by_id(thread_id="clone-1") == result.thread

    async def test_clone_thread_selection_and_errors(self, memory: MemoryStorage) -> None:
        source, m = await _thread_with_messages(memory, 5)
        limited = await memory.clone_thread(
            source_thread_id=source.id, message_limit=2, resource_id="new-owner", title="T"
        )
        assert [x.content for x in limited.cloned_messages] == [x.content for x in m[3:]]
        assert limited.thread.resource_id == "new-owner" and limited.thread.title == "T"
        assert all(x.resource_id == "new-owner" for x in limited.cloned_messages)
        dated = await memory.clone_thread(
            source_thread_id=source.id, start_date=m[1].created_at, end_date=m[2].created_at
        )
        assert len(dated.cloned_messages) == 2
        picked = await memory.clone_thread(source_thread_id=source.id, message_ids=[m[4].id, m[0].id])
        assert [x.content for x in picked.cloned_messages] == [m[0].content, m[4].content]
        with pytest.raises(NotFoundError):
            await memory.clone_thread(source_thread_id="no-such-thread")
        with pytest.raises(ConflictError):
            await memory.clone_thread(source_thread_id=source.id, new_thread_id=source.id)

    # ------------------------------------------------------------ resources

    async def test_resource_round_trips(self, memory: MemoryStorage) -> None:
        created = utc_now() - timedelta(days=1)
        resource = sample_resource(
            created_at=created,
            updated_at=created,
            metadata={"nested": {"list": [1, {"x": None}]}, "flag": False},
        )
        assert await memory.save_resource(resource=resource) == resource
        assert await memory.get_resource_by_id(resource_id=resource.id) == resource
        assert await memory.get_resource_by_id(resource_id="no-such-resource") is None

    async def test_resource_empty_and_missing_values(self, memory: MemoryStorage) -> None:
        empty = await memory.save_resource(resource=sample_resource(working_memory="", metadata={}))
        fetched = await memory.get_resource_by_id(resource_id=empty.id)
        assert fetched is not None and fetched.working_memory == "" and fetched.metadata == {}
        bare = await memory.save_resource(resource={"id": uid("resource")})
        fetched = await memory.get_resource_by_id(resource_id=bare.id)
        assert fetched is not None and not fetched.working_memory and not fetched.metadata
        large = await memory.save_resource(resource=sample_resource(working_memory="x" * 10_240))
        fetched = await memory.get_resource_by_id(resource_id=large.id)
        assert fetched is not None and fetched.working_memory == "x" * 10_240

    async def test_update_resource(self, memory: MemoryStorage) -> None:
        resource = await memory.save_resource(resource=sample_resource(metadata={"key": "value", "keep": 1}))
        both = await memory.update_resource(resource_id=resource.id, working_memory="new", metadata={"key": "v2"})
        assert both.working_memory == "new" and both.metadata == {"key": "v2", "keep": 1}
        assert both.updated_at > resource.updated_at
        only_wm = await memory.update_resource(resource_id=resource.id, working_memory="newer")
        assert only_wm.metadata == both.metadata and only_wm.updated_at > both.updated_at
        only_meta = await memory.update_resource(resource_id=resource.id, metadata={"added": True})
        assert only_meta.working_memory == "newer" and only_meta.metadata == {
            "key": "v2",
            "keep": 1,
            "added": True,
        }
        assert await memory.get_resource_by_id(resource_id=resource.id) == only_meta

    async def test_update_resource_creates_missing(self, memory: MemoryStorage) -> None:
        created = await memory.update_resource(resource_id="fresh-resource", working_memory="wm")
        assert created.working_memory == "wm" and created.metadata == {}
        assert await memory.get_resource_by_id(resource_id="fresh-resource") == created

    async def test_concurrent_resource_updates_merge(self, memory: MemoryStorage) -> None:
        resource = await memory.save_resource(resource=sample_resource(metadata={}))
        await asyncio.gather(
            *(memory.update_resource(resource_id=resource.id, metadata={f"k{i}": i}) for i in range(3))
        )
        fetched = await memory.get_resource_by_id(resource_id=resource.id)
        assert fetched is not None and fetched.metadata == {"k0": 0, "k1": 1, "k2": 2}
