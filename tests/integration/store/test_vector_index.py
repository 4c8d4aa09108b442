"""The native vector index (RediSearch KNN) on a real Redis Stack server: used by
default where the server has RediSearch, the same answers as the exact search,
vector hashes kept in step by puts, deletes and sweeps, an index built from what
was stored before it, and a clear error where it was asked for and cannot be had."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aredis

from dialogllm.errors import ConfigError, StoreSearchTooLargeError
from dialogllm.redis import async_client, sync_client
from dialogllm.store import AsyncRedisStore, RedisStore
from dialogllm.store import keys as K
from dialogllm.store.vector_index import IndexState

from ...conftest import REDIS_URL, delete_prefix
from ...redis_servers import drop_vector_indexes
from .conftest import DIMS, index


class Stores:
    """Stores on one Redis and one key prefix, closed and cleaned up after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"test-vi-{uuid.uuid4().hex[:10]}"
        self.clients: list[Any] = []
        self.raw = redis.Redis.from_url(url, protocol=2)

    def make(self, prefix: str | None = None, **options: Any) -> AsyncRedisStore:
        client = async_client(self.url, decode=False, cluster=False)
        self.clients.append(client)
        options.setdefault("index", index(["text"]))
        return AsyncRedisStore(client, key_prefix=prefix or self.prefix, **options)

    def twins(self) -> tuple[AsyncRedisStore, AsyncRedisStore]:
        """A store with the native index and one that searches exactly, each on a
        prefix of its own."""
        return self.make(), self.make(prefix=self.exact_prefix, vector_index="exact")

    @property
    def exact_prefix(self) -> str:
        return f"{self.prefix}-exact"

    def vector_hashes(self, prefix: str | None = None) -> list[bytes]:
        pattern = f"{prefix or self.prefix}:sv:*"
        return sorted(self.raw.scan_iter(match=pattern, count=1000))

    def indexed_docs(self, algorithm: str = "flat") -> int:
        name = K.vector_index_name(self.prefix, DIMS, algorithm)
        info = self.raw.execute_command("FT.INFO", name)
        return int(dict(zip(info[::2], info[1::2], strict=True))[b"num_docs"])

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        if self.url != REDIS_URL:
            drop_vector_indexes(self.url, self.prefix)
        delete_prefix(self.url, self.prefix)
        delete_prefix(self.url, self.exact_prefix)
        self.raw.close()


@pytest.fixture
async def stack(stack_url: str) -> AsyncIterator[Stores]:
    made = Stores(stack_url)
    yield made
    await made.close()


@pytest.fixture
async def plain() -> AsyncIterator[Stores]:
    made = Stores(REDIS_URL)
    yield made
    await made.close()


def ranked(found: list[Any]) -> list[tuple[str, str, float | None]]:
    return [
        (".".join(i.namespace), i.key, None if i.score is None else round(i.score, 4))
        for i in found
    ]


async def _fill(store: AsyncRedisStore, items: int = 60) -> None:
    for n in range(items):
        ns = ("people", f"p{n % 3}")
        text = " ".join(["cat"] * (n % 5 + 1) + ["dog"] * (n % 7 + 1))
        await store.aput(ns, f"k{n}", {"text": text, "n": n, "even": n % 2 == 0})


async def test_auto_ranks_with_redisearch_as_the_exact_search_does(
    stack: Stores,
) -> None:
    native, exact = stack.twins()
    for store in (native, exact):
        await _fill(store)
    assert native.ops.index_state is IndexState.READY
    assert exact.ops.index_state is IndexState.ABSENT
    assert stack.indexed_docs() == 60 == len(stack.vector_hashes())
    assert stack.vector_hashes(stack.exact_prefix) == []
    for kwargs in [
        {"query": "cat", "limit": 5},
        {"query": "dog dog", "limit": 3, "offset": 2},
        {"query": "cat dog", "filter": {"even": True}, "limit": 4},
        {"query": "cat", "filter": {"n": {"$gte": 50}}, "limit": 10},
    ]:
        mine = ranked(await native.asearch(("people",), **kwargs))
        assert mine == ranked(await exact.asearch(("people",), **kwargs)), kwargs
        assert len(mine) == kwargs["limit"]
    one = ranked(await native.asearch(("people", "p1"), query="cat", limit=50))
    assert {ns for ns, _, _ in one} == {"people.p1"} and len(one) == 20
    assert one == ranked(await exact.asearch(("people", "p1"), query="cat", limit=50))
    everywhere = ranked(await native.asearch((), query="dog", limit=7))
    assert everywhere == ranked(await exact.asearch((), query="dog", limit=7))
    await native.stop_ttl_sweeper()


