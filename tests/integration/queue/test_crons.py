"""Crons on the real Redis: each tick fires exactly once however many schedulers race
for it (in-process, in worker processes, one of them killed -9), missed ticks are
caught up or skipped as the cron says, ``end_time`` ends a cron, stateless firings
leave no thread behind, and a cron lives in its queue's Cluster slot."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import prometheus_client as prom
import pytest

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.errors import CronNotFoundError, InputValidationError
from dialogllm.queue import Crons, CronScheduler, Queue, RunRecord, RunStatus, keys
from dialogllm.queue.fleet import FleetExporter, fleet_status
from dialogllm.redis.clients import async_client
from tests.integration.queue.conftest import (
    WorkerFactory,
    ready_workers,
    ref,
    stop_processes,
    worker_process,
)
from tests.integration.redis_cluster import redis_cluster

pytestmark = pytest.mark.integration

EVERY_SECOND = "* * * * * *"


def ticks_of(runs: list[RunRecord], cron_id: str) -> Counter[int]:
    """How many runs each tick of ``cron_id`` enqueued."""
    return Counter(
        int((r.options.metadata or {})["cron_tick"])
        for r in runs
        if (r.options.metadata or {}).get("cron_id") == cron_id
    )


async def wait_for_ticks(queue: Queue, cron_id: str, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ticks_of(await queue.list(limit=10_000), cron_id)) >= n:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"fewer than {n} ticks of cron {cron_id} fired")


def assert_each_tick_once(ticks: Counter[int], n: int) -> None:
    """``n`` or more consecutive one-second ticks, each fired exactly once."""
    assert ticks, "no tick fired"
    assert max(ticks.values()) == 1, f"doubled ticks: {ticks.most_common(3)}"
    first, last = min(ticks), max(ticks)
    missing = [t for t in range(first, last + 1, 1000) if t not in ticks]
    assert missing == [], f"lost ticks: {missing}"
    assert len(ticks) >= n


async def test_four_schedulers_fire_each_tick_once_for_20_ticks(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    cron = await crons.create(ref("noop"), EVERY_SECOND, input={"x": 1})
    schedulers = [CronScheduler(queue, saver, poll=0.2) for _ in range(4)]
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        await wait_for_ticks(queue, cron.cron_id, 20, timeout=40)
    finally:
        for s in schedulers:
            s.stop()
        await asyncio.gather(*tasks)
    ticks = ticks_of(await queue.list(limit=10_000), cron.cron_id)
    assert_each_tick_once(ticks, 20)
    assert sum(s.fired for s in schedulers) == len(ticks)
    stats = await crons.stats()
    assert (stats.crons, stats.scheduled, stats.fired) == (1, 1, len(ticks))


async def test_after_downtime_catch_up_fires_every_missed_tick_and_skip_the_latest(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    catching = await crons.create(ref("noop"), EVERY_SECOND, catch_up=True)
    skipping = await crons.create(ref("noop"), EVERY_SECOND)
    await asyncio.sleep(11.5)  # no scheduler runs: eleven or twelve ticks are missed
    down = await fleet_status(queue.client, queue)
    assert "crons_overdue" in {a.name for a in down.alerts}
    assert down.crons.overdue == 2
    await CronScheduler(queue, saver).tick()
    runs = await queue.list(limit=1000)
    caught, skipped = ticks_of(runs, catching.cron_id), ticks_of(runs, skipping.cron_id)
    assert_each_tick_once(caught, 11)
    assert min(caught) == catching.next_ms  # from the first missed tick on
    assert len(skipped) == 1  # only the latest missed tick
    assert max(skipped) == max(caught)
    up = await fleet_status(queue.client, queue)
    assert up.crons.skipped == len(caught) - 1
    assert up.crons.fired == len(caught) + 1
    assert up.crons.overdue == 0
    assert "crons_overdue" not in {a.name for a in up.alerts}
    registry = prom.CollectorRegistry()
    await FleetExporter(registry).refresh(queue.client, queue)
    labels = {"queue": "default", "outcome": "fired"}
    assert registry.get_sample_value("dialogllm_cron_ticks", labels) == len(caught) + 1
    scheduled = {"queue": "default", "state": "scheduled"}
    assert registry.get_sample_value("dialogllm_crons", scheduled) == 2


async def test_end_time_ends_a_cron_and_past_end_times_are_refused(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    with pytest.raises(InputValidationError, match="in the past"):
        await crons.create(
            ref("noop"), EVERY_SECOND, end_time=datetime.now(UTC) - timedelta(1)
        )
    end = datetime.now(UTC) + timedelta(seconds=2.5)
    cron = await crons.create(ref("noop"), EVERY_SECOND, end_time=end)
    scheduler = CronScheduler(queue, saver, poll=0.2)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(4.5)
    scheduler.stop()
    await task
    ticks = ticks_of(await queue.list(), cron.cron_id)
    assert 2 <= len(ticks) <= 3
    assert max(ticks) <= end.timestamp() * 1000
    ended = await crons.get(cron.cron_id)
    assert ended.next_ms is None
    assert (await crons.stats()).scheduled == 0


async def test_bad_schedules_and_timezones_are_refused(queue: Queue) -> None:
    crons = Crons(queue)
    for schedule in ("every day", "* * *", "61 * * * *", "* * * * * * * *"):
        with pytest.raises(InputValidationError, match="cron schedule"):
            await crons.create(ref("noop"), schedule)
    with pytest.raises(InputValidationError, match="timezone"):
        await crons.create(ref("noop"), "0 9 * * *", timezone="Mars/Olympus")
    assert await crons.count() == 0


async def test_timezone_sets_the_next_tick(queue: Queue) -> None:
    crons = Crons(queue)
    paris = await crons.create(ref("noop"), "0 9 * * *", timezone="Europe/Paris")
    assert paris.next_ms is not None
    local = datetime.fromtimestamp(paris.next_ms / 1000, UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Paris")
    )
    assert (local.hour, local.minute, local.second) == (9, 0, 0)


async def test_search_count_update_and_delete(queue: Queue) -> None:
    crons = Crons(queue)
    a = await crons.create(
        ref("noop"), "0 9 * * *", thread_id="t-1", metadata={"team": "a"}
    )
    await asyncio.sleep(0.005)  # a later created_at, so the default order is known
    b = await crons.create(ref("noop"), "0 10 * * *", assistant_id="digest")
    assert [c.cron_id for c in await crons.search()] == [b.cron_id, a.cron_id]
    assert [c.cron_id for c in await crons.search(thread_id="t-1")] == [a.cron_id]
    assert [c.cron_id for c in await crons.search(metadata={"team": "a"})] == [
        a.cron_id
    ]
    assert await crons.count(assistant_id="digest") == 1
    by_next = await crons.search(sort_by="next_run_date", sort_order="asc", limit=1)
    # Which of 09:00 and 10:00 comes next depends on the time of day the test runs.
    sooner = min((a, b), key=lambda c: c.next_ms or 0)
    assert by_next[0].cron_id == sooner.cron_id
    with pytest.raises(InputValidationError):
        await crons.search(sort_by="colour")
    updated = await crons.update(a.cron_id, schedule="30 9 * * *", input={"n": 2})
    assert updated.version == a.version + 1
    assert updated.spec.schedule == "30 9 * * *"
    assert updated.spec.input == '{"n":2}'
    assert updated.next_ms is not None
    next_run = datetime.fromtimestamp(updated.next_ms / 1000, UTC)
    assert (next_run.hour, next_run.minute) == (9, 30)
    assert 0 < updated.next_ms - time.time() * 1000 <= 86_400_000
    disabled = await crons.update(a.cron_id, enabled=False)
    assert disabled.next_ms is None
    assert (await crons.stats()).scheduled == 1
    with pytest.raises(InputValidationError):
        await crons.update(a.cron_id, colour="red")
    with pytest.raises(InputValidationError):
        await crons.update(a.cron_id, schedule="nope")
    await crons.delete(a.cron_id)
    with pytest.raises(CronNotFoundError):
        await crons.get(a.cron_id)
    with pytest.raises(CronNotFoundError):
        await crons.delete(a.cron_id)
    with pytest.raises(CronNotFoundError):
        await crons.update(a.cron_id, enabled=True)
    assert await crons.count() == 1


async def test_a_thread_cron_runs_on_its_thread_and_stateless_threads_are_deleted(
    queue: Queue, saver: AsyncRedisSaver, start_worker: WorkerFactory
) -> None:
    crons = Crons(queue)
    threaded = await crons.create(
        ref("one_node"), EVERY_SECOND, thread_id="t-cron", input={}
    )
    stateless = await crons.create(ref("one_node"), EVERY_SECOND, input={"n": 0})
    kept = await crons.create(
        ref("one_node"), EVERY_SECOND, input={"n": 0}, on_run_completed="keep"
    )
    start_worker(crons=True)
    await wait_for_ticks(queue, stateless.cron_id, 3, timeout=30)
    await wait_for_ticks(queue, kept.cron_id, 3, timeout=30)
    for cron in (threaded, stateless, kept):
        await crons.delete(cron.cron_id)
    runs = await queue.list(limit=1000)
    for run in runs:
        await queue.wait(run.run_id, timeout=30)
    on_thread = [r for r in runs if r.options.metadata["cron_id"] == threaded.cron_id]
    assert {r.thread_id for r in on_thread} == {"t-cron"}
    state = await saver.aget_tuple({"configurable": {"thread_id": "t-cron"}})
    assert state is not None and state.checkpoint["channel_values"]["n"] >= 2

    def threads_of(cron_id: str) -> set[str]:
        return {r.thread_id for r in runs if r.options.metadata["cron_id"] == cron_id}

    assert len(threads_of(stateless.cron_id)) >= 3  # a new thread per firing
    scheduler = CronScheduler(queue, saver)
    await scheduler.clean_up()
    for thread in threads_of(stateless.cron_id):
        assert await saver.aget_tuple({"configurable": {"thread_id": thread}}) is None
    for thread in threads_of(kept.cron_id):
        assert await saver.aget_tuple({"configurable": {"thread_id": thread}})


async def test_a_worker_killed_mid_tick_loses_no_tick_and_doubles_none(
    queue: Queue, key_prefix: str
) -> None:
    crons = Crons(queue)
    cron = await crons.create(ref("noop"), EVERY_SECOND)
    procs = [worker_process(key_prefix, concurrency=2) for _ in range(3)]
    try:
        await ready_workers(procs, 3)
        for victim in procs[:2]:
            await wait_for_ticks(queue, cron.cron_id, 3, timeout=30)
            # at the turn of a second: the schedulers are firing that tick now
            await asyncio.sleep(1 - time.time() % 1)
            victim.kill()
            victim.wait(10)
            await asyncio.sleep(3)
        await asyncio.sleep(3)
    finally:
        stop_processes(*procs)
    assert_each_tick_once(ticks_of(await queue.list(limit=10_000), cron.cron_id), 9)


async def test_crons_fire_once_per_tick_on_a_cluster() -> None:
    with redis_cluster() as url:
        queue = Queue.from_url(url, cluster=True, key_prefix=f"cc-{uuid.uuid4().hex}")
        saver = AsyncRedisSaver(
            async_client(url, decode=False, cluster=True), key_prefix=queue.prefix
        )
        try:
            crons = Crons(queue)
            cron = await crons.create(ref("noop"), EVERY_SECOND, input={"x": 1})
            assert await crons.count() == 1
            schedulers = [CronScheduler(queue, saver, poll=0.2) for _ in range(3)]
            tasks = [asyncio.create_task(s.run()) for s in schedulers]
            await wait_for_ticks(queue, cron.cron_id, 5, timeout=30)
            for s in schedulers:
                s.stop()
            await asyncio.gather(*tasks)
            runs = await queue.list(limit=1000)
            assert_each_tick_once(ticks_of(runs, cron.cron_id), 5)
            assert {r.status for r in runs} == {RunStatus.PENDING}
            assert (await crons.stats()).fired == len(runs)
            await crons.delete(cron.cron_id)
        finally:
            await queue.aclose()
            await saver.client.aclose()


async def test_searches_by_thread_or_assistant_read_their_index(queue: Queue) -> None:
    crons = Crons(queue)
    store = crons.store
    client = store.client

    def index(by: str, value: str) -> str:
        return keys.cron_index(store.prefix, store.queue, by, value)

    async def members(by: str, value: str) -> list[str]:
        found: list[str] = await client.zrange(index(by, value), 0, -1)
        return found

    first = await crons.create(
        ref("noop"), "0 9 * * *", thread_id="t-ix", assistant_id="a-ix"
    )
    await asyncio.sleep(0.005)
    second = await crons.create(ref("noop"), "0 9 * * *", assistant_id="a-ix")
    other = await crons.create(ref("noop"), "0 9 * * *", assistant_id="b-ix")
    assert await members("assistant", "a-ix") == [first.cron_id, second.cron_id]
    assert await members("thread", "t-ix") == [first.cron_id]
    found = await crons.search(assistant_id="a-ix")
    assert [c.cron_id for c in found] == [second.cron_id, first.cron_id]
    assert [c.cron_id for c in await crons.search(thread_id="t-ix")] == [first.cron_id]
    assert await crons.count(assistant_id="a-ix", thread_id="t-ix") == 1

    # an update that moves a cron to another assistant moves it in the indexes
    await crons.update(second.cron_id, assistant_id="b-ix")
    assert await members("assistant", "a-ix") == [first.cron_id]
    assert set(await members("assistant", "b-ix")) == {second.cron_id, other.cron_id}
    assert await crons.count(assistant_id="b-ix") == 2

    # a deleted cron leaves its indexes
    await crons.delete(first.cron_id)
    assert await client.exists(index("assistant", "a-ix"), index("thread", "t-ix")) == 0
    assert await crons.search(thread_id="t-ix") == []

    # a cron made before the indexes existed is added by the first search
    record = keys.cron_record(store.prefix, store.queue, other.cron_id)
    await client.hdel(record, "ix_a", "ix_t")
    await client.zrem(index("assistant", "b-ix"), other.cron_id)
    indexed = keys.queue_key(store.prefix, store.queue, keys.QueueKey.CRON_INDEXED)
    await client.delete(indexed)
    assert await crons.count(assistant_id="b-ix") == 2
    assert await client.get(indexed) == "1"
    assert await client.hget(record, "ix_a") == index("assistant", "b-ix")
    assert await store.index_all() == 0  # nothing left to add
    with pytest.raises(ValueError, match="assistant_id or a thread_id"):
        await store.ids_for()
