"""LangGraph's API through the real ``langgraph-sdk``: assistants, threads, runs,
streams, interrupts, forks, double-texting and errors."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.queue import Queue
from dialogllm.redis.clients import async_client
from tests.conftest import REDIS_URL
from tests.integration.server.app.graphs import count
from tests.integration.server.conftest import Server

pytestmark = pytest.mark.integration


async def test_every_graph_has_a_system_assistant_with_langgraphs_id(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    found = await client.assistants.search()
    by_graph = {a["graph_id"]: a for a in found}

    assert set(by_graph) == {"ask", "chat", "count"}
    # the id LangGraph's server gives the same graph (uuid5 in its namespace)
    assert by_graph["ask"]["assistant_id"] == "a457ba2f-c0dc-56e6-817d-ddf904d1e526"
    assert by_graph["ask"]["metadata"] == {"created_by": "system"}
    got = await client.assistants.get(by_graph["count"]["assistant_id"])
    assert got["graph_id"] == "count"
    assert await client.assistants.count(graph_id="ask") == 1
    with pytest.raises(UnprocessableEntityError, match="must be a UUID"):
        await client.assistants.get("ask")


async def test_assistants_are_created_versioned_and_deleted(server: Server) -> None:
    client = get_client(url=server.url)
    made = await client.assistants.create(
        "count", config={"configurable": {"x": 1}}, metadata={"team": "a"}, name="c1"
    )
    updated = await client.assistants.update(made["assistant_id"], metadata={"v": 2})
    versions = await client.assistants.get_versions(made["assistant_id"])

    assert updated["version"] == 2
    assert updated["metadata"] == {"team": "a", "v": 2}
    assert [v["version"] for v in versions] == [2, 1]
    assert [
        a["name"] for a in await client.assistants.search(metadata={"team": "a"})
    ] == ["c1"]
    with pytest.raises(ConflictError):
        await client.assistants.create(
            "count", assistant_id=made["assistant_id"], if_exists="raise"
        )
    await client.assistants.delete(made["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.assistants.get(made["assistant_id"])


async def test_schemas_and_graph_describe_the_graph(server: Server) -> None:
    client = get_client(url=server.url)
    [ask] = await client.assistants.search(graph_id="ask")
    schemas = await client.assistants.get_schemas(ask["assistant_id"])
    drawn = await client.assistants.get_graph(ask["assistant_id"])

    assert set(schemas["input_schema"]["properties"]) == {"topic", "answer", "log"}
    assert {n["id"] for n in drawn["nodes"]} >= {"first", "ask", "__start__"}


async def test_a_run_streams_values_updates_and_custom_and_stops_at_the_interrupt(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create(metadata={"user": "ada"})
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"],
            "ask",
            input={"topic": "tea"},
            stream_mode=["values", "updates", "custom"],
        )
    ]
    events = [p.event for p in parts]

    assert events[0] == "metadata"
    assert parts[0].data["attempt"] == 1
    assert ("custom", {"note": "thinking about tea"}) in [
        (p.event, p.data) for p in parts
    ]
    assert (parts[1].event, parts[1].data) == ("values", {"topic": "tea", "log": []})
    interrupt = [p.data for p in parts if p.event == "updates"][-1]["__interrupt__"][0]
    assert interrupt["value"] == {"question": "why tea?"}

    state = await client.threads.get_state(thread["thread_id"])
    got = await client.threads.get(thread["thread_id"])
    assert state["next"] == ["ask"]
    assert state["tasks"][0]["interrupts"][0]["id"] == interrupt["id"]
    assert got["status"] == "interrupted"
    assert got["metadata"]["graph_id"] == "ask"
    assert got["values"] == {"topic": "tea", "log": ["first:tea"]}
    [run] = await client.runs.list(thread["thread_id"])
    assert run["status"] == "success"  # the run did its work; the thread waits

    final = await client.runs.wait(
        thread["thread_id"], "ask", command={"resume": "it is warm"}
    )
    assert final == {"topic": "tea", "log": ["first:tea"], "answer": "it is warm"}
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    history = await client.threads.get_history(thread["thread_id"])
    assert len(history) == 4
    assert history[0]["values"]["answer"] == "it is warm"


async def test_a_dropped_client_reconnects_with_last_event_id_and_misses_nothing(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"],
        "count",
        input={"steps": 4},
        stream_mode="updates",
    )
    await client.runs.join(thread["thread_id"], run["run_id"])
    whole = [
        p
        async for p in client.runs.join_stream(
            thread["thread_id"], run["run_id"], stream_mode="updates"
        )
    ]
    updates = [p for p in whole if p.event == "updates"]
    assert [u.data["count"]["n"] for u in updates] == [1, 2, 3, 4]

    # a client that saw up to the second update reconnects: the rest, once each
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get(
            f"/threads/{thread['thread_id']}/runs/{run['run_id']}/stream",
            params={"stream_mode": "updates"},
            headers={"Last-Event-ID": updates[1].id},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    ids = [line[4:] for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids == [updates[2].id, updates[3].id]
    assert "event: metadata" not in response.text


async def test_threads_are_searched_counted_copied_updated_and_deleted(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    made = [
        await client.threads.create(metadata={"team": "search", "i": i})
        for i in range(3)
    ]
    await client.runs.wait(made[0]["thread_id"], "count", input={"steps": 1})

    found = await client.threads.search(metadata={"team": "search"}, limit=2)
    assert [t["metadata"]["i"] for t in found] == [2, 1]  # newest first
    assert await client.threads.count(metadata={"team": "search"}) == 3
    idle = await client.threads.search(
        metadata={"team": "search", "i": 0}, status="idle"
    )
    assert [t["values"] for t in idle] == [{"n": 1, "steps": 1, "log": ["step 1"]}]

    copy = await client.threads.copy(made[0]["thread_id"])
    assert (await client.threads.get_state(copy["thread_id"]))["values"]["n"] == 1
    await client.threads.update(made[1]["thread_id"], metadata={"i": 10})
    assert (await client.threads.get(made[1]["thread_id"]))["metadata"]["i"] == 10

    await client.threads.delete(made[2]["thread_id"])
    with pytest.raises(NotFoundError, match="not found"):
        await client.threads.get(made[2]["thread_id"])
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=made[0]["thread_id"])
    same = await client.threads.create(
        thread_id=made[0]["thread_id"], if_exists="do_nothing"
    )
    assert same["thread_id"] == made[0]["thread_id"]


async def test_a_run_from_a_past_checkpoint_forks_the_thread(server: Server) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "count", input={"steps": 1})
    first = await client.threads.get_state(tid)
    await client.runs.wait(tid, "count", input={"steps": 3})
    assert (await client.threads.get_state(tid))["values"]["n"] == 3

    forked = await client.runs.wait(
        tid,
        "count",
        input={"steps": 2},
        checkpoint_id=first["checkpoint"]["checkpoint_id"],
    )
    assert forked["n"] == 2  # one step on top of n=1, not on top of n=3


async def test_double_texting_reject_refuses_a_busy_thread(
    server: Server, module_prefix: str
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    slow = await client.runs.create(
        thread["thread_id"], "count", input={"steps": 1, "sleep": 2.0}
    )
    with pytest.raises(ConflictError, match="already running"):
        await client.runs.create(
            thread["thread_id"], "count", input={}, multitask_strategy="reject"
        )
    assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    # the refused run's id, noted beside its enqueue, was put back: the latest run
    # the thread names is still the one it runs
    raw = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    key = f"{module_prefix}:srv:th:{{{thread['thread_id']}}}"
    assert raw.hget(key, "last_run") == slow["run_id"]
    # nor does a refused run of another assistant take the thread over
    with pytest.raises(ConflictError, match="already running"):
        await client.runs.create(
            thread["thread_id"], "chat", input={}, multitask_strategy="reject"
        )
    assert raw.hget(key, "last_run") == slow["run_id"]
    owned = await client.threads.get(thread["thread_id"])
    assert owned["metadata"]["graph_id"] == "count"
    raw.close()
    queued = await client.runs.create(
        thread["thread_id"], "count", input={"steps": 1}, multitask_strategy="enqueue"
    )
    await client.runs.join(thread["thread_id"], queued["run_id"])
    assert (await client.runs.get(thread["thread_id"], slow["run_id"]))[
        "status"
    ] == "success"
    assert (await client.threads.get_state(thread["thread_id"]))["values"]["n"] == 2


async def test_a_refused_run_takes_back_its_note_on_the_thread(
    server: Server, module_prefix: str
) -> None:
    client = get_client(url=server.url)
    known = (await client.threads.create())["thread_id"]
    new = str(uuid.uuid4())
    queue = Queue(async_client(REDIS_URL, decode=True), key_prefix=module_prefix)
    raw = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    graph = f"{Path(__file__).parent / 'app' / 'graphs.py'}:count"
    held: list[str] = []
    try:  # both busy with a run the API never noted (e.g. one a script enqueued)
        for tid in (known, new):
            held.append(await queue.enqueue(graph, {}, thread_id=tid, delay=60))
        with pytest.raises(ConflictError, match="already running"):
            await client.runs.create(
                known, "count", input={}, multitask_strategy="reject"
            )
        # a thread that had no run names none again
        assert raw.hget(f"{module_prefix}:srv:th:{{{known}}}", "last_run") is None
        with pytest.raises(ConflictError, match="already running"):
            await client.runs.create(
                new,
                "count",
                input={},
                multitask_strategy="reject",
                if_not_exists="create",
            )
        # the thread the refused run would have made is not left behind
        with pytest.raises(NotFoundError):
            await client.threads.get(new)
        assert new not in {
            t["thread_id"] for t in await client.threads.search(limit=1000)
        }
    finally:
        for run_id in held:
            await queue.cancel(run_id)
        raw.close()
        await queue.client.aclose()


async def test_stateless_runs_leave_no_thread_behind(server: Server) -> None:
    client = get_client(url=server.url)
    before = await client.threads.count()
    result = await client.runs.wait(None, "count", input={"steps": 2})
    streamed = [p async for p in client.runs.stream(None, "count", input={"steps": 1})]
    kept = await client.runs.wait(
        None, "count", input={"steps": 1}, on_completion="keep"
    )

    assert result == {"n": 2, "log": ["step 1", "step 2"], "steps": 2}
    assert streamed[-1].data == {"steps": 1, "n": 1, "log": ["step 1"]}
    assert kept["n"] == 1
    assert await client.threads.count() == before + 1  # only the one kept


def test_the_sync_client_sees_the_same_api(server: Server) -> None:
    client = get_sync_client(url=server.url)
    thread = client.threads.create(metadata={"sync": True})
    values = client.runs.wait(thread["thread_id"], "count", input={"steps": 1})
    assert values["n"] == 1
    assert client.threads.get(thread["thread_id"])["status"] == "idle"


async def test_bad_requests_get_langgraphs_status_and_a_detail(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        thread = (await http.post("/threads", json={})).json()
        bad_mode = await http.post(
            f"/threads/{thread['thread_id']}/runs",
            json={"assistant_id": "count", "stream_mode": 5},
        )
        no_assistant = await http.post("/runs/wait", json={"input": {}})
        unknown = await http.post("/runs/wait", json={"assistant_id": "nope"})
        missing = await http.get("/threads/no-such-thread/state")
        both = await http.post(
            "/runs/wait",
            json={"assistant_id": "count", "input": {}, "command": {"resume": 1}},
        )

    assert bad_mode.status_code == 422
    assert "stream_mode" in bad_mode.json()["detail"]
    assert no_assistant.status_code == 422
    assert "assistant_id" in no_assistant.json()["detail"]
    assert unknown.status_code == 404
    assert missing.status_code == 404
    assert both.status_code == 422
    for response in (bad_mode, no_assistant, unknown, missing, both):
        assert "Traceback" not in response.text


async def test_meta_endpoints_answer(server: Server) -> None:
    client = get_client(url=server.url)
    streamed = [p async for p in client.runs.stream(None, "count", input={"steps": 1})]
    assert streamed[0].event == "metadata"
    async with httpx.AsyncClient(base_url=server.url) as http:
        ok = await http.get("/ok")
        info = await http.get("/info")
        metrics = await http.get("/metrics")
        openapi = await http.get("/openapi.json")
        docs = await http.get("/docs")

    assert ok.json() == {"ok": True}
    assert info.json()["flags"]["assistants"] is True
    assert 'dialogllm_http_requests_total{method="GET",route="/ok",status="200"}' in (
        metrics.text
    )
    assert "dialogllm_http_open_streams 0.0" in metrics.text  # closed when done
    assert 'dialogllm_runs{queue="default",status="success"}' in metrics.text
    assert "thread_id=" not in metrics.text  # ids never become label values
    assert "/threads/{thread_id}/runs/stream" in openapi.json()["paths"]
    assert docs.status_code == 200


async def test_llm_tokens_stream_as_messages_tuples_and_as_messages(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"],
            "chat",
            input={"prompt": "Write one sentence about tea."},
            stream_mode=["messages-tuple", "messages", "values"],
        )
    ]
    tokens = [p.data for p in parts if p.event == "messages"]
    partial = [p.data[0]["content"] for p in parts if p.event == "messages/partial"]
    complete = [p.data[0] for p in parts if p.event == "messages/complete"]
    final = [p.data for p in parts if p.event == "values"][-1]

    assert len(tokens) >= 2, [p.event for p in parts]  # streamed, not one reply
    assert tokens[0][1]["langgraph_node"] == "reply"
    text = "".join(t[0]["content"] for t in tokens)
    assert text == final["reply"] and text.strip()
    assert [p.event for p in parts].index("messages/metadata") < [
        p.event for p in parts
    ].index("messages/partial")
    assert all(b.startswith(a) for a, b in itertools.pairwise(partial))
    assert complete and complete[-1]["content"] == text


async def test_events_mode_streams_langchains_run_events_beside_other_modes(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"],
            "chat",
            input={"prompt": "Write one sentence about tea."},
            stream_mode=["events", "values"],
        )
    ]
    events = [p.data for p in parts if p.event == "events"]
    names = [e["event"] for e in events]
    final = [p.data for p in parts if p.event == "values"][-1]
    run_id = parts[0].data["run_id"]

    assert names[0] == "on_chain_start" and events[0]["run_id"] == run_id
    assert names[-1] == "on_chain_end" and events[-1]["run_id"] == run_id
    # the root run's stream chunks became the values events, not events events
    assert not any(
        e["event"] == "on_chain_stream" and e["run_id"] == run_id for e in events
    )
    streamed = [e for e in events if e["event"] == "on_chat_model_stream"]
    tokens = [e["data"]["chunk"]["content"] for e in streamed]
    assert len(tokens) >= 2 and "".join(tokens) == final["reply"]
    starts = [e for e in events if e["event"] == "on_chain_start"]
    node = next(e for e in starts if e["name"] == "reply")
    assert node["metadata"]["langgraph_node"] == "reply"
    assert node["metadata"]["thread_id"] == thread["thread_id"]


async def test_a_thread_stream_follows_every_run_of_the_thread(server: Server) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    seen: list[tuple[str, Any]] = []

    async def follow() -> None:
        stream = await client.threads.join_stream(tid, stream_mode="updates")
        async for part in stream:
            seen.append((part.event, part.data))
            if sum(event == "updates" for event, _ in seen) == 3:
                return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.5)  # the stream is open before the runs start
    await client.runs.wait(tid, "count", input={"steps": 2})
    await client.runs.wait(tid, "count", input={"steps": 3})
    await asyncio.wait_for(follower, 30)

    updates = [data["count"]["n"] for event, data in seen if event == "updates"]
    assert updates == [1, 2, 3]  # both runs, in order, nothing twice


async def test_a_run_is_cancelled_rolled_back_and_deleted(server: Server) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    await client.runs.wait(tid, "count", input={"steps": 1})
    slow = await client.runs.create(tid, "count", input={"steps": 5, "sleep": 0.5})
    await asyncio.sleep(1.0)
    await client.runs.cancel(tid, slow["run_id"], wait=True, action="rollback")

    cancelled = await client.runs.get(tid, slow["run_id"])
    assert cancelled["status"] == "interrupted"
    # rolled back: the thread is as the first run left it
    assert (await client.threads.get_state(tid))["values"]["n"] == 1
    with pytest.raises(ConflictError):
        busy = await client.runs.create(tid, "count", input={"sleep": 2.0})
        await client.runs.delete(tid, busy["run_id"])
    await client.runs.delete(tid, slow["run_id"])
    with pytest.raises(NotFoundError):
        await client.runs.get(tid, slow["run_id"])


class _StoppedBeforeCheckpoint(Exception):
    """The worker stopped after a task saved its writes, before the checkpoint."""


class _SaverStoppedBeforeCheckpoint(AsyncRedisSaver):
    """Saves tasks' writes but no checkpoint, as a worker stopped between them."""

    async def aput(self, *args: Any, **kwargs: Any) -> Any:
        raise _StoppedBeforeCheckpoint


