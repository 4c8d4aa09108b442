"""``RemoteGraph``: a LangGraph agent in this process uses served graphs as a node
and as a subgraph, with its own checkpointer (``InMemorySaver``), including an
interrupt in the served graph that surfaces in the parent and is resumed from it.

LangGraph's ``RemoteGraph`` itself cannot forward a parent's ``Command(resume=...)``
into a remote subgraph (it sends the parent's state as new input, so the remote
interrupt fires again: langchain-ai/langgraph#4879, the same on ``langgraph dev``).
So a parent resumes a remote interrupt through a node of its own that relays it
(:func:`test_a_served_graph_as_a_node_is_resumed_from_the_parent`), or resumes the
remote thread and steps past the subgraph node
(:func:`test_a_served_graph_as_a_subgraph_runs_streams_and_surfaces_its_interrupt`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command, interrupt
from langgraph_sdk import get_client, get_sync_client
from typing_extensions import TypedDict

from tests.integration.server.conftest import Server, start_server
from tests.integration.server.fleet import PROOF_APP

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def proof_server(module_prefix: str) -> Iterator[Server]:
    """``dialogllm serve`` (with its in-process worker) on the proof graphs."""
    started = start_server(module_prefix, config=PROOF_APP)
    yield started
    started.stop()


class Desk(TypedDict, total=False):
    topic: str
    review_thread: str
    verdict: str
    note: str


def _thread(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def _desk(url: str) -> Any:
    """A parent agent whose ``draft`` node starts the served ``review`` graph (it
    stops at its interrupt) and whose ``approve`` node relays that interrupt to the
    parent's own caller and resumes the served graph with the answer."""
    remote = RemoteGraph("review", url=url)

    async def draft(state: Desk) -> dict[str, Any]:
        thread = (await get_client(url=url).threads.create())["thread_id"]
        await remote.ainvoke({"topic": state["topic"]}, _thread(thread))
        return {"review_thread": thread}

    async def approve(state: Desk) -> dict[str, Any]:
        config = _thread(state["review_thread"])
        for pending in (await remote.aget_state(config)).interrupts:
            answer = interrupt(pending.value)  # the parent stops here
            await remote.ainvoke(Command(resume={pending.id: answer}), config)
        return {"verdict": (await remote.aget_state(config)).values["verdict"]}

    def file(state: Desk) -> dict[str, Any]:
        return {"note": f"filed: {state.get('verdict')}"}

    graph = StateGraph(Desk)
    graph.add_node("draft", draft)
    graph.add_node("approve", approve)
    graph.add_node("file", file)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "approve")
    graph.add_edge("approve", "file")
    graph.add_edge("file", END)
    return graph.compile(checkpointer=InMemorySaver())


async def test_a_served_graph_as_a_node_is_resumed_from_the_parent(
    proof_server: Server,
) -> None:
    parent = _desk(proof_server.url)
    config = _thread("desk-1")

    stopped = await parent.ainvoke({"topic": "tea"}, config)
    [surfaced] = stopped["__interrupt__"]
    assert surfaced.value == {"approve?": "a draft on tea"}
    waiting = await parent.aget_state(config)
    assert waiting.next == ("approve",)
    remote_thread = stopped["review_thread"]
    client = get_client(url=proof_server.url)
    assert (await client.threads.get(remote_thread))["status"] == "interrupted"

    final = await parent.ainvoke(Command(resume="approved"), config)
    assert final["verdict"] == "approved"
    assert final["note"] == "filed: approved"
    remote_values = (await client.threads.get_state(remote_thread))["values"]
    assert remote_values == {
        "topic": "tea",
        "draft": "a draft on tea",
        "verdict": "approved",
    }
    assert (await client.threads.get(remote_thread))["status"] == "idle"


def test_a_served_graph_as_a_subgraph_runs_streams_and_surfaces_its_interrupt(
    proof_server: Server,
) -> None:
    def ask(state: Desk) -> dict[str, Any]:
        return {"topic": state["topic"].strip().lower()}

    def file(state: Desk) -> dict[str, Any]:
        return {"note": f"filed: {state.get('verdict')}"}

    graph = StateGraph(Desk)
    graph.add_node("ask", ask)
    graph.add_node("review", RemoteGraph("review", url=proof_server.url))
    graph.add_node("file", file)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "review")
    graph.add_edge("review", "file")
    graph.add_edge("file", END)
    parent = graph.compile(checkpointer=InMemorySaver())
    tid = str(uuid.uuid4())
    config = _thread(tid)

    chunks = list(
        parent.stream({"topic": " Tea "}, config, stream_mode="updates", subgraphs=True)
    )
    inner = [(ns[0].split(":")[0], list(u)) for ns, u in chunks if ns]
    # the served graph's own steps, under the subgraph node's namespace
    assert inner == [("review", ["draft"]), ("review", ["__interrupt__"])]

    state = parent.get_state(config)
    assert state.next == ("review",)
    [surfaced] = state.interrupts
    assert surfaced.value == {"approve?": "a draft on tea"}  # the parent's topic
    # the served thread is the parent's thread id, created on first use
    client = get_sync_client(url=proof_server.url)
    served = client.threads.get_state(tid)
    assert served["interrupts"] == [{"id": surfaced.id, "value": surfaced.value}]

    # the parent resumes the served thread, then steps past its subgraph node
    remote = RemoteGraph("review", url=proof_server.url)
    done = remote.invoke(Command(resume="yes"), config)
    assert done == {"topic": "tea", "draft": "a draft on tea", "verdict": "yes"}
    parent.update_state(config, {"verdict": done["verdict"]}, as_node="review")
    final = parent.invoke(None, config)
    assert final == {"topic": "tea", "verdict": "yes", "note": "filed: yes"}
