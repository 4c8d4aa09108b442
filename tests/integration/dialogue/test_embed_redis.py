"""Embedded dialogues on the real Redis checkpointer: the dialogue's steps live in the
parent's thread (their own namespace), and a person's answers reach it through the
parent, as a subgraph node and as an agent's tool."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import create_react_agent
from langgraph.types import Command

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.core import (
    as_subgraph_node,
    as_tool,
    summarize_dialogue,
)
from dialogllm.llm.testing import ScriptedChatModel
from tests.unit.core.conftest import said
from tests.unit.core.test_embed import Parent, _interview

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


async def test_subgraph_dialogue_on_redis_is_answered_through_the_parent(
    redis_url: str, env_prefix: str
) -> None:
    model = ScriptedChatModel(replies=[said("Why tea?"), said("Milk?")])
    builder = StateGraph(Parent)
    builder.add_node(
        "interview",
        as_subgraph_node(
            _interview(model),
            input=lambda s: {"topic": s["subject"]},
            output=lambda v: {"notes": summarize_dialogue(v)},
        ),
    )
    builder.add_edge(START, "interview")
    builder.add_edge("interview", END)
    async with AsyncRedisSaver.from_conn_string(
        redis_url, key_prefix=env_prefix
    ) as saver:
        parent = builder.compile(checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "parent"}}
        await parent.ainvoke({"subject": "tea"}, config)
        assert (await parent.aget_state(config)).interrupts[0].value[
            "prompt"
        ] == "Why tea?"
        await parent.ainvoke(Command(resume="It is calm."), config)
        out = await parent.ainvoke(Command(resume="No milk."), config)
        namespaces = {
            t.config["configurable"]["checkpoint_ns"]
            async for t in saver.alist({"configurable": {"thread_id": "parent"}})
        }
    assert "Guest: No milk." in out["notes"]
    assert len(model.calls) == 2
    assert any(ns.startswith("interview:") for ns in namespaces)


async def test_tool_dialogue_on_redis_is_answered_through_the_agent(
    redis_url: str, env_prefix: str
) -> None:
    dialogue_model = ScriptedChatModel(replies=[said("Why tea?"), said("Milk?")])
    tool = as_tool(_interview(dialogue_model), name="ask_person")
    call = {"name": "ask_person", "args": {"topic": "tea"}, "id": "call-1"}
    agent_model = ScriptedChatModel(
        replies=[AIMessage(content="", tool_calls=[call]), AIMessage(content="Done.")]
    )
    async with AsyncRedisSaver.from_conn_string(
        redis_url, key_prefix=env_prefix
    ) as saver:
        agent = create_react_agent(agent_model, [tool], checkpointer=saver)
        config: Any = {"configurable": {"thread_id": "agent"}}
        await agent.ainvoke({"messages": [HumanMessage(content="interview")]}, config)
        await agent.ainvoke(Command(resume="It is calm."), config)
        out = await agent.ainvoke(Command(resume="No milk."), config)
    reply = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert "Guest: It is calm." in str(reply.content)
    assert out["messages"][-1].content == "Done."
