"""A persona's memory through the store: the remembering host of
``examples/remembering_host.py`` knows, in a second thread, what a person said in the
first, with the runner and with queue workers (the second run on a fresh worker
after the first worker stopped)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from dialogllm.core import DialogueRunner
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.loader import load_object
from dialogllm.queue import Queue, Worker
from dialogllm.store import AsyncRedisStore

from ...conftest import REDIS_URL

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "remembering_host.py"


def host_model() -> ScriptedChatModel:
    """Replies with what the system prompt says it remembers."""

    def reply(messages: Sequence[BaseMessage]) -> str:
        system = str(messages[0].content)
        known = system.split("remember about ", 1)[1].split(": ", 1)[1]
        return '{"message": "I recall: ' + known.split(". Reply")[0] + '"}'

    return ScriptedChatModel(reply_fn=reply)


def build(model: ScriptedChatModel) -> Any:
    return load_object(f"{EXAMPLE}:build_graph")(model)


async def test_the_runner_gives_graphs_the_store_across_threads(
    key_prefix: str,
) -> None:
    model = host_model()
    graph = build(model)
    async with AsyncRedisStore.from_conn_string(
        REDIS_URL, cluster=False, key_prefix=key_prefix
    ) as store:
        async with DialogueRunner(InMemorySaver(), store=store) as runner:
            first = await runner.run(graph, {"person": "ada", "said": "I grow tea."})
            second = await runner.run(graph, {"person": "ada", "said": "And?"})
        assert first.thread_id != second.thread_id
        assert first.values["reply"] == "I recall: nothing yet."
        assert second.values["remembered"] == ["I grow tea."]
        assert second.values["reply"] == "I recall: I grow tea."
        facts = await store.asearch(("people", "ada", "facts"))
        assert sorted(f.value["text"] for f in facts) == ["And?", "I grow tea."]


async def test_the_default_runner_opens_a_redis_store(env_prefix: str) -> None:
    graph = build(host_model())
    async with DialogueRunner() as runner:
        assert isinstance(runner.store, AsyncRedisStore)
        await runner.run(graph, {"person": "bo", "said": "I like rain."})
        again = await runner.run(graph, {"person": "bo", "said": "Hi."})
    assert again.values["remembered"] == ["I like rain."]
    assert runner.store is None


async def test_memory_survives_threads_and_a_worker_restart(key_prefix: str) -> None:
    model = host_model()
    graph = build(model)
    queue = Queue.from_url(REDIS_URL, key_prefix=key_prefix, retention=600)

    async def one_run(said: str, thread: str) -> dict[str, Any]:
        worker = Worker(
            REDIS_URL,
            key_prefix=key_prefix,
            resolve=lambda _ref: graph,
            lease_ttl=2.0,
            grace=2.0,
        )
        task = asyncio.create_task(worker.run(install_signal_handlers=False))
        try:
            run_id = await queue.enqueue(
                "host", {"person": "ada", "said": said}, thread_id=thread
            )
            record = await queue.wait(run_id, timeout=30)
            assert record.status == "success", record
            assert isinstance(worker.memory, AsyncRedisStore)
            return dict(record.result or {})
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
            await worker.memory.client.aclose()  # type: ignore[attr-defined]

    first = await one_run("My cat is called Tabby.", "visit-1")
    second = await one_run("Do you remember my cat?", "visit-2")
    await queue.aclose()
    assert first["remembered"] == []
    assert second["remembered"] == ["My cat is called Tabby."]
    assert second["reply"] == "I recall: My cat is called Tabby."
    assert "Tabby" in str(model.calls[-1][0].content)


async def test_a_worker_takes_the_store_section_of_langgraph_json(
    key_prefix: str,
) -> None:
    config = {
        "index": {
            "dims": 26,
            "embed": "tests.integration.store.embeddings_for_tests:letters",
            "fields": ["text"],
        },
        "ttl": {"default_ttl": 5},
    }
    worker = Worker(REDIS_URL, key_prefix=key_prefix, memory_config=config)
    memory = worker.memory
    assert isinstance(memory, AsyncRedisStore)
    await memory.aput(("w",), "k", {"text": "cat"})
    found = await memory.asearch(("w",), query="cat")
    assert found[0].score == pytest.approx(1.0)
    assert memory.ttl_config == {"default_ttl": 5}
    await memory.client.aclose()


EMBED = """
def letters(texts):
    return [[float(t.lower().count(c)) for c in "abcdefghijklmnopqrstuvwxyz"]
            for t in texts]
"""


def write_langgraph_json(folder: Path) -> None:
    """A ``langgraph.json`` whose ``"store"`` has an index (an embeddings function in
    a file next to it) and TTLs swept every 0.12 s."""
    (folder / "embed.py").write_text(EMBED)
    store = {
        "index": {"dims": 26, "embed": "./embed.py:letters", "fields": ["text"]},
        "ttl": {"default_ttl": 0.005, "sweep_interval_minutes": 0.002},
    }
    (folder / "langgraph.json").write_text(json.dumps({"graphs": {}, "store": store}))


async def test_a_worker_takes_the_nearest_langgraph_json_store_and_sweeps_it(
    key_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_langgraph_json(tmp_path)
    monkeypatch.chdir(tmp_path)
    worker = Worker(REDIS_URL, key_prefix=key_prefix, crons=False)
    memory = worker.memory
    assert isinstance(memory, AsyncRedisStore)
    assert memory.ttl_config == {"default_ttl": 0.005, "sweep_interval_minutes": 0.002}
    await memory.aput(("w",), "k", {"text": "cat"})
    found = await memory.asearch(("w",), query="cat")
    assert found[0].score == pytest.approx(1.0)
    task = asyncio.create_task(worker.run(install_signal_handlers=False))
    try:
        await asyncio.sleep(1.5)
        async with AsyncRedisStore.from_conn_string(
            REDIS_URL, cluster=False, key_prefix=key_prefix
        ) as ours:
            assert await ours.asweep_ttl() == 0  # the worker's sweeper was first
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    assert await memory.stop_ttl_sweeper()  # stopped with the worker


async def test_the_default_runner_takes_the_nearest_langgraph_json_store(
    env_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_langgraph_json(tmp_path)
    monkeypatch.chdir(tmp_path)
    async with DialogueRunner() as runner:
        store = runner.store
        assert isinstance(store, AsyncRedisStore)
        await store.aput(("r",), "k", {"text": "tea"}, ttl=None)
        found = await store.asearch(("r",), query="tea")
        assert found[0].score == pytest.approx(1.0)
        await store.aput(("r",), "gone", {"text": "x"})  # default_ttl: 0.3 s
        await asyncio.sleep(1.5)
        async with AsyncRedisStore.from_conn_string(
            REDIS_URL, cluster=False, key_prefix=env_prefix
        ) as ours:
            assert await ours.asweep_ttl() == 0  # the runner's store swept it
        assert [i.key for i in await store.asearch(("r",))] == ["k"]