async def test_a_thread_stopped_after_a_node_saved_its_writes_can_go_on(
    server: Server, module_prefix: str
) -> None:
    """A run stopped between a step's writes and its checkpoint leaves a step whose
    every task is done: ``next`` is empty, yet the graph goes on from there. The
    thread reads as ``interrupted`` (not ``idle``), and a run with no input goes on.
    """
    client = get_client(url=server.url)
    tid = (await client.threads.create())["thread_id"]
    await client.runs.wait(tid, "count", input={"steps": 3}, interrupt_before=["count"])
    assert (await client.threads.get_state(tid))["next"] == ["count"]
    saver = _SaverStoppedBeforeCheckpoint(
        async_client(REDIS_URL, decode=False), key_prefix=module_prefix
    )
    try:  # the step runs and saves its writes; its checkpoint never comes
        with pytest.raises(_StoppedBeforeCheckpoint):
            await count.copy(update={"checkpointer": saver}).ainvoke(
                None, {"configurable": {"thread_id": tid}}
            )
    finally:
        await saver.client.aclose()
    state = await client.threads.get_state(tid)
    assert state["next"] == [] and state["values"]["n"] == 1
    assert (await client.threads.get(tid))["status"] == "interrupted"

    await client.runs.wait(tid, "count", input=None)
    done = await client.threads.get(tid)
    assert done["status"] == "idle"
    assert done["values"]["log"] == ["step 1", "step 2", "step 3"]


