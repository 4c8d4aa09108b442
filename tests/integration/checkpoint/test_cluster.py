"""The checkpointer on a real 3-node Redis Cluster started by the test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.types import Command
from redis.asyncio.cluster import RedisCluster
from redis.cluster import RedisCluster as SyncRedisCluster

from dialogllm.checkpoint import AsyncRedisSaver, RedisSaver
from dialogllm.checkpoint import keys as K

from ..redis_cluster import redis_cluster
from .test_graphs import _ask_graph, _delta_graph

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with redis_cluster() as url:
        yield url


async def test_conformance_on_cluster(cluster_url: str) -> None:
    @checkpointer_test(name="dialogllm.AsyncRedisSaver[cluster]")
    async def factory() -> AsyncIterator[AsyncRedisSaver]:
        client = RedisCluster.from_url(cluster_url)
        try:
            yield AsyncRedisSaver(client, key_prefix=f"c-{uuid.uuid4().hex[:6]}")
        finally:
            await client.aclose()

    report = await validate(factory)
    for capability, result in report.results.items():
        assert result.passed, f"{capability}: {result.failures}"


async def test_thread_keys_share_one_slot_and_graphs_resume(cluster_url: str) -> None:
    async with AsyncRedisSaver.from_conn_string(
        cluster_url, cluster=True, key_prefix="cg", ttl=60
    ) as saver:
        client = saver.client
        slots = set()
        for i in range(8):
            thread = f"thread-{i}"
            graph = _ask_graph().compile(checkpointer=saver)
            config = {"configurable": {"thread_id": thread}}
            await graph.ainvoke({"question": "q", "answer": ""}, config)
            result = await graph.ainvoke(Command(resume=str(i)), config)
            assert result["answer"] == f"person said: {i}"
            thread_slots = {
                await client.cluster_keyslot(K.thread_key("cg", thread, s))
                for s in K.THREAD_KEY_SUFFIXES
            }
            assert len(thread_slots) == 1
            slots |= thread_slots
        assert len(slots) > 1  # threads spread over the cluster

        delta = _delta_graph(12).compile(checkpointer=saver)
        await delta.ainvoke(
            {"transcript": [], "turn": 0}, {"configurable": {"thread_id": "d"}}
        )
        await saver.acopy_thread("d", "d-copy")  # across slots
        copied = await delta.aget_state({"configurable": {"thread_id": "d-copy"}})
        assert len(copied.values["transcript"]) == 12
        await saver.aprune(["d"], strategy="keep_latest")
        await saver.adelete_thread("d-copy")
        assert await saver.aget_tuple({"configurable": {"thread_id": "d-copy"}}) is None


def test_sync_saver_on_cluster(cluster_url: str) -> None:
    client = SyncRedisCluster.from_url(cluster_url)
    try:
        saver = RedisSaver(client, key_prefix="cs")
        graph = _ask_graph().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "s1"}}
        graph.invoke({"question": "q", "answer": ""}, config)
        assert graph.invoke(Command(resume="y"), config)["answer"] == "person said: y"
        saver.copy_thread("s1", "s2")
        assert len(list(saver.list({"configurable": {"thread_id": "s2"}}))) >= 2
    finally:
        client.close()