async def test_a_selective_filter_widens_the_knn_until_the_page_is_full(
    stack: Stores,
) -> None:
    native, exact = stack.twins()
    for store in (native, exact):
        for n in range(200):
            far = n >= 185  # the only matches are the farthest from the query
            text = "zebra" if far else "cat " * (n % 9 + 1)
            await store.aput(("zoo",), f"k{n}", {"text": text, "far": far})
    kwargs: dict[str, Any] = {"query": "cat", "filter": {"far": True}, "limit": 10}
    mine = ranked(await native.asearch(("zoo",), **kwargs))
    assert len(mine) == 10
    assert mine == ranked(await exact.asearch(("zoo",), **kwargs))
    bounded = stack.make(max_search_candidates=30)
    with pytest.raises(StoreSearchTooLargeError, match="max_search_candidates"):
        await bounded.asearch(("zoo",), **kwargs)


async def test_unindexed_items_follow_when_the_index_runs_out(stack: Stores) -> None:
    native = stack.make()
    await native.aput(("a",), "cat", {"text": "cat"})
    await native.aput(("a",), "plain", {"other": "no text field"})
    await native.aput(("a",), "off", {"text": "cat"}, index=False)
    found = ranked(await native.asearch(("a",), query="cat", limit=5))
    assert found == [("a", "cat", 1.0), ("a", "plain", None), ("a", "off", None)]


async def test_puts_deletes_and_sweeps_keep_the_vector_hashes_in_step(
    stack: Stores,
) -> None:
    store = stack.make(index=index(["notes[*]"]))
    ns = ("people", "ada")
    await store.aput(ns, "many", {"notes": ["cats", "tea", "rex"]})
    await store.aput(ns, "other", {"notes": ["tax"]})
    assert len(stack.vector_hashes()) == 4 == stack.indexed_docs()
    await store.aput(ns, "many", {"notes": ["cats only"]})
    assert len(stack.vector_hashes()) == 2 == stack.indexed_docs()
    assert [i.key for i in await store.asearch(ns, query="tax", limit=1)] == ["other"]
    await store.aput(ns, "many", {"notes": ["cats"]}, index=False)
    assert len(stack.vector_hashes()) == 1
    await store.adelete(ns, "other")
    assert stack.vector_hashes() == [] and stack.indexed_docs() == 0
    await store.aput(ns, "brief", {"notes": ["cats"]}, ttl=0.001)
    assert len(stack.vector_hashes()) == 1
    await asyncio.sleep(0.3)  # expired, not swept: never returned
    assert "brief" not in [i.key for i in await store.asearch(ns, query="cats")]
    assert await store.asweep_ttl() == 1
    assert stack.vector_hashes() == [] and stack.indexed_docs() == 0


async def test_the_index_is_filled_from_what_was_stored_before_it(
    stack: Stores,
) -> None:
    before = stack.make(vector_index="exact")
    await _fill(before, 30)
    await before.aput(("people", "p0"), "unindexed", {"other": 1})
    assert stack.vector_hashes() == []
    native = stack.make()
    found = await native.asearch(("people",), query="cat", limit=5)
    assert native.ops.index_state is IndexState.READY
    assert stack.indexed_docs() == 30
    state = K.vector_index_state_key(stack.prefix, DIMS, "flat")
    assert stack.raw.get(state) == b"ready" and stack.raw.ttl(state) == -1
    assert ranked(found) == ranked(
        await before.asearch(("people",), query="cat", limit=5)
    )


async def test_while_another_store_fills_the_index_searches_are_exact(
    stack: Stores,
) -> None:
    state = K.vector_index_state_key(stack.prefix, DIMS, "flat")
    stack.raw.execute_command("FT.CREATE", *_create_args(stack.prefix))
    stack.raw.set(state, "building", ex=60)
    store = stack.make()
    await store.aput(("a",), "cat", {"text": "cat"})
    assert store.ops.index_state is IndexState.BUILDING
    assert len(stack.vector_hashes()) == 1  # written for the index all the same
    assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
    assert store.ops.index_state is IndexState.BUILDING
    stack.raw.set(state, "ready")
    assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
    assert store.ops.index_state is IndexState.READY


async def test_a_build_left_unfinished_is_taken_over(stack: Stores) -> None:
    # the builder died after FT.CREATE; its "building" mark has expired
    before = stack.make(vector_index="exact")
    await before.aput(("a",), "cat", {"text": "cat"})
    stack.raw.execute_command("FT.CREATE", *_create_args(stack.prefix))
    store = stack.make()
    assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
    assert store.ops.index_state is IndexState.READY
    assert stack.indexed_docs() == 1


