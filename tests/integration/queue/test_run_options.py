"""Run options (what LangGraph's run API lets a client say) go through the queue:
stream modes, metadata, a command, a fork from a past checkpoint, interrupts."""

from __future__ import annotations

import pytest

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.queue import Queue, RunOptions, RunStatus

from .conftest import REDIS_URL, WorkerFactory, ref

pytestmark = pytest.mark.integration


async def _events(queue: Queue, run_id: str) -> list[tuple[str, object]]:
    return [(e.kind, e.data) async for e in queue.events(run_id, follow=False)]


async def test_requested_stream_modes_and_metadata_reach_the_run(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    options = RunOptions(stream_modes=("values",), metadata={"who": "ada"})
    run_id = await queue.enqueue(
        ref("one_node"), {"n": 1}, thread_id="t-modes", options=options
    )
    record = await queue.wait(run_id, timeout=20)

    assert record.status is RunStatus.SUCCESS
    assert record.options == options
    events = await _events(queue, run_id)
    assert ("values", {"n": 1}) in events
    assert ("values", {"n": 2}) in events
    assert ("updates", {"one": {"n": 2}}) in events
    async with AsyncRedisSaver.from_conn_string(REDIS_URL, key_prefix=key_prefix) as s:
        latest = await s.aget_tuple({"configurable": {"thread_id": "t-modes"}})
    assert latest is not None
    assert latest.metadata["who"] == "ada"
    assert latest.metadata["run_id"] == run_id


async def test_a_command_in_the_options_resumes_an_interrupted_thread(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    first = await queue.enqueue(ref("asking"), {"question": "tea?"}, thread_id="t-c")
    asked = await queue.wait(first, timeout=20)
    assert asked.status is RunStatus.INTERRUPTED
    assert asked.result == {"question": "tea?"}  # the thread's values, as they are
    interrupt = [d for k, d in await _events(queue, first) if k == "updates"][-1]
    assert interrupt["__interrupt__"][0]["value"] == {"question": "tea?"}

    second = await queue.enqueue(
        ref("asking"),
        None,
        thread_id="t-c",
        options=RunOptions(command={"resume": "yes"}),
    )
    answered = await queue.wait(second, timeout=20)

    assert answered.status is RunStatus.SUCCESS
    assert answered.result == {"question": "tea?", "answer": "yes"}


async def test_a_run_from_a_past_checkpoint_forks_the_thread(
    queue: Queue, start_worker: WorkerFactory, key_prefix: str
) -> None:
    start_worker()
    for _ in range(2):
        run_id = await queue.enqueue(ref("one_node"), {}, thread_id="t-fork")
        assert (await queue.wait(run_id, timeout=20)).status is RunStatus.SUCCESS
    async with AsyncRedisSaver.from_conn_string(REDIS_URL, key_prefix=key_prefix) as s:
        history = [t async for t in s.alist({"configurable": {"thread_id": "t-fork"}})]
    # newest first: the second run's end (n=2), ..., the first run's end (n=1)
    first_end = next(
        t for t in reversed(history) if t.checkpoint["channel_values"].get("n") == 1
    )
    fork = await queue.enqueue(
        ref("one_node"),
        {},
        thread_id="t-fork",
        options=RunOptions(checkpoint_id=first_end.checkpoint["id"]),
    )
    record = await queue.wait(fork, timeout=20)

    assert record.status is RunStatus.SUCCESS
    assert record.result == {"n": 2}  # from n=1 again, not from the newest n=2


async def test_interrupt_before_stops_the_run_ahead_of_the_node(
    queue: Queue, start_worker: WorkerFactory
) -> None:
    start_worker()
    run_id = await queue.enqueue(
        ref("one_node"),
        {"n": 5},
        thread_id="t-before",
        options=RunOptions(interrupt_before=("one",)),
    )
    record = await queue.wait(run_id, timeout=20)

    assert record.status is RunStatus.INTERRUPTED
    assert record.result == {"n": 5}


def test_options_refuse_what_langgraph_would_not_run() -> None:
    with pytest.raises(ValueError, match="unknown stream mode"):
        RunOptions(stream_modes=("everything",))
    with pytest.raises(ValueError, match="durability"):
        RunOptions(durability="never")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interrupt_before"):
        RunOptions(interrupt_before="one")


def test_options_round_trip_as_json_and_ignore_unknown_fields() -> None:
    options = RunOptions(
        command={"resume": 1},
        stream_modes=("values", "messages"),
        interrupt_after=("a", "b"),
        durability="exit",
        subgraphs=True,
    )
    assert RunOptions.from_json(options.to_json()) == options
    assert RunOptions.from_json('{"future": 1, "subgraphs": true}') == RunOptions(
        subgraphs=True
    )
    assert RunOptions().to_json() == ""
    assert RunOptions.from_json("") == RunOptions()
