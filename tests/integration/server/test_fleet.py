"""At scale, as deployed: ``dialogllm serve --no-worker`` API processes and separate
``dialogllm worker`` processes on one Redis, driven by the real ``langgraph-sdk``.

A run created on one API process is streamed, joined and resumed from any other;
kill -9 of the API process a client streams from, or of the worker that runs the
run, loses no event and repeats none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.schema import Command, StreamPart

from tests.integration.server.fleet import Fleet, fleet, two_apis

__all__ = ["fleet", "two_apis"]  # the fixtures, imported for pytest

pytestmark = pytest.mark.integration

MODES = ["updates", "values"]


async def until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    """Wait until ``check()`` holds (a file another process writes: nothing to
    await)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def trace_of(path: Path) -> list[int]:
    """The step numbers the ``slow`` graph wrote, in the order they started."""
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def seen(parts: list[StreamPart]) -> list[tuple[str, str, object]]:
    """What a client observes of each event: id, name and data."""
    return [(str(p.id), p.event, p.data) for p in parts]


def counts(parts: list[StreamPart]) -> list[int]:
    """The ``n`` of each ``updates`` event of the ``slow`` graph."""
    return [p.data["step"]["n"] for p in parts if p.event == "updates"]


async def test_kill_9_of_the_api_process_mid_stream_then_join_on_another(
    fleet: Fleet, tmp_path: Path
) -> None:
    first, second = fleet.api(), fleet.api()
    fleet.worker()
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)
    gate = tmp_path / "gate"
    thread = await client_a.threads.create()
    tid = thread["thread_id"]

    before: list[StreamPart] = []
    stream = client_a.runs.stream(
        tid,
        "slow",
        input={"steps": 6, "sleep": 0.2, "gate": str(gate), "hold_after": 2},
        stream_mode=MODES,
    )
    async for part in stream:
        before.append(part)
        if counts(before) == [1, 2]:
            first.kill()  # the process the client streams from, and created the run
            break
    await stream.aclose()
    run_id = before[0].data["run_id"]
    assert before[0].event == "metadata"

    # the run lives on, on the worker: the other API process knows it
    assert (await client_b.runs.get(tid, run_id))["status"] == "running"
    rest_task = asyncio.create_task(
        _collect(
            client_b.runs.join_stream(
                tid, run_id, stream_mode=MODES, last_event_id=str(before[-1].id)
            )
        )
    )
    gate.touch()  # steps 3..6 may run now
    rest = await asyncio.wait_for(rest_task, 60)

    whole = await _collect(client_b.runs.join_stream(tid, run_id, stream_mode=MODES))
    assert counts(rest) == [3, 4, 5, 6], fleet.logs()
    assert "metadata" not in [p.event for p in rest]  # a join, not a new stream
    assert seen(before) + seen(rest) == seen(whole)  # nothing lost, nothing twice
    ids = [p.id for p in whole]
    assert len(set(ids[1:])) == len(ids) - 1  # every event its own id
    assert (await client_b.runs.get(tid, run_id))["status"] == "success"
    state = await client_b.threads.get_state(tid)
    assert state["values"]["log"] == [f"step {n}" for n in range(1, 7)]


async def test_kill_9_of_the_worker_mid_run_resumes_on_another_from_its_checkpoint(
    fleet: Fleet, tmp_path: Path
) -> None:
    api = fleet.api()
    doomed = fleet.worker()
    client = get_client(url=api.url)
    trace, gate = tmp_path / "trace", tmp_path / "gate"
    thread = await client.threads.create()
    tid = thread["thread_id"]

    parts: list[StreamPart] = []
    stream = client.runs.stream(
        tid,
        "slow",
        input={
            "steps": 5,
            "sleep": 0.1,
            "trace": str(trace),
            "gate": str(gate),
            "hold_after": 2,
        },
        stream_mode="updates",
    )
    async for part in stream:
        parts.append(part)
        if counts(parts) == [1, 2]:
            break
    # step 3 has started (so step 2's checkpoint is written): kill its worker
    await until(lambda: trace_of(trace) == [1, 2, 3], "step 3 to start")
    doomed.kill()
    fleet.worker()
    gate.touch()
    async for part in stream:  # the same stream, from the same API process
        parts.append(part)

    run_id = parts[0].data["run_id"]
    run = await client.runs.get(tid, run_id)
    assert run["status"] == "success", fleet.logs()
    assert counts(parts) == [1, 2, 3, 4, 5]  # the stream went on, once each
    # steps 1 and 2 were not run again: the new worker started from step 2's
    # checkpoint; only step 3, cut short by the kill, ran twice
    assert trace_of(trace) == [1, 2, 3, 3, 4, 5]
    assert run["attempts"] == 2
    values = (await client.threads.get_state(tid))["values"]
    assert values["log"] == [f"step {n}" for n in range(1, 6)]


async def test_hitl_interrupt_inspect_and_resume_from_another_api_process(
    two_apis: Fleet,
) -> None:
    first, second = two_apis.apis
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)
    thread = await client_a.threads.create()
    tid = thread["thread_id"]

    stopped = await client_a.runs.wait(tid, "review", input={"topic": "tea"})
    [pending] = stopped["__interrupt__"]
    assert pending["value"] == {"approve?": "a draft on tea"}

    state = await client_b.threads.get_state(tid)
    assert state["next"] == ["decide"]
    assert state["interrupts"] == [
        {"id": pending["id"], "value": {"approve?": "a draft on tea"}}
    ]
    assert state["tasks"][0]["interrupts"][0]["id"] == pending["id"]
    assert state["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    assert state["parent_checkpoint_id"] == state["parent_checkpoint"]["checkpoint_id"]
    assert (await client_b.threads.get(tid))["status"] == "interrupted"

    with pytest.raises(httpx.HTTPStatusError, match="provide a thread_id"):
        await client_b.runs.wait(None, "review", command=Command(resume="yes"))
    final = await client_b.runs.wait(tid, "review", command=Command(resume="yes"))
    assert final == {"topic": "tea", "draft": "a draft on tea", "verdict": "yes"}
    assert (await client_a.threads.get(tid))["status"] == "idle"


async def test_two_interrupts_resumed_by_id_from_another_api_process(
    two_apis: Fleet,
) -> None:
    first, second = two_apis.apis
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)
    tid = (await client_a.threads.create())["thread_id"]

    stopped = await client_a.runs.wait(tid, "pair", input={})
    by_value = {i["value"]: i["id"] for i in stopped["__interrupt__"]}
    assert set(by_value) == {"left?", "right?"}
    state = await client_b.threads.get_state(tid)
    assert sorted(state["next"]) == ["left", "right"]
    assert {i["id"] for i in state["interrupts"]} == set(by_value.values())

    resume = {by_value["left?"]: "yes", by_value["right?"]: "no"}
    final = await client_b.runs.wait(tid, "pair", command=Command(resume=resume))
    assert sorted(final["answers"]) == ["left:yes", "right:no"]
    assert (await client_b.threads.get(tid))["status"] == "idle"


async def _collect(parts: object) -> list[StreamPart]:
    return [p async for p in parts]  # type: ignore[attr-defined]
