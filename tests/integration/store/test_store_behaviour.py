"""What our store does beyond ``InMemoryStore``: TTLs (expiry, refresh, sweep),
typed errors, bounds, timestamps, Cluster slots, the sync bridge, the embedded Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis
from langgraph.store.base import GetOp, PutOp

from dialogllm.errors import (
    ConfigError,
    CorruptCheckpointError,
    RedisUnavailableError,
    SemanticSearchNotConfiguredError,
    StoreError,
    StoreSearchTooLargeError,
    StoreValueError,
)
from dialogllm.redis import async_client, sync_client
from dialogllm.store import AsyncRedisStore, RedisStore, resolve_embeddings
from dialogllm.store import keys as K

from ...conftest import REDIS_URL, delete_prefix
from .conftest import DIMS, StoreMaker, index, letters

pytestmark = pytest.mark.integration

TTL_MIN = 0.01  # 600 ms: each "still there" check below has 300 ms to spare


async def test_items_expire_and_reads_refresh_their_ttl(
    redis_maker: StoreMaker,
) -> None:
    store = redis_maker.make()
    ns = ("ttl", "a")
    await store.aput(ns, "short", {"v": 1}, ttl=TTL_MIN)
    await store.aput(ns, "kept", {"v": 2}, ttl=TTL_MIN)
    await store.aput(ns, "forever", {"v": 3})
    for _ in range(3):  # reading "kept" every 300 ms keeps it alive
        await asyncio.sleep(0.3)
        assert await store.aget(ns, "kept") is not None
    assert await store.aget(ns, "short", refresh_ttl=False) is None
    assert [i.key for i in await store.asearch(ns)] == ["kept", "forever"]
    await asyncio.sleep(0.3)
    assert [i.key for i in await store.asearch(ns)] == ["kept", "forever"]
    await asyncio.sleep(0.7)
    assert [i.key for i in await store.asearch(ns, refresh_ttl=False)] == ["forever"]
    assert await store.asweep_ttl() == 2
    assert await store.asweep_ttl() == 0
    assert await store.alist_namespaces() == [ns]


async def test_default_ttl_and_refresh_on_read_come_from_the_config(
    redis_maker: StoreMaker,
) -> None:
    # 1.2 s: read at 0.6 s, look again at 1.55 s, past the TTL but before a
    # refreshed one would end (1.8 s); each side has a third of a second to spare
    # (a Cluster under a full test run once took more than 100 ms)
    store = redis_maker.make(ttl={"default_ttl": 0.02, "refresh_on_read": False})
    ns = ("cfg",)
    await store.aput(ns, "k", {"v": 1})
    await store.aput(ns, "pinned", {"v": 2}, ttl=None)
    await asyncio.sleep(0.6)
    assert await store.aget(ns, "k") is not None  # no refresh: 0.6 s left
    await asyncio.sleep(0.95)
    assert await store.aget(ns, "k") is None
    assert (await store.aget(ns, "pinned")).value == {"v": 2}
    # an expired item put again starts over: a new item
    await store.aput(ns, "k", {"v": 9})
    assert (await store.aget(ns, "k")).value == {"v": 9}
    assert await store.asweep_ttl() == 0


async def test_the_sweeper_deletes_expired_items_in_the_background(
    redis_maker: StoreMaker,
) -> None:
    store = redis_maker.make()
    await store.aput(("sw",), "k", {"v": 1}, ttl=0.001)
    if isinstance(store, RedisStore):
        thread = store.start_ttl_sweeper(0.002)
        assert store.start_ttl_sweeper() is thread
        await asyncio.sleep(0.5)
        assert store.stop_ttl_sweeper(timeout=2)
    else:
        task = store.start_ttl_sweeper(0.002)
        assert store.start_ttl_sweeper() is task
        await asyncio.sleep(0.5)
        assert await store.stop_ttl_sweeper(timeout=2)
    assert await store.alist_namespaces() == []
    assert await store.asearch(()) == []


async def test_updates_keep_created_at_and_move_updated_at(
    redis_maker: StoreMaker,
) -> None:
    store = redis_maker.make()
    await store.aput(("t",), "k", {"v": 1})
    first = await store.aget(("t",), "k")
    await asyncio.sleep(0.01)
    await store.aput(("t",), "k", {"v": 2})
    second = await store.aget(("t",), "k")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.created_at.tzinfo is not None


async def test_query_without_embeddings_is_a_typed_error(
    redis_maker: StoreMaker,
) -> None:
    store = redis_maker.make()
    with pytest.raises(SemanticSearchNotConfiguredError, match="index="):
        await store.asearch(("a",), query="tea")


async def test_values_must_be_json_objects(redis_maker: StoreMaker) -> None:
    store = redis_maker.make(max_payload_bytes=64)
    with pytest.raises(StoreValueError, match="JSON"):
        await store.aput(("v",), "k", {"v": object()})
    with pytest.raises(StoreValueError, match="max_payload_bytes"):
        await store.aput(("v",), "k", {"v": "x" * 100})
    with pytest.raises(StoreValueError, match="dict"):
        await store.abatch([PutOp(("v",), "k", [1])])  # type: ignore[arg-type]
    assert await store.alist_namespaces() == []


async def test_a_search_reads_no_more_than_its_bound(redis_maker: StoreMaker) -> None:
    store = redis_maker.make(max_search_candidates=3)
    for i in range(3):
        await store.aput(("big", "a"), f"k{i}", {"i": i})
    await store.aput(("big", "b"), "k", {"i": 9})
    assert len(await store.asearch(("big", "a"))) == 3
    with pytest.raises(StoreSearchTooLargeError, match="4 items"):
        await store.asearch(("big",))


async def test_reindexing_replaces_an_items_vectors(redis_maker: StoreMaker) -> None:
    store = redis_maker.make(index=index(["text"]))
    await store.aput(("v",), "k", {"text": "cat"})
    await store.aput(("v",), "k", {"text": "cat"}, index=False)
    found = await store.asearch(("v",), query="cat")
    assert [(i.key, i.score) for i in found] == [("k", None)]
    await store.aput(("v",), "k", {"text": "dog", "other": "cat"}, index=["other"])
    assert (await store.asearch(("v",), query="cat"))[0].score == pytest.approx(1.0)
    await store.aput(("v",), "k", {"nothing": 1})  # no text at "text": no vectors
    assert (await store.asearch(("v",), query="cat"))[0].score is None


def test_wrong_dims_and_index_config_are_refused() -> None:
    client = sync_client(REDIS_URL, decode=False, cluster=False)
    try:
        with pytest.raises(ConfigError, match="dims"):
            RedisStore(client, index={"dims": 0, "embed": letters})
        with pytest.raises(ConfigError, match="embed"):
            RedisStore(client, index={"dims": 3})
        store = RedisStore(
            client, key_prefix="never", index={"dims": 3, "embed": letters}
        )
        with pytest.raises(StoreValueError, match="dims=3"):
            store.put(("d",), "k", {"text": "abc"})
        assert store.get(("d",), "k") is None
    finally:
        client.close()


def test_embeddings_by_reference_as_langgraph_json_names_them() -> None:
    found = resolve_embeddings("tests.integration.store.embeddings_for_tests:letters")
    assert found.embed_query("ab")[:3] == [1.0, 1.0, 0.0]
    assert len(found.embed_documents(["a", "b"])) == 2


def test_a_decoding_client_is_refused() -> None:
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    with pytest.raises(StoreError, match="decode_responses=False"):
        RedisStore(client)
    client.close()


async def test_a_corrupt_record_is_a_typed_error(key_prefix: str) -> None:
    client = async_client(REDIS_URL, decode=False, cluster=False)
    store = AsyncRedisStore(client, key_prefix=key_prefix)
    await store.aput(("c",), "k", {"v": 1})
    await client.hset(K.namespace_key(key_prefix, ("c",), "i"), "k", b"junk")
    with pytest.raises(CorruptCheckpointError):
        await store.aget(("c",), "k")
    await client.hset(K.namespace_key(key_prefix, ("c",), "i"), "k", b"1 2 3 0 0\n[1]")
    with pytest.raises(CorruptCheckpointError, match="corrupt"):
        await store.asearch(("c",))
    await client.aclose()


async def test_an_unreachable_redis_is_a_typed_error() -> None:
    client = async_client(
        "redis://127.0.0.1:1/0", decode=False, cluster=False, retries=0
    )
    store = AsyncRedisStore(client)
    with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1:1"):
        await store.aget(("a",), "k")
    await client.aclose()


async def test_the_async_store_serves_sync_calls_from_other_threads(
    key_prefix: str,
) -> None:
    async with AsyncRedisStore.from_conn_string(
        REDIS_URL, cluster=False, key_prefix=key_prefix
    ) as store:
        await asyncio.to_thread(store.put, ("th",), "k", {"v": 1})
        item = await asyncio.to_thread(store.get, ("th",), "k")
        assert item.value == {"v": 1}
        assert await asyncio.to_thread(store.sweep_ttl) == 0
        with pytest.raises(StoreError, match="own event loop"):
            store.get(("th",), "k")

    def without_a_loop() -> None:
        orphan = AsyncRedisStore(sync_client(REDIS_URL, decode=False, cluster=False))
        with pytest.raises(StoreError, match="has none"):
            orphan.batch([GetOp(("th",), "k")])

    await asyncio.to_thread(without_a_loop)


def test_the_sync_store_from_a_url_with_a_sweeper(key_prefix: str) -> None:
    with RedisStore.from_conn_string(
        REDIS_URL,
        cluster=False,
        key_prefix=key_prefix,
        ttl={"default_ttl": 0.001, "sweep_interval_minutes": 0.002},
    ) as store:
        assert store.sweep_interval_s == pytest.approx(0.12)
        store.put(("u",), "k", {"v": 1})
        deadline = time.time() + 3
        while store.list_namespaces() and time.time() < deadline:
            time.sleep(0.05)
        assert store.list_namespaces() == []
        assert asyncio.run(store.asweep_ttl()) == 0


async def test_the_async_store_from_a_url_starts_its_sweeper(key_prefix: str) -> None:
    async with AsyncRedisStore.from_conn_string(
        REDIS_URL,
        cluster=False,
        key_prefix=key_prefix,
        ttl={"default_ttl": 0.001, "sweep_interval_minutes": 0.002},
    ) as store:
        await store.aput(("u",), "k", {"v": 1})
        await asyncio.sleep(0.5)
        assert await store.alist_namespaces() == []


async def test_every_key_stays_under_the_prefix_and_is_deleted_with_the_items(
    key_prefix: str,
) -> None:
    client = async_client(REDIS_URL, decode=False, cluster=False)
    store = AsyncRedisStore(client, key_prefix=key_prefix, index=index())
    await store.aput(("p", "q"), "k", {"text": "abc"}, ttl=5)
    names = {k.decode() async for k in client.scan_iter(match=f"{key_prefix}:*")}
    assert names == {
        K.roots_key(key_prefix),
        *(K.root_key(key_prefix, "p", s) for s in K.ROOT_SUFFIXES),
        *(K.namespace_key(key_prefix, ("p", "q"), s) for s in K.NAMESPACE_SUFFIXES),
    }
    await store.adelete(("p", "q"), "k")
    left = {k.decode() async for k in client.scan_iter(match=f"{key_prefix}:*")}
    assert left == {K.roots_key(key_prefix), K.root_key(key_prefix, "p", "seq")}
    await client.aclose()


async def test_a_roots_keys_share_one_cluster_slot(cluster_url: str) -> None:
    prefix = "cs-" + str(time.time_ns())
    client = async_client(cluster_url, decode=False, cluster=True)
    store = AsyncRedisStore(client, key_prefix=prefix, index=index())
    try:
        for root in ("users", "docs", "a{b}c"):
            ns = (root, "x", "y")
            await store.aput(ns, "k", {"text": "abc"}, ttl=5)
            slots = {
                await client.cluster_keyslot(key)
                for key in [
                    *(K.root_key(prefix, root, s) for s in K.ROOT_SUFFIXES),
                    *(K.namespace_key(prefix, ns, s) for s in K.NAMESPACE_SUFFIXES),
                ]
            }
            assert len(slots) == 1
        assert await store.alist_namespaces(max_depth=1) == [
            ("a{b}c",),
            ("docs",),
            ("users",),
        ]
        assert len(await store.asearch((), query="abc")) == 3
    finally:
        async for key in client.scan_iter(match=f"{prefix}:*"):
            await client.delete(key)
        await client.aclose()


def test_unit_vectors_survive_dims(key_prefix: str) -> None:
    with RedisStore.from_conn_string(
        REDIS_URL,
        cluster=False,
        key_prefix=key_prefix,
        index={"dims": DIMS, "embed": letters, "fields": ["text"]},
    ) as store:
        store.put(("z",), "zero", {"text": "123"})  # the zero vector scores 0
        store.put(("z",), "a", {"text": "a"})
        found: Any = store.search(("z",), query="a")
        assert [(i.key, round(i.score, 3)) for i in found] == [
            ("a", 1.0),
            ("zero", 0.0),
        ]
    delete_prefix(REDIS_URL, key_prefix)


def test_the_sweeper_thread_survives_a_failing_sweep(key_prefix: str) -> None:
    client = sync_client(
        "redis://127.0.0.1:1/0", decode=False, cluster=False, retries=0
    )
    store = RedisStore(client)
    thread = store.start_ttl_sweeper(0.001)
    time.sleep(0.2)
    assert thread.is_alive()
    assert store.stop_ttl_sweeper(timeout=2)
    assert store.stop_ttl_sweeper() is True
    assert threading.active_count() >= 1
