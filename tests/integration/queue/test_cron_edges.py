"""The edges of crons on the real Redis: refused arguments, a busy thread under
``multitask="reject"``, an end time passed during downtime, a record nobody can
schedule, records that cannot be decoded, and a scheduler that outlives a Redis it
cannot reach."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.errors import InputValidationError, PayloadTooLargeError
from dialogllm.queue import (
    CronRecord,
    Crons,
    CronScheduler,
    CronSpec,
    FiringFollowUp,
    Queue,
    RunOptions,
)
from dialogllm.queue import crons as crons_module
from dialogllm.queue.crons import next_tick
from tests.integration.queue.conftest import ref

pytestmark = pytest.mark.integration

EVERY_SECOND = "* * * * * *"


async def test_refused_arguments_write_nothing(queue: Queue) -> None:
    crons = Crons(queue)
    refused = [
        ({"graph": ""}, "graph must name"),
        ({"multitask": "sometimes"}, "multitask"),
        ({"on_run_completed": "archive"}, "on_run_completed"),
        ({"thread_id": "   "}, "thread id"),
        ({"cron_id": "c" * 5000}, "cron id"),
        ({"input": {"blob": "x" * (2 * 1024 * 1024)}}, "DIALOGLLM_MAX_INPUT_BYTES"),
        ({"input": {1, 2}}, "JSON"),
    ]
    for change, message in refused:
        arguments = {"graph": ref("noop"), "schedule": "0 9 * * *", **change}
        with pytest.raises((InputValidationError, PayloadTooLargeError), match=message):
            await crons.create(**arguments)
    assert await crons.count() == 0
    made = await crons.create(ref("noop"), "0 9 * * *", cron_id="daily")
    with pytest.raises(InputValidationError, match="exists already"):
        await crons.create(ref("noop"), "0 10 * * *", cron_id="daily")
    with pytest.raises(InputValidationError, match="sort_order"):
        await crons.search(sort_order="sideways")
    with pytest.raises(InputValidationError, match="on_run_completed"):
        await crons.update("daily", on_run_completed="archive")
    with pytest.raises(PayloadTooLargeError, match="the cron is unchanged"):
        await crons.update("daily", input={"blob": "x" * (2 * 1024 * 1024)})
    assert (await crons.get("daily")).spec == made.spec


async def test_a_naive_end_time_is_utc_and_options_update_as_run_options(
    queue: Queue,
) -> None:
    crons = Crons(queue)
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    cron = await crons.create(ref("noop"), "0 9 * * *", end_time=naive)
    assert cron.spec.end_ms == int(naive.replace(tzinfo=UTC).timestamp() * 1000)
    updated = await crons.update(
        cron.cron_id, options=RunOptions(stream_modes=("updates",))
    )
    assert RunOptions.from_json(updated.spec.options).stream_modes == ("updates",)


async def test_a_busy_thread_passes_a_rejecting_cron_s_tick_over(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    holder = await queue.enqueue(ref("noop"), {}, thread_id="t-busy", delay=600)
    crons = Crons(queue)
    cron = await crons.create(
        ref("noop"), EVERY_SECOND, thread_id="t-busy", multitask="reject"
    )
    await asyncio.sleep(1.2)
    await CronScheduler(queue, saver).tick()
    assert [r.run_id for r in await queue.list()] == [holder]
    stats = await crons.stats()
    assert (stats.fired, stats.busy) == (0, 1)
    after = await crons.get(cron.cron_id)
    assert after.last_tick_ms is not None and after.fired == 0
    assert after.next_ms is not None and after.next_ms > after.last_tick_ms


async def test_an_end_passed_during_downtime_fires_the_last_tick_before_it_once(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    end = datetime.now(UTC) + timedelta(seconds=1.5)
    cron = await crons.create(ref("noop"), EVERY_SECOND, end_time=end)
    await asyncio.sleep(4)  # the end passes while no scheduler runs
    await CronScheduler(queue, saver).tick()
    runs = await queue.list()
    assert len(runs) == 1
    tick = (runs[0].options.metadata or {})["cron_tick"]
    assert tick <= end.timestamp() * 1000 < tick + 1000
    assert (await crons.get(cron.cron_id)).next_ms is None


async def test_a_very_long_downtime_jumps_to_the_next_tick_from_now(
    queue: Queue, saver: AsyncRedisSaver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crons_module, "_COUNT_LIMIT", 2)
    crons = Crons(queue)
    cron = await crons.create(ref("noop"), EVERY_SECOND)
    await asyncio.sleep(4.2)
    await CronScheduler(queue, saver).tick()
    after = await crons.get(cron.cron_id)
    now = await crons.store.now_ms()
    assert after.next_ms is not None and now < after.next_ms <= now + 1000
    assert (await crons.stats()).skipped == 2


async def test_a_stored_schedule_nobody_can_read_ends_its_cron(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    now = await crons.store.now_ms()
    spec = CronSpec(graph=ref("noop"), schedule="not a schedule")
    assert await crons.store.create("hand-made", spec, now - 1000)
    await CronScheduler(queue, saver).tick()
    ended = await crons.get("hand-made")
    assert ended.next_ms is None
    assert await queue.list() == []


async def test_records_that_cannot_be_decoded_read_as_no_cron(queue: Queue) -> None:
    assert CronSpec.from_json("not json") is None
    assert CronSpec.from_json("[1, 2]") is None
    assert CronSpec.from_json('{"graph": "g"}') is None  # no schedule
    spec = CronSpec(graph="g", schedule="0 9 * * *").to_json()
    assert CronRecord.from_hash("c", {"spec": "{"}) is None
    odd = CronRecord.from_hash("c", {"spec": spec, "created": "yesterday", "next": "x"})
    assert odd is not None and (odd.created_ms, odd.next_ms) == (0, None)
    crons = Crons(queue)
    key = f"{queue.base}:cron:broken"
    await queue.client.hset(key, "spec", "{")
    await queue.client.zadd(f"{queue.base}:crons", {"broken": 1})
    assert await crons.all() == []
    stats_key = f"{queue.base}:cronstats"
    await queue.client.hset(stats_key, "fired", "many")
    assert (await crons.stats()).fired == 0


def test_a_schedule_the_library_cannot_step_is_refused() -> None:
    with pytest.raises(InputValidationError, match="invalid cron schedule"):
        next_tick("0 0 31 2 *", None, 0)  # February 31st never comes


async def test_a_scheduler_waits_out_a_redis_it_cannot_reach(
    saver: AsyncRedisSaver,
) -> None:
    unreachable = Queue.from_url("redis://127.0.0.1:1/0", key_prefix="nowhere")
    scheduler = CronScheduler(unreachable, saver, poll=0.1)
    task = asyncio.create_task(scheduler.run())
    await asyncio.sleep(1.0)
    assert not task.done()
    scheduler.stop()
    await asyncio.wait_for(task, 30)
    await unreachable.aclose()


async def test_a_followed_crons_firings_are_claimed_once_until_the_claim_lapses(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    followed = await crons.create(ref("noop"), EVERY_SECOND, followed=True)
    released = await crons.create(ref("noop"), EVERY_SECOND, followed=True)
    plain = await crons.create(ref("noop"), EVERY_SECOND)  # never announced
    await asyncio.sleep(1.2)
    await CronScheduler(queue, saver).tick()
    runs = {(r.options.metadata or {})["cron_id"]: r.run_id for r in await queue.list()}
    assert set(runs) == {followed.cron_id, released.cron_id, plain.cron_id}
    announced, other = runs[followed.cron_id], runs[released.cron_id]
    # a scheduler leaves followed firings' threads alone until the API followed them
    assert set(await crons.store.cleanups(100)) == {runs[plain.cron_id]}
    claimed = await crons.claim_firings(claim_ms=300)
    assert sorted(claimed) == sorted([announced, other])
    assert await crons.claim_firings(claim_ms=300) == []  # held by the first claim
    await asyncio.sleep(0.4)
    assert sorted(await crons.claim_firings(claim_ms=300)) == sorted(claimed)
    await crons.firing_done(announced, took_cleanup=True)  # the API deletes it
    await crons.firing_done(other)  # left to the schedulers
    await asyncio.sleep(0.4)
    assert await crons.claim_firings() == []
    assert set(await crons.store.cleanups(100)) == {runs[plain.cron_id], other}


async def test_a_firing_keeps_what_the_api_does_for_it_after_its_cron_is_deleted(
    queue: Queue, saver: AsyncRedisSaver
) -> None:
    crons = Crons(queue)
    hooked = await crons.create(
        ref("noop"),
        EVERY_SECOND,
        followed=True,
        payload={"webhook": "https://hooks.example.com/c"},
    )
    kept = await crons.create(
        ref("noop"), EVERY_SECOND, followed=True, on_run_completed="keep"
    )
    on_thread = await crons.create(
        ref("noop"), EVERY_SECOND, thread_id="t-follow", followed=True
    )
    await asyncio.sleep(1.2)
    await CronScheduler(queue, saver).tick()
    runs = {(r.options.metadata or {})["cron_id"]: r.run_id for r in await queue.list()}
    for cron in (hooked, kept, on_thread):
        await crons.delete(cron.cron_id)  # before any API process claimed a firing
    assert await crons.follow_up(runs[hooked.cron_id]) == FiringFollowUp(
        stateless=True, delete=True, webhook="https://hooks.example.com/c"
    )
    assert await crons.follow_up(runs[kept.cron_id]) == FiringFollowUp(
        stateless=True, delete=False
    )
    assert await crons.follow_up(runs[on_thread.cron_id]) == FiringFollowUp(
        stateless=False, delete=False
    )
    await crons.firing_done(runs[hooked.cron_id], took_cleanup=True)
    assert await crons.follow_up(runs[hooked.cron_id]) is None  # done: forgotten
    assert FiringFollowUp.from_json("not json") is None
    assert FiringFollowUp.from_json('{"stateless": true}') is None
