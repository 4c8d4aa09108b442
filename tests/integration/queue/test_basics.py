"""Runs go through the queue: results, events, interrupts, functions."""

from __future__ import annotations

import pytest
from langgraph.types import Command

from dialogllm.errors import DuplicateRunError, InputValidationError, RunNotFoundError
from dialogllm.queue import Queue, RunStatus

from .conftest import REDIS_URL, WorkerFactory, ref

pytestmark = pytest.mark.integration


async def test_enqueued_dialogue_runs_to_success_with_its_transcript(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker(concurrency=2)
    run_id = await queue.enqueue(
        ref("dialogue"),
        {"turns": 3, "counter": f"{key_prefix}:calls", "url": REDIS_URL},
        thread_id="t-1",
    )
    record = await queue.wait(run_id, timeout=20)
    assert record.status is RunStatus.SUCCESS
    assert record.result["transcript"] == [
        "alice: turn 1",
        "bob: turn 2",
        "alice: turn 3",
    ]
    assert record.attempts == 1


async def test_a_late_client_replays_every_event_of_a_finished_run(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    run_id = await queue.enqueue(
        ref("dialogue"), {"turns": 2, "counter": f"{key_prefix}:c", "url": REDIS_URL}
    )
    await queue.wait(run_id, timeout=20)

    events = [e async for e in queue.events(run_id)]

    statuses = [e.status for e in events if e.kind == "status"]
    assert statuses == [RunStatus.PENDING, RunStatus.RUNNING, RunStatus.SUCCESS]
    updates = [e.data for e in events if e.kind == "updates"]
    assert updates == [
        {"turn": {"transcript": ["alice: turn 1"]}},
        {"turn": {"transcript": ["bob: turn 2"]}},
    ]
    after_first = [e async for e in queue.events(run_id, after=events[0].id)]
    assert after_first == events[1:]


async def test_a_plain_function_runs_without_checkpoints(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    run_id = await queue.enqueue(ref("noop"), {"x": [1, 2]})
    record = await queue.wait(run_id, timeout=10)
    assert (record.status, record.result) == (RunStatus.SUCCESS, {"x": [1, 2]})


async def test_an_interrupt_ends_the_run_and_a_command_resumes_the_thread(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    first = await queue.enqueue(ref("asking"), {"question": "tea?"}, thread_id="t-ask")
    asked = await queue.wait(first, timeout=10)
    assert asked.status is RunStatus.INTERRUPTED

    second = await queue.enqueue(
        ref("asking"), Command(resume="yes please"), thread_id="t-ask"
    )
    answered = await queue.wait(second, timeout=10)

    assert answered.status is RunStatus.SUCCESS
    assert answered.result == {"question": "tea?", "answer": "yes please"}


async def test_get_and_list_find_runs_by_status_graph_and_thread(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    done = await queue.enqueue(ref("noop"), 1, thread_id="t-a")
    start_worker()
    await queue.wait(done, timeout=10)
    later = await queue.enqueue(ref("noop"), 2, thread_id="t-b", delay=60)

    assert [r.run_id for r in await queue.list(status="success")] == [done]
    assert [r.run_id for r in await queue.list(thread_id="t-b")] == [later]
    assert {r.run_id for r in await queue.list(graph=ref("noop"))} == {done, later}
    assert await queue.list(graph="nope:nothing") == []
    assert (await queue.get(later)).status is RunStatus.PENDING
    with pytest.raises(RunNotFoundError):
        await queue.get("no-such-run")
    stats = await queue.stats()
    assert stats["delayed"] == 1 and stats["retained"] == 2


async def test_enqueue_record_answers_the_record_as_stored(queue: Queue) -> None:
    record = await queue.enqueue_record(
        ref("noop"), {"a": 1}, thread_id="t-rec", run_id="r-rec"
    )
    assert record == await queue.get("r-rec")
    assert (record.run_id, record.thread_id, record.input) == (
        "r-rec",
        "t-rec",
        {"a": 1},
    )
    assert record.status is RunStatus.PENDING and record.created_at > 0
    again = await queue.enqueue_record(ref("noop"), {"a": 1}, run_id="r-rec")
    assert again == record  # the run that exists already, read again
    assert await queue.enqueue(ref("noop"), {"a": 1}, run_id="r-rec") == "r-rec"


async def test_the_same_idempotency_key_gives_the_same_run(queue: Queue) -> None:
    first = await queue.enqueue(ref("noop"), {"a": 1}, idempotency_key="order-7")
    again = await queue.enqueue(ref("noop"), {"a": 1}, idempotency_key="order-7")
    assert again == first
    with pytest.raises(DuplicateRunError):
        await queue.enqueue(ref("noop"), {"a": 2}, idempotency_key="order-7")
    assert len(await queue.list()) == 1


async def test_a_delayed_run_starts_after_its_delay_not_before(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    run_id = await queue.enqueue(ref("noop"), None, delay=0.6)
    record = await queue.wait(run_id, timeout=10)
    assert record.started_at is not None and record.created_at is not None
    assert 0.55 <= record.started_at - record.created_at < 1.5


async def test_wait_gives_up_after_its_timeout(queue: Queue) -> None:
    run_id = await queue.enqueue(ref("noop"), None)
    with pytest.raises(TimeoutError):
        await queue.wait(run_id, timeout=0.2)


async def test_input_that_is_not_json_is_refused_at_enqueue(queue: Queue) -> None:
    with pytest.raises(InputValidationError):
        await queue.enqueue(ref("noop"), {"when": object()})