def _create_args(prefix: str) -> list[str]:
    from dialogllm.store.vector_index import VectorIndex

    return VectorIndex(prefix, DIMS).create_args()


async def test_hnsw_and_a_resp3_client(stack: Stores) -> None:
    client = aredis.Redis.from_url(stack.url, protocol=3)
    stack.clients.append(client)
    store = AsyncRedisStore(
        client, key_prefix=stack.prefix, index=index(["text"]), vector_index="hnsw"
    )
    await store.aput(("a",), "cat", {"text": "cat cat"})
    await store.aput(("a",), "dog", {"text": "dog"})
    found = await store.asearch(("a",), query="dog", limit=1)
    assert store.ops.index_state is IndexState.READY
    assert [(i.key, round(i.score or 0, 4)) for i in found] == [("dog", 1.0)]
    assert stack.indexed_docs("hnsw") == 2


def test_the_sync_store_uses_the_index(stack_url: str) -> None:
    prefix = f"test-vi-{uuid.uuid4().hex[:10]}"
    client = sync_client(stack_url, decode=False, cluster=False)
    try:
        store = RedisStore(client, key_prefix=prefix, index=index(["text"]))
        store.put(("a",), "cat", {"text": "cat"})
        store.put(("a",), "dog", {"text": "dog"})
        assert [i.key for i in store.search(("a",), query="dog", limit=1)] == ["dog"]
        assert store.ops.index_state is IndexState.READY
    finally:
        client.close()
        drop_vector_indexes(stack_url, prefix)
        delete_prefix(stack_url, prefix)


async def test_auto_on_a_redis_without_redisearch_searches_exactly(
    plain: Stores,
) -> None:
    store = plain.make()
    await store.aput(("a",), "cat", {"text": "cat"})
    assert store.ops.index_state is IndexState.ABSENT
    assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
    assert plain.vector_hashes() == []
    state = K.vector_index_state_key(plain.prefix, DIMS, "flat")
    assert plain.raw.exists(state) == 0


async def test_asking_for_redisearch_where_it_is_missing_is_a_config_error(
    plain: Stores,
) -> None:
    store = plain.make(vector_index="flat")
    with pytest.raises(ConfigError, match="needs RediSearch"):
        await store.aput(("a",), "cat", {"text": "cat"})
    assert list(plain.raw.scan_iter(match=f"{plain.prefix}:*")) == []  # nothing lost
    with pytest.raises(ConfigError, match="vector_index must be one of"):
        plain.make(vector_index="faiss")


async def test_a_cluster_client_cannot_ask_for_redisearch(cluster_url: str) -> None:
    client = async_client(cluster_url, decode=False, cluster=True)
    try:
        with pytest.raises(ConfigError, match="Redis Cluster"):
            AsyncRedisStore(client, index=index(["text"]), vector_index="hnsw")
        store = AsyncRedisStore(client, index=index(["text"]))
        assert store.ops.index is None and store.ops.index_state is IndexState.ABSENT
    finally:
        await client.aclose()


async def test_a_user_who_may_not_create_the_index_searches_exactly(
    stack: Stores,
) -> None:
    user = f"u{uuid.uuid4().hex[:8]}"
    stack.raw.execute_command(
        "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-ft.create"
    )
    try:
        url = stack.url.replace("redis://", f"redis://{user}:pw@")
        limited = Stores(url)
        limited.prefix = stack.prefix
        store = limited.make()
        await store.aput(("a",), "cat", {"text": "cat"})
        assert store.ops.index_state is IndexState.ABSENT
        assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
        strict = limited.make(vector_index="flat")
        with pytest.raises(ConfigError, match=r"FT\.CREATE failed"):
            await strict.asearch(("a",), query="cat")
        for client in limited.clients:
            await client.aclose()
        limited.raw.close()
    finally:
        stack.raw.execute_command("ACL", "DELUSER", user)


async def test_the_exact_search_embeds_a_query_only_when_there_is_something_to_rank(
    plain: Stores,
) -> None:
    from .conftest import letters

    calls: list[list[str]] = []

    def counted(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return letters(texts)

    store = plain.make(index={"dims": DIMS, "embed": counted, "fields": ["text"]})
    assert await store.asearch(("nobody",), query="cat") == []
    assert calls == []
    await store.aput(("a",), "cat", {"text": "cat"})
    assert [i.key for i in await store.asearch(("a",), query="cat")] == ["cat"]
    assert calls == [["cat"], ["cat"]]  # the put's text, then the query
