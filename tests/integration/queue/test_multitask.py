"""Double-texting: what a second run on a busy thread does to the first."""

from __future__ import annotations

import asyncio

import pytest

from dialogllm.errors import ThreadBusyError
from dialogllm.queue import Queue, RunStatus

from .conftest import REDIS_URL, WorkerFactory, ref

pytestmark = pytest.mark.integration


def dialogue(key_prefix: str, turns: int, sleep: float = 0.0) -> dict[str, object]:
    return {
        "turns": turns,
        "sleep": sleep,
        "counter": f"{key_prefix}:c",
        "url": REDIS_URL,
    }


async def until_running(queue: Queue, run_id: str, updates: int = 1) -> None:
    """Wait until the run has produced ``updates`` node updates."""
    seen = 0
    async for event in queue.events(run_id, timeout=10):
        if event.kind == "updates":
            seen += 1
            if seen >= updates:
                return
    raise AssertionError("run never got going")


async def test_reject_refuses_a_second_run_on_a_busy_thread(queue: Queue) -> None:
    await queue.enqueue(ref("noop"), 1, thread_id="t")
    with pytest.raises(ThreadBusyError):
        await queue.enqueue(ref("noop"), 2, thread_id="t", multitask="reject")


async def test_enqueue_runs_the_second_run_after_the_first_in_order(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker(concurrency=4)
    first = await queue.enqueue(
        ref("dialogue"), dialogue(key_prefix, 2, 0.05), thread_id="t"
    )
    second = await queue.enqueue(ref("dialogue"), {"turns": 4}, thread_id="t")
    third = await queue.enqueue(ref("dialogue"), {"turns": 5}, thread_id="t")

    records = [await queue.wait(r, timeout=20) for r in (first, second, third)]

    assert [r.status for r in records] == [RunStatus.SUCCESS] * 3
    assert records[0].finished_at <= records[1].started_at  # type: ignore[operator]
    assert records[1].finished_at <= records[2].started_at  # type: ignore[operator]
    assert len(records[2].result["transcript"]) == 5


async def test_interrupt_stops_the_running_run_keeping_its_turns(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker(concurrency=2)
    first = await queue.enqueue(
        ref("dialogue"), dialogue(key_prefix, 50, 0.05), thread_id="t"
    )
    await until_running(queue, first, updates=2)

    second = await queue.enqueue(
        ref("dialogue"), {"turns": 1}, thread_id="t", multitask="interrupt"
    )
    stopped = await queue.wait(first, timeout=10)
    after = await queue.wait(second, timeout=10)

    assert stopped.status is RunStatus.INTERRUPTED
    assert "interrupted by run" in (stopped.error or "")
    assert after.status is RunStatus.SUCCESS
    kept = after.result["transcript"]
    assert 2 <= len(kept) < 50  # the first run's turns are kept, it did not finish
    assert kept == [
        f"{'alice' if n % 2 else 'bob'}: turn {n}" for n in range(1, len(kept) + 1)
    ]


async def test_rollback_stops_the_running_run_and_deletes_its_checkpoints(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker(concurrency=2)
    first = await queue.enqueue(
        ref("dialogue"), dialogue(key_prefix, 50, 0.05), thread_id="t"
    )
    await until_running(queue, first, updates=2)

    second = await queue.enqueue(
        ref("dialogue"), dialogue(key_prefix, 1), thread_id="t", multitask="rollback"
    )
    rolled = await queue.wait(first, timeout=10)
    after = await queue.wait(second, timeout=10)

    assert rolled.status is RunStatus.CANCELLED
    assert "rolled back" in (rolled.error or "")
    assert after.status is RunStatus.SUCCESS
    assert after.result["transcript"] == ["alice: turn 1"]  # a fresh thread


@pytest.mark.parametrize(
    ("policy", "status"),
    [("interrupt", RunStatus.INTERRUPTED), ("rollback", RunStatus.CANCELLED)],
)
async def test_interrupt_or_rollback_of_a_pending_run_ends_it_at_once(
    queue: Queue, policy: str, status: RunStatus
) -> None:
    first = await queue.enqueue(ref("noop"), 1, thread_id="t")
    second = await queue.enqueue(ref("noop"), 2, thread_id="t", multitask=policy)  # type: ignore[arg-type]

    assert (await queue.get(first)).status is status
    assert (await queue.get(second)).status is RunStatus.PENDING
    assert (await queue.stats())["ready"] == 1  # only the second is in the stream


async def test_cancel_ends_a_pending_run_and_the_next_one_takes_the_thread(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    first = await queue.enqueue(ref("noop"), 1, thread_id="t")
    second = await queue.enqueue(ref("noop"), 2, thread_id="t")
    third = await queue.enqueue(ref("noop"), 3, thread_id="t")

    assert await queue.cancel(first) is RunStatus.CANCELLED
    assert await queue.cancel(third) is RunStatus.CANCELLED
    start_worker()

    assert (await queue.wait(second, timeout=10)).status is RunStatus.SUCCESS
    assert (await queue.get(first)).status is RunStatus.CANCELLED
    assert (await queue.get(third)).status is RunStatus.CANCELLED
    assert await queue.cancel(second) is RunStatus.SUCCESS  # finished: unchanged


async def test_cancel_stops_a_running_run(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    run_id = await queue.enqueue(ref("dialogue"), dialogue(key_prefix, 50, 0.05))
    await until_running(queue, run_id)

    assert await queue.cancel(run_id) is RunStatus.RUNNING
    record = await queue.wait(run_id, timeout=5)

    assert record.status is RunStatus.CANCELLED
    assert record.finished_at is not None
    await asyncio.sleep(0)
