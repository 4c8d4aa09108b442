"""Embedding: a dialogue as a subgraph node and as an agent's tool, interrupted for a
person and resumed through the parent, on the parent's checkpointer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import create_react_agent
from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict

from dialogllm.core import (
    MaxTurns,
    as_subgraph_node,
    as_tool,
    human_node,
    persona_node,
    stop_or,
    summarize_dialogue,
)
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import DialogueState, Persona, TranscriptEntry
from tests.unit.core.conftest import said

# create_react_agent is LangGraph's agent constructor here (langchain's create_agent
# is not installed); its deprecation notice is not what these tests are about.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

HOST = Persona(name="Host", role="asks short questions")


class AskInput(BaseModel):
    """Input of the embedded interview."""

    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=2, description="What to ask about.")


def _interview(model: ScriptedChatModel) -> Any:
    builder = StateGraph(DialogueState, input_schema=AskInput)
    builder.add_node("host", persona_node(HOST, model=model))
    builder.add_node("guest", human_node("Guest"))
    builder.add_edge(START, "host")
    builder.add_edge("host", "guest")
    builder.add_conditional_edges(
        "guest", stop_or(MaxTurns(4), "host", end=END), ["host", END]
    )
    return builder.compile(name="ask_person")


class Parent(TypedDict, total=False):
    subject: str
    notes: str


async def test_dialogue_as_subgraph_node_pauses_and_resumes_through_the_parent() -> (
    None
):
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
    saver = InMemorySaver()
    parent = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "p"}}

    await parent.ainvoke({"subject": "tea"}, config)
    paused = (await parent.aget_state(config)).interrupts
    assert paused[0].value["prompt"] == "Why tea?"
    await parent.ainvoke(Command(resume="It is calm."), config)
    out = await parent.ainvoke(Command(resume="No milk."), config)

    assert out["notes"].splitlines()[1:] == [
        "Host: Why tea?",
        "Guest: It is calm.",
        "Host: Milk?",
        "Guest: No milk.",
    ]
    assert len(model.calls) == 2  # no LLM turn was asked twice on resume
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(None)}
    assert any(ns.startswith("interview:") for ns in namespaces)


async def test_dialogue_as_a_tool_of_an_agent_is_answered_through_the_agent() -> None:
    dialogue_model = ScriptedChatModel(replies=[said("Why tea?"), said("Milk?")])
    tool = as_tool(
        _interview(dialogue_model), name="ask_person", description="Ask a person."
    )
    assert tool.args_schema is not None
    call = {"name": "ask_person", "args": {"topic": "tea"}, "id": "call-1"}
    agent_model = ScriptedChatModel(
        replies=[AIMessage(content="", tool_calls=[call]), AIMessage(content="Done.")]
    )
    saver = InMemorySaver()
    agent = create_react_agent(agent_model, [tool], checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "agent"}}

    await agent.ainvoke({"messages": [HumanMessage(content="interview")]}, config)
    state = await agent.aget_state(config)
    assert state.interrupts[0].value["speaker"] == "Guest"
    await agent.ainvoke(Command(resume="It is calm."), config)
    out = await agent.ainvoke(Command(resume="No milk."), config)

    tool_reply = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert "Guest: It is calm." in str(tool_reply.content)
    assert "Guest: No milk." in str(tool_reply.content)
    assert out["messages"][-1].content == "Done."
    assert len(dialogue_model.calls) == 2


async def test_tool_arguments_are_checked_against_the_dialogue_schema() -> None:
    tool = as_tool(_interview(ScriptedChatModel()), name="ask_person")
    with pytest.raises(ValidationError, match="topic"):
        await tool.ainvoke({"topic": "x"})


def test_summary_lists_outcomes_then_transcript() -> None:
    values = {
        "verdict": json.dumps({"winner": "A"}),
        "transcript": [TranscriptEntry(speaker="A", text="hi")],
    }
    assert summarize_dialogue(values) == (
        'Verdict: {"winner": "A"}\n\nTranscript:\nA: hi'
    )
    assert summarize_dialogue({}) == "(empty dialogue)"
