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
from dialogllm.server.storage import ServerStore

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


async def test_the_latest_run_is_put_back_only_over_the_run_it_replaced(
    store: ServerStore,
) -> None:
    await store.create_thread("t", {}, last_run="r1")
    assert await store.update_thread("t", last_run="r2")
    assert not await store.put_back_last_run("t", "r1", replacing="r3")
    read = await store.thread("t")
    assert read is not None and read.last_run == "r2"
    assert await store.put_back_last_run("t", "r1", replacing="r2")
    read = await store.thread("t")
    assert read is not None and read.last_run == "r1"
    # a thread that had no run before has none again
    assert await store.update_thread("t", last_run="r4")
    assert await store.put_back_last_run("t", None, replacing="r4")
    read = await store.thread("t")
    assert read is not None and read.last_run is None
    assert not await store.put_back_last_run("gone", None, replacing="r4")


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
