"""A failover episode with real ``redis-server`` processes: the worker's Redis becomes
a replica of another for a few seconds (every write gets ``READONLY``), then a
primary again. The worker never stops, is not ready meanwhile, and no run is lost or
run twice."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest
import redis.asyncio as aredis

from dialogllm.errors import DialogueLLMError
from dialogllm.queue import Queue, RunStatus, Worker
from tests.redis_servers import RedisServer

from .conftest import ref

pytestmark = pytest.mark.integration

EPISODE_S = 3.0


async def _link_up(replica: aredis.Redis) -> None:
    for _ in range(200):
        info = await replica.info("replication")
        if info.get("master_link_status") == "up":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the replica did not sync")


def _read_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "read"]


async def test_a_replicaof_episode_leaves_the_worker_reading_and_no_run_lost(
    tmp_path: Path, key_prefix: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        RedisServer(tmp_path / "a", aof=False) as primary,
        RedisServer(tmp_path / "b", aof=False) as standby,
    ):
        a = aredis.Redis.from_url(primary.url)
        b = aredis.Redis.from_url(standby.url)
        await b.execute_command("REPLICAOF", "127.0.0.1", primary.port)
        await _link_up(b)

        queue = Queue.from_url(primary.url, key_prefix=key_prefix, retention=600)
        worker = Worker(
            primary.url,
            key_prefix=key_prefix,
            concurrency=4,
            lease_ttl=10.0,  # longer than the episode, as in production (30 s)
            grace=5.0,
            backoff_base=0.05,
        )
        task = asyncio.create_task(worker.run(install_signal_handlers=False))
        enqueued: list[str] = []
        refused = 0
        produce = True

        async def producer() -> None:
            nonlocal refused
            i = 0
            while produce:
                try:
                    enqueued.append(
                        await queue.enqueue(ref("sleepy"), {"sleep": 0.2, "i": i})
                    )
                except DialogueLLMError:
                    refused += 1  # READONLY during the episode: not enqueued
                i += 1
                await asyncio.sleep(0.1)

        try:
            for _ in range(200):
                if worker.ready:
                    break
                await asyncio.sleep(0.05)
            assert worker.ready
            (reader,) = _read_tasks()
            feeding = asyncio.create_task(producer())
            await asyncio.sleep(1.0)  # steady runs, some in flight

            # failover: b is promoted with a's data, a follows b (READONLY)
            await a.execute_command("WAIT", 1, 2000)
            switched_at = time.time()
            await b.execute_command("REPLICAOF", "NO", "ONE")
            await a.execute_command("REPLICAOF", "127.0.0.1", standby.port)
            seen_not_ready = False
            episode_end = asyncio.get_running_loop().time() + EPISODE_S
            while asyncio.get_running_loop().time() < episode_end:
                seen_not_ready = seen_not_ready or not worker.ready
                assert not reader.done(), "the read loop stopped"
                await asyncio.sleep(0.05)
            assert seen_not_ready, "the worker stayed ready on a replica"
            assert refused > 0  # the episode was real: enqueues were refused

            # a is a primary again (with the data it synced from b)
            await a.execute_command("REPLICAOF", "NO", "ONE")
            for _ in range(400):
                if worker.ready:
                    break
                await asyncio.sleep(0.05)
            assert worker.ready, "the worker did not come back"
            assert not reader.done() and _read_tasks() == [reader]
            before = len(enqueued)
            await asyncio.sleep(1.0)
            produce = False
            await feeding
            after = enqueued[before:]
            assert after, "nothing was enqueued after the episode"

            in_flight = 0
            for run_id in enqueued:
                done = await queue.wait(run_id, timeout=60)
                assert done.started_at is not None and done.finished_at is not None
                in_flight += done.started_at < switched_at < done.finished_at
                assert done.status is RunStatus.SUCCESS, (run_id, done)
                # started once: no lease lapsed, nothing was reclaimed or retried
                assert (done.attempts, done.reclaims) == (1, 0), (run_id, done)
                ends = [
                    e.status
                    async for e in queue.events(run_id, follow=False)
                    if e.status is RunStatus.SUCCESS
                ]
                assert ends == [RunStatus.SUCCESS], (run_id, ends)  # not run twice
            assert in_flight, "no run was in flight when the episode began"
            assert await queue.dlq_list() == []
            assert not reader.done()
        finally:
            produce = False
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 30)
            await queue.aclose()
            await a.aclose()
            await b.aclose()