async def test_double_texting_interrupt_and_rollback_take_the_thread_over(
    server: Server,
) -> None:
    client = get_client(url=server.url)
    for strategy, expected_n in (("interrupt", None), ("rollback", 1)):
        thread = await client.threads.create()
        tid = thread["thread_id"]
        first = await client.runs.create(tid, "count", input={"steps": 6, "sleep": 0.4})
        await asyncio.sleep(1.0)  # it took a step or two
        second = await client.runs.create(
            tid, "count", input={"steps": 1}, multitask_strategy=strategy
        )
        await client.runs.join(tid, second["run_id"])
        old = await client.runs.get(tid, first["run_id"])
        state = await client.threads.get_state(tid)

        assert old["status"] == "interrupted", strategy
        steps_kept = len(state["values"]["log"])
        if expected_n is None:  # interrupt: the first run's steps are kept
            assert steps_kept >= 2 and state["values"]["n"] == steps_kept
        else:  # rollback: the first run's steps are gone
            assert (steps_kept, state["values"]["n"]) == (1, expected_n)


async def test_after_seconds_holds_a_run_back(server: Server) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "count", input={"steps": 1}, after_seconds=2
    )
    await asyncio.sleep(0.5)
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))[
        "status"
    ] == "pending"
    await client.runs.join(thread["thread_id"], run["run_id"])
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))[
        "status"
    ] == "success"


async def test_a_thread_ttl_covers_its_record_and_its_checkpoints(
    server: Server, module_prefix: str
) -> None:
    import redis.asyncio as aredis

    from tests.conftest import REDIS_URL

    client = get_client(url=server.url)
    thread = await client.threads.create(ttl=30)  # minutes
    tid = thread["thread_id"]
    await client.runs.wait(tid, "count", input={"steps": 1})
    redis = aredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        # the thread's keys: its record and checkpoints (the queue's keys that
        # name it keep the queue's retention, the lease's fence counter its own)
        ttls = [
            await redis.pttl(key)
            async for key in redis.scan_iter(match=f"{module_prefix}:*{tid}*")
            if ":q:" not in key and not key.endswith(":fence")
        ]
    finally:
        await redis.aclose()
    assert len(ttls) >= 3  # the record and the checkpointer's keys
    assert all(25 * 60_000 < ttl <= 30 * 60_000 for ttl in ttls), ttls
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post("/threads", json={"ttl": -5})
    assert refused.status_code == 422
