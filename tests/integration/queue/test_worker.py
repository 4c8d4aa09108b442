"""Worker behaviour in-process: grace expiry, lost leases, unfixable errors."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aredis

from dialogllm.errors import RunNotFoundError
from dialogllm.leases import thread_lease
from dialogllm.queue import Queue, RunStatus

from .conftest import REDIS_URL, WorkerFactory, ref

pytestmark = pytest.mark.integration


def dialogue(key_prefix: str, turns: int, sleep: float) -> dict[str, object]:
    return {
        "turns": turns,
        "sleep": sleep,
        "counter": f"{key_prefix}:c",
        "url": REDIS_URL,
    }


async def updates(queue: Queue, run_id: str, n: int) -> None:
    seen = 0
    async for event in queue.events(run_id, timeout=15):
        seen += event.kind == "updates"
        if seen >= n:
            return
    raise AssertionError("no progress")


async def test_a_run_still_in_a_node_after_the_grace_is_handed_back(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    leaving = start_worker(grace=0.2)
    run_id = await queue.enqueue(ref("dialogue"), dialogue(key_prefix, 3, 0.6))
    await updates(queue, run_id, 1)

    leaving.stop()
    for _ in range(100):
        record = await queue.get(run_id)
        if record.status is RunStatus.PENDING:
            break
        await asyncio.sleep(0.05)
    assert (record.status, record.attempts) == (RunStatus.PENDING, 0)

    start_worker()
    done = await queue.wait(run_id, timeout=15)
    assert (done.status, done.attempts) == (RunStatus.SUCCESS, 1)
    assert len(done.result["transcript"]) == 3


async def test_a_run_whose_lease_is_taken_stops_and_resumes_once_it_is_free(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker(lease_ttl=0.6)
    run_id = await queue.enqueue(
        ref("dialogue"),
        dialogue(key_prefix, 8, 0.1),
        thread_id="t-taken",
        max_attempts=5,
    )
    await updates(queue, run_id, 2)

    client = aredis.Redis.from_url(REDIS_URL)
    lease = thread_lease(key_prefix, "t-taken")
    await client.hset(lease, mapping={"id": "intruder", "fence": 999, "run": "x"})
    await client.pexpire(lease, 800)
    await client.aclose()

    record = await queue.wait(run_id, timeout=20)
    assert (record.status, record.attempts) == (RunStatus.SUCCESS, 2)
    expected = [f"{'alice' if n % 2 else 'bob'}: turn {n}" for n in range(1, 9)]
    assert record.result["transcript"] == expected


async def test_a_graph_error_that_retrying_cannot_fix_ends_as_error(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    run_id = await queue.enqueue(ref("clashing"), {"n": 0}, max_attempts=3)
    record = await queue.wait(run_id, timeout=15)
    assert (record.status, record.attempts) == (RunStatus.ERROR, 1)
    assert record.error is not None and "InvalidUpdateError" in record.error
    assert await queue.dlq_list() == []


@pytest.mark.parametrize("status", [401, 404])
async def test_an_llm_refusal_ends_the_run_as_error_at_once(
    queue: Queue, start_worker: WorkerFactory, status: int
) -> None:
    """A refused LLM request (bad key, unknown model) fails the same way on every
    attempt: the run ends as ``error`` after one attempt, no dead letter."""
    start_worker()
    run_id = await queue.enqueue(ref("refused_llm"), {"status": status}, max_attempts=3)
    record = await queue.wait(run_id, timeout=15)
    assert (record.status, record.attempts) == (RunStatus.ERROR, 1)
    assert record.error is not None and "LLMRequestError" in record.error
    assert record.error_node == "ask"
    assert await queue.dlq_list() == []


async def test_unknown_runs_are_reported_as_not_found(queue: Queue) -> None:
    with pytest.raises(RunNotFoundError):
        await queue.cancel("nope")
    with pytest.raises(RunNotFoundError):
        await queue.dlq_retry("nope")
    with pytest.raises(RunNotFoundError):
        await queue.wait("nope")
    with pytest.raises(RunNotFoundError):
        [e async for e in queue.events("nope")]


async def test_reading_events_without_following_returns_what_is_there(
    queue: Queue,
) -> None:
    run_id = await queue.enqueue(ref("noop"), None)
    events = [e async for e in queue.events(run_id, follow=False)]
    assert [e.status for e in events] == [RunStatus.PENDING]
    assert await queue.dlq_retry(run_id) is RunStatus.PENDING  # not dead: unchanged
    assert await queue.prune() == 0


async def test_concurrency_is_a_hard_limit_with_reclaims_and_new_runs_at_once(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    """Reclaimed runs and new runs arriving together never run more than
    ``concurrency`` at once: slots are reserved before Redis is asked for runs."""
    from dialogllm.queue import keys

    client = aredis.Redis.from_url(REDIS_URL, decode_responses=True)
    stream = keys.queue_key(key_prefix, "default", keys.QueueKey.STREAM)
    await client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    payload = {"sleep": 1.0}
    orphans = [await queue.enqueue(ref("sleepy"), payload) for _ in range(2)]
    # a consumer that died right after reading: its entries wait to be reclaimed
    await client.xreadgroup(keys.CONSUMER_GROUP, "ghost", {stream: ">"}, count=2)
    await client.aclose()
    await asyncio.sleep(0.6)  # idle longer than the reclaim's min idle (0.5 s)

    worker = start_worker(concurrency=2, lease_ttl=1.0)
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, len(worker._active))
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    for _ in range(250):  # the reclaim took the orphans (the read loop waits)
        if len(worker._active) >= 2:
            break
        await asyncio.sleep(0.02)
    fresh = [await queue.enqueue(ref("sleepy"), payload) for _ in range(2)]
    records = [await queue.wait(r, timeout=20) for r in orphans + fresh]
    sampling = False
    await sampler

    assert [r.status for r in records] == [RunStatus.SUCCESS] * 4
    assert peak == 2
