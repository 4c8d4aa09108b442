"""The queue scripts' bookkeeping for operators, driven directly on a real Redis:
reclaims and their downtime, heartbeats, and the node an error came from."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from dialogllm.queue import Queue, RunStatus, keys, lua

from .conftest import ref

pytestmark = pytest.mark.integration


async def _entry(queue: Queue, run_id: str) -> str:
    record = await queue.client.hgetall(
        keys.run_record(queue.prefix, queue.name, run_id)
    )
    return str(record["entry"])


async def _claim(queue: Queue, run_id: str, worker: str, lease: str) -> list[Any]:
    script = queue.client.register_script(lua.CLAIM)
    stream = keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM)
    entry = await _entry(queue, run_id)
    return list(
        await script(keys=[stream], args=[queue.base, run_id, entry, worker, lease])
    )


async def _finish(
    queue: Queue, run_id: str, lease: str, mode: str, error: str, node: str
) -> str:
    script = queue.client.register_script(lua.FINISH)
    args = [queue.base, run_id, lease, mode, "", "", error, 60_000, 10, 100, node]
    return str(
        await script(
            keys=[keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM)],
            args=args,
        )
    )


async def test_a_claim_of_a_run_still_running_counts_a_reclaim_with_its_downtime(
    queue: Queue,
) -> None:
    await queue.client.xgroup_create(
        keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM),
        "workers",
        id="0",
        mkstream=True,
    )
    run_id = await queue.enqueue(ref("noop"), {"x": 1})
    assert (await _claim(queue, run_id, "w-1", "L1"))[0] == "run"
    record_key = keys.run_record(queue.prefix, queue.name, run_id)

    beat = queue.client.register_script(lua.BEAT)
    assert await beat(keys=[record_key], args=["other-lease"]) is None
    before = (await queue.get(run_id)).heartbeat_at
    await asyncio.sleep(0.05)
    await queue.client.hset(record_key, "signal", "cancel")
    assert await beat(keys=[record_key], args=["L1"]) == "cancel"  # and marks alive
    after = (await queue.get(run_id)).heartbeat_at
    assert before is not None and after is not None and after > before
    await queue.client.hset(record_key, "signal", "")

    await asyncio.sleep(0.2)  # w-1 "dies": its run stands still
    taken = await _claim(queue, run_id, "w-2", "L2")
    assert taken[0] == "run" and int(taken[4]) == 2  # attempt 2

    record = await queue.get(run_id)
    assert (record.status, record.reclaims, record.worker) == (
        RunStatus.RUNNING,
        1,
        "w-2",
    )
    recovery = await queue.recovery()
    assert recovery.reclaims == 1
    (reclaim,) = recovery.recent
    assert reclaim.run_id == run_id and 0.15 <= reclaim.downtime_s < 5.0
    events = [e async for e in queue.events(run_id, follow=False)]
    assert "reclaimed" in events[-1].data["detail"]


async def test_the_error_node_follows_the_latest_error(queue: Queue) -> None:
    await queue.client.xgroup_create(
        keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM),
        "workers",
        id="0",
        mkstream=True,
    )
    run_id = await queue.enqueue(ref("noop"), {"x": 1}, max_attempts=3)
    await _claim(queue, run_id, "w-1", "L1")
    assert await _finish(queue, run_id, "L1", "retry", "KeyError: k", "judge") == (
        "retry"
    )
    assert (await queue.get(run_id)).error_node == "judge"

    await queue.client.zadd(
        keys.queue_key(queue.prefix, queue.name, keys.QueueKey.DELAYED), {run_id: 0}
    )  # due now
    promote = queue.client.register_script(lua.PROMOTE)
    await promote(
        keys=[keys.queue_key(queue.prefix, queue.name, keys.QueueKey.STREAM)],
        args=[queue.base, 10],
    )
    await _claim(queue, run_id, "w-1", "L2")
    # the second failure came from no node: the old node must not stay beside it
    assert await _finish(queue, run_id, "L2", "error", "ValueError: v", "") == "error"
    record = await queue.get(run_id)
    assert (record.status, record.error, record.error_node) == (
        RunStatus.ERROR,
        "ValueError: v",
        None,
    )
