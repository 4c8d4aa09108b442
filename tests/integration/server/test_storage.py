"""The API's thread records on a real Redis: a create is one round trip and never
overwrites, an update merges metadata without losing a concurrent writer's, notes
the latest run only when told which it replaces, restarts a TTL and never brings a
deleted thread back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis

from dialogllm.redis import async_client
from dialogllm.server.storage import RunNote, ServerStore

from ...conftest import REDIS_URL, delete_prefix


@pytest.fixture
async def store() -> AsyncIterator[ServerStore]:
    prefix = f"test-srvstore-{uuid.uuid4().hex[:10]}"
    client = async_client(REDIS_URL, decode=True)
    yield ServerStore(client, prefix=prefix)
    await client.aclose()
    delete_prefix(REDIS_URL, prefix)


async def test_a_thread_is_created_once_with_its_latest_run(store: ServerStore) -> None:
    made = await store.create_thread("t", {"user": "ada"}, last_run="r1")
    assert made is not None and made.last_run == "r1"
    assert await store.create_thread("t", {"user": "eve"}) is None
    read = await store.thread("t")
    assert read is not None
    assert (read.metadata, read.last_run) == ({"user": "ada"}, "r1")
    assert read.metadata_json == made.metadata_json
    assert await store.thread_ids() == ["t"]


async def test_an_update_merges_over_a_concurrent_metadata_change(
    store: ServerStore,
) -> None:
    await store.create_thread("t", {"a": 1})
    known = await store.thread("t")
    assert await store.update_thread("t", metadata={"b": 2})  # another writer
    assert await store.update_thread("t", metadata={"c": 3}, known=known)
    read = await store.thread("t")
    assert read is not None and read.metadata == {"a": 1, "b": 2, "c": 3}
    assert await store.update_thread("t", metadata={"a": 9}, known=read)
    again = await store.thread("t")
    assert again is not None and again.metadata == {"a": 9, "b": 2, "c": 3}


async def test_a_run_note_is_taken_back_to_what_it_replaced_and_only_over_itself(
    store: ServerStore,
) -> None:
    thread = await store.create_thread("t", {}, last_run="r0")
    assert thread is not None
    b = await store.note_run(thread, "rB")
    a = await store.note_run(thread, "rA", metadata={"graph_id": "g"})
    assert b is not None and b.replaced == "r0" and not b.created
    assert a is not None and a.replaced == "rB"
    # A's enqueue fails while B's run is live: the thread names B again, not r0
    assert await store.take_back(a)
    read = await store.thread("t")
    assert read is not None and read.last_run == "rB"
    assert read.metadata == {"graph_id": "g"}  # metadata a note merged stays
    assert not await store.take_back(a)  # its run is no longer the latest
    c = await store.note_run(read, "rC")
    assert c is not None
    assert not await store.take_back(b)  # rC came after it: B takes back nothing
    read = await store.thread("t")
    assert read is not None and read.last_run == "rC"
    assert await store.take_back(c)
    fresh = await store.create_thread("fresh", {})
    assert fresh is not None
    first = await store.note_run(fresh, "r1")
    assert first is not None and first.replaced is None
    assert await store.take_back(first)  # a thread that had no run has none again
    fresh = await store.thread("fresh")
    assert fresh is not None and fresh.last_run is None
    assert await store.delete_thread("fresh")
    assert await store.note_run(fresh, "r2") is None  # gone: nothing is made


async def test_taking_back_the_note_that_made_a_thread_deletes_it(
    store: ServerStore,
) -> None:
    assert await store.create_thread("made", {"graph_id": "g"}, last_run="r1")
    assert await store.take_back(RunNote("made", "r1", created=True))
    assert await store.thread("made") is None
    assert "made" not in await store.thread_ids()
    assert not await store.take_back(RunNote("made", "r1", created=True))


async def test_an_update_restarts_a_ttl_and_never_makes_a_thread(
    store: ServerStore,
) -> None:
    await store.create_thread("t", {})
    await store.expire_thread("t", 30)
    raw = redis.Redis.from_url(REDIS_URL)
    key = f"{store.prefix}:srv:th:{{t}}"
    raw.pexpire(key, 5_000)
    assert await store.update_thread("t", last_run="r")
    assert raw.pttl(key) > 20_000
    assert not await store.update_thread("gone", metadata={"x": 1}, last_run="r")
    assert raw.exists(f"{store.prefix}:srv:th:{{gone}}") == 0
    assert await store.thread("gone") is None
    raw.close()
