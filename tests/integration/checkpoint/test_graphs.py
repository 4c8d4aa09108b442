"""End-to-end: real compiled LangGraph graphs persisted by the Redis checkpointer."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal, TypedDict

import pytest
import redis.asyncio as aredis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt

from dialogllm.checkpoint import AsyncRedisSaver, RedisSaver

pytestmark = pytest.mark.integration


@pytest.fixture
async def saver(
    aredis_client: aredis.Redis, key_prefix: str
) -> AsyncIterator[AsyncRedisSaver]:
    yield AsyncRedisSaver(aredis_client, key_prefix=key_prefix)


def cfg(thread_id: str, **extra: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, **extra}}


# --- interrupt / resume ---------------------------------------------------------------


class AskState(TypedDict):
    question: str
    answer: str


def _ask_graph() -> StateGraph[AskState]:
    def ask(state: AskState) -> dict[str, str]:
        answer = interrupt({"question": state["question"]})
        return {"answer": f"person said: {answer}"}

    builder = StateGraph(AskState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder


async def test_interrupt_then_resume_with_command(saver: AsyncRedisSaver) -> None:
    graph = _ask_graph().compile(checkpointer=saver)
    config = cfg("ask-1")
    first = await graph.ainvoke({"question": "name?", "answer": ""}, config)
    assert first["__interrupt__"][0].value == {"question": "name?"}
    state = await graph.aget_state(config)
    assert state.next == ("ask",)
    assert state.tasks[0].interrupts[0].value == {"question": "name?"}

    result = await graph.ainvoke(Command(resume="Ada"), config)
    assert result["answer"] == "person said: Ada"
    assert (await graph.aget_state(config)).next == ()


async def test_interrupt_survives_a_new_saver_instance(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    """A resume from another process sees the interrupt (nothing kept in memory)."""
    first = _ask_graph().compile(
        checkpointer=AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    )
    await first.ainvoke({"question": "q", "answer": ""}, cfg("ask-2"))
    client2 = aredis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        second = _ask_graph().compile(
            checkpointer=AsyncRedisSaver(client2, key_prefix=key_prefix)
        )
        result = await second.ainvoke(Command(resume="later"), cfg("ask-2"))
    finally:
        await client2.aclose()
    assert result["answer"] == "person said: later"


# --- history, paging, forks -----------------------------------------------------------


class CountState(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def _counter_graph(limit: int = 5) -> StateGraph[CountState]:
    def step(state: CountState) -> dict[str, Any]:
        return {"n": state["n"] + 1, "log": [f"step {state['n'] + 1}"]}

    def route(state: CountState) -> Literal["step", "__end__"]:
        return "step" if state["n"] < limit else "__end__"

    builder = StateGraph(CountState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", route)
    return builder


async def test_state_history_pages_with_before(saver: AsyncRedisSaver) -> None:
    graph = _counter_graph(5).compile(checkpointer=saver)
    config = cfg("hist-1")
    await graph.ainvoke({"n": 0, "log": []}, config)
    history = [s async for s in graph.aget_state_history(config)]
    # input checkpoint + one per step
    assert [s.values.get("n") for s in history] == [5, 4, 3, 2, 1, 0, None]
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    assert ids == sorted(ids, reverse=True)

    page1 = [s async for s in graph.aget_state_history(config, limit=3)]
    page2 = [
        s
        async for s in graph.aget_state_history(
            config, before=page1[-1].config, limit=3
        )
    ]
    assert [s.values.get("n") for s in page1 + page2] == [5, 4, 3, 2, 1, 0]


async def test_update_state_forks_and_old_branch_stays_intact(
    saver: AsyncRedisSaver,
) -> None:
    graph = _counter_graph(3).compile(checkpointer=saver)
    config = cfg("fork-1")
    await graph.ainvoke({"n": 0, "log": []}, config)
    history = [s async for s in graph.aget_state_history(config)]
    at_one = next(s for s in history if s.values.get("n") == 1)

    fork_config = await graph.aupdate_state(at_one.config, {"log": ["forked"]})
    forked = await graph.ainvoke(None, fork_config)
    assert forked["n"] == 3
    assert forked["log"] == ["step 1", "forked", "step 2", "step 3"]

    # the original branch still reads as it was (string versions did not collide)
    old = await graph.aget_state(history[0].config)
    assert old.values["log"] == ["step 1", "step 2", "step 3"]
    old_at_one = await graph.aget_state(at_one.config)
    assert old_at_one.values["log"] == ["step 1"]


@pytest.mark.parametrize("durability", ["sync", "async", "exit"])
async def test_every_durability_mode_reaches_the_same_state(
    saver: AsyncRedisSaver, durability: Literal["sync", "async", "exit"]
) -> None:
    graph = _counter_graph(4).compile(checkpointer=saver)
    config = cfg(f"dur-{durability}")
    result = await graph.ainvoke({"n": 0, "log": []}, config, durability=durability)
    assert result["n"] == 4
    state = await graph.aget_state(config)
    assert state.values == {
        "n": 4,
        "log": ["step 1", "step 2", "step 3", "step 4"],
    }
    checkpoints = [s async for s in graph.aget_state_history(config)]
    if durability == "exit":
        assert len(checkpoints) < 6
    else:
        assert len(checkpoints) == 6


# --- subgraphs ------------------------------------------------------------------------


class InnerState(TypedDict):
    text: str


def _nested_graph(saver: AsyncRedisSaver) -> Any:
    def inner_a(state: InnerState) -> dict[str, str]:
        return {"text": state["text"] + " a"}

    def inner_ask(state: InnerState) -> dict[str, str]:
        extra = interrupt("more?")
        return {"text": state["text"] + f" {extra}"}

    inner = StateGraph(InnerState)
    inner.add_node("inner_a", inner_a)
    inner.add_node("inner_ask", inner_ask)
    inner.add_edge(START, "inner_a")
    inner.add_edge("inner_a", "inner_ask")
    inner.add_edge("inner_ask", END)

    outer = StateGraph(InnerState)
    outer.add_node("sub", inner.compile())
    outer.add_node("after", lambda s: {"text": s["text"] + " done"})
    outer.add_edge(START, "sub")
    outer.add_edge("sub", "after")
    outer.add_edge("after", END)
    return outer.compile(checkpointer=saver)


async def test_subgraph_namespace_is_stored_opaquely_and_resumes(
    saver: AsyncRedisSaver,
) -> None:
    graph = _nested_graph(saver)
    config = cfg("sub-1")
    await graph.ainvoke({"text": "start"}, config)
    state = await graph.aget_state(config, subgraphs=True)
    sub_state = state.tasks[0].state
    assert sub_state is not None
    ns = sub_state.config["configurable"]["checkpoint_ns"]
    assert ns.startswith("sub:") and ":" in ns
    assert sub_state.values == {"text": "start a"}

    root_only = [
        t
        async for t in saver.alist(
            {"configurable": {"thread_id": "sub-1", "checkpoint_ns": ""}}
        )
    ]
    assert {t.config["configurable"]["checkpoint_ns"] for t in root_only} == {""}
    everything = [
        t async for t in saver.alist({"configurable": {"thread_id": "sub-1"}})
    ]
    assert {t.config["configurable"]["checkpoint_ns"] for t in everything} == {"", ns}

    result = await graph.ainvoke(Command(resume="b"), config)
    assert result == {"text": "start a b done"}


# --- parallel branches: a failure reruns only the failed branch -----------------------


class FanState(TypedDict):
    results: Annotated[list[str], operator.add]


async def test_failed_branch_reruns_alone_on_resume(saver: AsyncRedisSaver) -> None:
    calls: dict[str, int] = {"good": 0, "flaky": 0}
    fail = {"flaky": True}

    def good(state: FanState) -> dict[str, list[str]]:
        calls["good"] += 1
        return {"results": ["good"]}

    async def flaky(state: FanState) -> dict[str, list[str]]:
        calls["flaky"] += 1
        await asyncio.sleep(0.1)  # let the good branch finish and save its writes
        if fail["flaky"]:
            raise RuntimeError("flaky branch failed")
        return {"results": ["flaky"]}

    builder = StateGraph(FanState)
    builder.add_node("good", good)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "good")
    builder.add_edge(START, "flaky")
    builder.add_edge("good", END)
    builder.add_edge("flaky", END)
    graph = builder.compile(checkpointer=saver)
    config = cfg("fan-1")
    with pytest.raises(RuntimeError, match="flaky branch failed"):
        await graph.ainvoke({"results": []}, config)
    tup = await saver.aget_tuple(config)
    assert tup is not None and tup.pending_writes
    assert {w[1] for w in tup.pending_writes} >= {"results", "__error__"}

    fail["flaky"] = False
    result = await graph.ainvoke(None, config)
    assert sorted(result["results"]) == ["flaky", "good"]
    assert calls == {"good": 1, "flaky": 2}


class SendState(TypedDict):
    items: list[int]
    doubled: Annotated[list[int], operator.add]


async def test_send_fan_out_round_trips(saver: AsyncRedisSaver) -> None:
    def fan(state: SendState) -> list[Send]:
        return [Send("double", {"items": [i], "doubled": []}) for i in state["items"]]

    builder = StateGraph(SendState)
    builder.add_node("double", lambda s: {"doubled": [s["items"][0] * 2]})
    builder.add_conditional_edges(START, fan, ["double"])
    builder.add_edge("double", END)
    graph = builder.compile(checkpointer=saver, interrupt_before=["double"])
    config = cfg("send-1")
    await graph.ainvoke({"items": [1, 2, 3], "doubled": []}, config)
    result = await graph.ainvoke(None, config)
    assert sorted(result["doubled"]) == [2, 4, 6]


# --- messages and delta channels ------------------------------------------------------


class ChatState(TypedDict):
    messages: Annotated[list[Any], add_messages]


async def test_message_types_round_trip(saver: AsyncRedisSaver) -> None:
    builder = StateGraph(ChatState)
    builder.add_node(
        "reply",
        lambda s: {"messages": [AIMessage(content="hi back", id="a1", name="bot")]},
    )
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    graph = builder.compile(checkpointer=saver)
    config = cfg("msg-1")
    await graph.ainvoke({"messages": [HumanMessage(content="hi", id="h1")]}, config)
    state = await graph.aget_state(config)
    human, ai = state.values["messages"]
    assert isinstance(human, HumanMessage) and human.content == "hi"
    assert isinstance(ai, AIMessage) and ai.name == "bot" and ai.id == "a1"


def _append(state: list[str], writes: list[Any]) -> list[str]:
    out = list(state)
    for w in writes:
        out.extend(w)
    return out


class DeltaState(TypedDict):
    transcript: Annotated[list[str], DeltaChannel(_append, snapshot_frequency=10)]
    turn: int


def _delta_graph(turns: int) -> StateGraph[DeltaState]:
    def speak(state: DeltaState) -> dict[str, Any]:
        return {"transcript": [f"turn {state['turn']}"], "turn": state["turn"] + 1}

    def route(state: DeltaState) -> Literal["speak", "__end__"]:
        return "speak" if state["turn"] < turns else "__end__"

    builder = StateGraph(DeltaState)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", route)
    return builder


async def test_delta_channel_transcript_rebuilds_after_restart(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    saver = AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    graph = _delta_graph(25).compile(checkpointer=saver)
    config = {**cfg("delta-1"), "recursion_limit": 100}
    await graph.ainvoke({"transcript": [], "turn": 0}, config)
    expected = [f"turn {i}" for i in range(25)]

    fresh = _delta_graph(25).compile(
        checkpointer=AsyncRedisSaver(aredis_client, key_prefix=key_prefix)
    )
    state = await fresh.aget_state(config)
    assert state.values["transcript"] == expected
    # an older checkpoint rebuilds its own, shorter transcript
    history = [s async for s in fresh.aget_state_history(config)]
    mid = next(s for s in history if s.values.get("turn") == 13)
    assert mid.values["transcript"] == expected[:13]


async def test_a_delta_channel_with_a_compressed_snapshot_reads_back(
    saver: AsyncRedisSaver,
) -> None:
    # turns of real dialogues make a snapshot over 1 KiB, which is stored compressed
    graph = _delta_graph(25).compile(checkpointer=saver)
    config = {**cfg("delta-big"), "recursion_limit": 100}
    await graph.ainvoke({"transcript": ["x" * 4000], "turn": 0}, config)

    state = await graph.aget_state(config)
    history = [s async for s in graph.aget_state_history(config)]

    assert state.values["transcript"][1:] == [f"turn {i}" for i in range(25)]
    mid = next(s for s in history if s.values.get("turn") == 13)
    assert mid.values["transcript"][1:] == [f"turn {i}" for i in range(13)]


async def test_delta_history_is_one_round_trip_and_matches_base_walk(
    saver: AsyncRedisSaver,
) -> None:
    graph = _delta_graph(30).compile(checkpointer=saver)
    config = {**cfg("delta-2"), "recursion_limit": 100}
    await graph.ainvoke({"transcript": [], "turn": 0}, config)
    # a checkpoint eight steps past the last snapshot: a long walk for the base class
    history = [s async for s in graph.aget_state_history(config)]
    target = next(s for s in history if s.values.get("turn") == 28).config

    sent: list[object] = []
    original = saver.sender.send

    async def counting(request: Any) -> Any:
        sent.append(request)
        return await original(request)

    saver.sender.send = counting  # type: ignore[method-assign]
    ours = await saver.aget_delta_channel_history(
        config=target, channels=["transcript"]
    )
    assert len(sent) == 1
    # the base class walks get_tuple once per ancestor: same answer, many trips
    base = await super(AsyncRedisSaver, saver).aget_delta_channel_history(
        config=target, channels=["transcript"]
    )
    assert len(sent) > 6
    assert len(ours["transcript"]["writes"]) >= 5
    assert ours["transcript"]["writes"] == base["transcript"]["writes"]
    assert ours["transcript"].get("seed") == base["transcript"].get("seed")


async def test_prune_keep_latest_keeps_what_delta_channels_need(
    saver: AsyncRedisSaver,
) -> None:
    graph = _delta_graph(25).compile(checkpointer=saver)
    config = {**cfg("delta-3"), "recursion_limit": 100}
    await graph.ainvoke({"transcript": [], "turn": 0}, config)
    before = len([s async for s in saver.alist(cfg("delta-3"))])
    await saver.aprune(["delta-3"], strategy="keep_latest")
    after = len([s async for s in saver.alist(cfg("delta-3"))])
    assert 1 < after < before  # kept the chain back to the last snapshot only
    state = await graph.aget_state(config)
    assert state.values["transcript"] == [f"turn {i}" for i in range(25)]


async def test_copy_thread_then_continue_both_independently(
    saver: AsyncRedisSaver,
) -> None:
    graph = _delta_graph(12).compile(checkpointer=saver)
    await graph.ainvoke({"transcript": [], "turn": 0}, cfg("src-1"))
    await saver.acopy_thread("src-1", "dst-1")
    copied = await graph.aget_state(cfg("dst-1"))
    assert copied.values["transcript"] == [f"turn {i}" for i in range(12)]
    await graph.aupdate_state(cfg("dst-1"), {"transcript": ["extra"]})
    assert (await graph.aget_state(cfg("src-1"))).values["transcript"][-1] == "turn 11"
    assert (await graph.aget_state(cfg("dst-1"))).values["transcript"][-1] == "extra"


async def test_delete_for_runs_rolls_back_the_latest_run(
    saver: AsyncRedisSaver,
) -> None:
    graph = _counter_graph(2).compile(checkpointer=saver)
    config = cfg("runs-1")
    await graph.ainvoke({"n": 0, "log": []}, cfg("runs-1", run_id=_uuid()))
    second_run = _uuid()
    await graph.ainvoke({"n": 0, "log": ["again"]}, cfg("runs-1", run_id=second_run))
    assert (await graph.aget_state(config)).values["log"][-1] == "step 2"
    await saver.adelete_for_runs([second_run])
    state = await graph.aget_state(config)
    assert state.values["log"] == ["step 1", "step 2"]
    runs = {s.metadata.get("run_id") async for s in saver.alist(config)}
    assert second_run not in runs and len(runs) == 1


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


# --- the sync twin drives the same behaviour ------------------------------------------


def test_sync_saver_interrupt_resume_history_and_fork(key_prefix: str) -> None:
    with RedisSaver.from_conn_string(
        "redis://127.0.0.1:6379/0", key_prefix=key_prefix
    ) as saver:
        ask = _ask_graph().compile(checkpointer=saver)
        ask.invoke({"question": "q", "answer": ""}, cfg("s-1"))
        assert ask.invoke(Command(resume="x"), cfg("s-1"))["answer"] == "person said: x"

        graph = _counter_graph(3).compile(checkpointer=saver)
        graph.invoke({"n": 0, "log": []}, cfg("s-2"))
        history = list(graph.get_state_history(cfg("s-2")))
        assert [s.values.get("n") for s in history] == [3, 2, 1, 0, None]
        page = list(graph.get_state_history(cfg("s-2"), before=history[1].config))
        assert [s.values.get("n") for s in page] == [1, 0, None]
        fork = graph.update_state(history[2].config, {"log": ["f"]})
        assert graph.invoke(None, fork)["log"] == ["step 1", "f", "step 2", "step 3"]

        delta = _delta_graph(15).compile(checkpointer=saver)
        delta.invoke({"transcript": [], "turn": 0}, cfg("s-3"))
        saver.prune(["s-3"])
        assert delta.get_state(cfg("s-3")).values["transcript"][-1] == "turn 14"
        saver.copy_thread("s-3", "s-4")
        assert len(delta.get_state(cfg("s-4")).values["transcript"]) == 15
        run = _uuid()
        graph.invoke({"n": 0, "log": []}, cfg("s-5", run_id=run))
        saver.delete_for_runs([run])
        assert list(saver.list(cfg("s-5"))) == []
        saver.delete_thread("s-4")
        assert saver.get_tuple(cfg("s-4")) is None
