"""Failures: retries with backoff, dead letters, poison input, retry from the DLQ."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aredis

from dialogllm.queue import Queue, RunStatus

from .conftest import REDIS_URL, WorkerFactory, ref

pytestmark = pytest.mark.integration


async def test_a_failing_run_is_retried_until_it_succeeds(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    payload = {"fail": 2, "counter": f"{key_prefix}:flaky", "url": REDIS_URL}
    run_id = await queue.enqueue(ref("flaky"), payload, max_attempts=3)

    record = await queue.wait(run_id, timeout=10)

    assert (record.status, record.attempts) == (RunStatus.SUCCESS, 3)
    assert record.result == "ok after 3"
    assert record.error == "RuntimeError: flaky failure 2"  # the last error is kept
    statuses = [e.status for e in [e async for e in queue.events(run_id)] if e.status]
    assert statuses.count(RunStatus.RUNNING) == 3


async def test_a_run_failing_max_attempts_times_goes_to_the_dead_letters(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    counter = f"{key_prefix}:flaky"
    payload = {"fail": 3, "counter": counter, "url": REDIS_URL}
    run_id = await queue.enqueue(ref("flaky"), payload, max_attempts=2)

    dead = await queue.wait(run_id, timeout=10)

    assert (dead.status, dead.attempts) == (RunStatus.DEAD, 2)
    letters = await queue.dlq_list()
    assert [(d.run_id, d.attempts) for d in letters] == [(run_id, 2)]
    assert (
        "failed 2 times; last error: RuntimeError: flaky failure 2" in letters[0].reason
    )

    assert await queue.dlq_retry(run_id) is RunStatus.PENDING
    retried = await queue.wait(run_id, timeout=10)
    # attempts start again: failure 3, then success on call 4
    assert (retried.status, retried.result) == (RunStatus.SUCCESS, "ok after 4")
    assert retried.attempts == 2
    assert await queue.dlq_list() == []


@pytest.mark.parametrize(
    ("graph", "why"),
    [
        (ref("missing_attr"), "has no attribute"),
        ("no_such_module_xyz:graph", "importing"),
        (ref("not_a_graph"), "not a LangGraph graph"),
    ],
)
async def test_poison_goes_to_the_dead_letters_at_once(
    queue: Queue, start_worker: WorkerFactory, graph: str, why: str
) -> None:
    start_worker()
    run_id = await queue.enqueue(graph, {}, max_attempts=5)

    record = await queue.wait(run_id, timeout=10)

    assert (record.status, record.attempts) == (RunStatus.DEAD, 1)
    assert record.error is not None and record.error.startswith("poison:")
    assert why in record.error
    assert (await queue.dlq_list())[0].run_id == run_id


async def test_dlq_purge_empties_the_dead_letters_and_keeps_the_records(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    assert await queue.dlq_purge() == 0
    start_worker()
    run_ids = [await queue.enqueue(ref("missing_attr"), {}) for _ in range(2)]
    for run_id in run_ids:
        assert (await queue.wait(run_id, timeout=10)).status is RunStatus.DEAD

    assert await queue.dlq_purge() == 2

    assert await queue.dlq_list() == []
    assert (await queue.stats())["dead_letters"] == 0
    assert (await queue.get(run_ids[0])).status is RunStatus.DEAD
    assert await queue.dlq_retry(run_ids[0]) is RunStatus.PENDING


async def test_a_malformed_stream_entry_is_dropped(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    from dialogllm.queue import keys

    client = aredis.Redis.from_url(REDIS_URL)
    stream = keys.queue_key(key_prefix, "default", keys.QueueKey.STREAM)
    await client.xgroup_create(stream, keys.CONSUMER_GROUP, id="0", mkstream=True)
    await client.xadd(stream, {"junk": "1"})
    start_worker()
    run_id = await queue.enqueue(ref("noop"), 5)
    assert (await queue.wait(run_id, timeout=10)).result == 5
    assert await client.xlen(stream) == 0
    await client.aclose()


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempts", "abc"), ("max_attempts", "x"), ("status", "garbage")],
)
async def test_a_corrupt_run_record_is_dead_lettered_once_with_the_field_named(
    queue: Queue,
    start_worker: WorkerFactory,
    key_prefix: str,
    field: str,
    value: str,
) -> None:
    """A record that cannot be decoded is poison: one dead letter naming the field,
    not a START that fails (or a run that is reclaimed) every few seconds forever,
    nor a run stranded without a word."""
    import asyncio

    from dialogllm.queue import keys

    corrupt = await queue.enqueue(ref("noop"), 1, max_attempts=3)
    healthy = await queue.enqueue(ref("noop"), 2, max_attempts=3)
    client = aredis.Redis.from_url(REDIS_URL, decode_responses=True)
    await client.hset(keys.run_record(key_prefix, "default", corrupt), field, value)

    start_worker(lease_ttl=0.4)  # reclaims every 0.1 s, of runs idle for 0.2 s
    assert (await queue.wait(healthy, timeout=10)).result == 2
    for _ in range(200):  # the record cannot be read before: wait for its letter
        if await queue.dlq_list():
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # time for any retry, reclaim or second dead letter

    letters = await queue.dlq_list()
    assert [d.run_id for d in letters] == [corrupt]
    assert letters[0].reason.startswith("poison:")
    assert f"{field}=" in letters[0].reason and value in letters[0].reason
    assert (await queue.get(corrupt)).status is RunStatus.DEAD
    statuses = [e.status for e in [e async for e in queue.events(corrupt)] if e.status]
    assert RunStatus.RUNNING not in statuses  # never started
    assert statuses.count(RunStatus.DEAD) == 1
    assert (
        await client.xlen(keys.queue_key(key_prefix, "default", keys.QueueKey.STREAM))
        == 0
    )
    await client.aclose()


async def test_the_worker_outlives_an_error_reply_and_reads_again(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    """The stream key briefly holding the wrong type (WRONGTYPE on every read) makes
    the worker not ready, never stopped; once the key is a stream again, it
    recreates its group and runs what is enqueued."""
    from dialogllm.queue import keys

    worker = start_worker(key_prefix=key_prefix)
    for _ in range(200):
        if worker.ready:
            break
        await asyncio.sleep(0.05)
    assert worker.ready
    stream = keys.queue_key(key_prefix, "default", keys.QueueKey.STREAM)
    client = aredis.Redis.from_url(REDIS_URL)
    try:
        await client.delete(stream)
        await client.set(stream, "not a stream")
        for _ in range(100):
            if not worker.ready:
                break
            await asyncio.sleep(0.05)
        assert not worker.ready
        await asyncio.sleep(1.5)  # several failed reads: the loop must go on
        await client.delete(stream)
    finally:
        await client.aclose()
    run_id = await queue.enqueue(ref("noop"), {"x": 1})
    done = await queue.wait(run_id, timeout=30)
    assert done.status is RunStatus.SUCCESS
    assert worker.ready


async def test_get_reads_a_record_with_a_garbage_status_and_wait_names_it(
    queue: Queue, key_prefix: str
) -> None:
    """No worker: ``get`` returns the record with the field named, ``wait`` keeps
    waiting (a worker would dead-letter the run) and its timeout names the field."""
    from dialogllm.queue import keys

    run_id = await queue.enqueue(ref("noop"), 1)
    client = aredis.Redis.from_url(REDIS_URL)
    key = keys.run_record(key_prefix, "default", run_id)
    await client.hset(key, mapping={"status": "garbage", "started": "soon"})
    await client.aclose()

    record = await queue.get(run_id)
    assert record.status is RunStatus.PENDING
    assert set(record.problems) == {"status", "started"}
    assert "garbage" in record.problems["status"]
    assert [r.run_id for r in await queue.list()] == [run_id]
    with pytest.raises(TimeoutError, match="status: not a run status: 'garbage'"):
        await queue.wait(run_id, timeout=0.5)


async def test_a_dead_letter_with_garbage_figures_is_still_listed(
    queue: Queue, key_prefix: str
) -> None:
    from dialogllm.queue import keys

    client = aredis.Redis.from_url(REDIS_URL)
    letters = keys.queue_key(key_prefix, "default", keys.QueueKey.DEAD_LETTERS)
    await client.xadd(letters, {"run": "r-1", "attempts": "many", "at": "later"})
    await client.aclose()
    (letter,) = await queue.dlq_list()
    assert (letter.run_id, letter.attempts, letter.at) == ("r-1", 0, 0.0)
