"""The queue's boundary: an oversized input, an over-long thread id or idempotency key
is refused with a typed error before anything is written (the limits are settings);
a relative graph file is stored as the file it names, wherever the worker runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis

from dialogllm.config import get_settings
from dialogllm.errors import (
    GraphNotFoundError,
    InputValidationError,
    PayloadTooLargeError,
)
from dialogllm.queue import Queue, RunStatus

from .conftest import REDIS_URL, ref


def _keys(prefix: str) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        return list(client.scan_iter(match=f"{prefix}:*"))
    finally:
        client.close()


async def test_oversized_input_and_long_ids_are_refused_and_nothing_is_written(
    queue: Queue, key_prefix: str
) -> None:
    with pytest.raises(PayloadTooLargeError, match="DIALOGLLM_MAX_INPUT_BYTES"):
        await queue.enqueue(ref("noop"), {"blob": "x" * (2 * 1024 * 1024)})
    with pytest.raises(InputValidationError, match="thread id must be 1 to 200"):
        await queue.enqueue(ref("noop"), {"x": 1}, thread_id="t" * 5000)
    with pytest.raises(InputValidationError, match="idempotency key"):
        await queue.enqueue(ref("noop"), {"x": 1}, idempotency_key="k" * 201)
    with pytest.raises(InputValidationError, match="thread id"):
        await queue.enqueue(ref("noop"), {"x": 1}, thread_id="   ")
    with pytest.raises(InputValidationError, match="run id must be 1 to 200"):
        await queue.enqueue(ref("noop"), {"x": 1}, run_id="r" * 201)
    assert _keys(key_prefix) == []
    # what was accepted before stays accepted: the limits are not off by one
    run_id = await queue.enqueue(ref("noop"), {"x": 1}, thread_id="t" * 200)
    assert (await queue.get(run_id)).thread_id == "t" * 200


async def test_the_limits_are_settings(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALOGLLM_MAX_INPUT_BYTES", "64")
    monkeypatch.setenv("DIALOGLLM_MAX_ID_LENGTH", "10")
    get_settings(reload=True)
    try:
        with pytest.raises(PayloadTooLargeError, match="over the limit of 64"):
            await queue.enqueue(ref("noop"), {"text": "y" * 100})
        with pytest.raises(InputValidationError, match="1 to 10 characters"):
            await queue.enqueue(ref("noop"), {"x": 1}, thread_id="t" * 11)
    finally:
        monkeypatch.delenv("DIALOGLLM_MAX_INPUT_BYTES")
        monkeypatch.delenv("DIALOGLLM_MAX_ID_LENGTH")
        get_settings(reload=True)


COUNTING = """
from typing_extensions import TypedDict
from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    who: str


builder = StateGraph(State)
builder.add_node("n", lambda state: {{"who": "{who}"}})
builder.add_edge(START, "n")
builder.add_edge("n", END)
graph = builder.compile()
"""


async def test_a_relative_graph_file_is_stored_as_the_file_it_names(
    queue: Queue,
    start_worker: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    for folder, who in ((here, "the submitter's"), (elsewhere, "another")):
        folder.mkdir()
        (folder / "counting.py").write_text(COUNTING.format(who=who))
    monkeypatch.chdir(here)
    run_id = await queue.enqueue("./counting.py:graph", {})
    assert (await queue.get(run_id)).graph == f"{here / 'counting.py'}:graph"
    with pytest.raises(GraphNotFoundError, match="does not exist"):
        await queue.enqueue("./missing.py:graph", {})

    monkeypatch.chdir(elsewhere)  # a worker started in another directory
    start_worker(key_prefix=queue.prefix)
    done = await queue.wait(run_id, timeout=60)
    assert done.status is RunStatus.SUCCESS, done
    assert done.result == {"who": "the submitter's"}
