"""Graphs with scripted models for the CLI tests (loaded as ``file.py:attr``).

``slow_chat``: two personas, ``turns`` turns, each reply takes ``DIALOGLLM_TEST_DELAY``
seconds and says which turn it is ("turn 3"), so a missing or repeated turn shows.
``scripted_interview``: the shipped interview graph with a scripted interviewer.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import (
    MaxTurns,
    RoundRobin,
    persona_node,
    stop_or,
)
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import DialogueState, Persona

ROOT = Path(__file__).resolve().parents[3]


def _transcript(messages: Sequence[BaseMessage]) -> str:
    """The transcript the node sent (the LLM layer may append its own message)."""
    return str(messages[1].content)


def _turn_reply(messages: Sequence[BaseMessage]) -> str:
    body = _transcript(messages)
    said = [line for line in body.strip().splitlines()[:-1] if ": " in line]
    return json.dumps({"message": f"turn {len(said) + 1}"})


def _question_reply(messages: Sequence[BaseMessage]) -> str:
    body = _transcript(messages)
    asked = sum(1 for line in body.splitlines() if line.startswith("Interviewer: "))
    return json.dumps({"message": f"Question {asked + 1}?"})


class ChatInput(BaseModel):
    """Input of the scripted chat."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1)
    turns: int = Field(default=6, ge=1, le=50)


class ChatState(DialogueState, total=False):
    """State of the scripted chat."""

    turns: int


def _build_chat() -> Any:
    model = ScriptedChatModel(
        reply_fn=_turn_reply, delay_s=float(os.environ.get("DIALOGLLM_TEST_DELAY", "0"))
    )
    cast = (Persona(name="Ada"), Persona(name="Bo"))
    until = MaxTurns(lambda s: int(s.get("turns", 6)))
    builder = StateGraph(ChatState, input_schema=ChatInput)
    for p in cast:
        builder.add_node(
            p.name, persona_node(p, participants=cast, window=100, model=model)
        )
        builder.add_conditional_edges(
            p.name,
            stop_or(until, RoundRobin(["Ada", "Bo"]), end=END),
            ["Ada", "Bo", END],
        )
    builder.add_edge(START, "Ada")
    return builder.compile(name="slow_chat")


slow_chat = _build_chat()


def _interview() -> Any:
    sys.path.insert(0, str(ROOT / "graphs"))
    try:
        import interview
    finally:
        sys.path.remove(str(ROOT / "graphs"))
    model = ScriptedChatModel(reply_fn=_question_reply)
    return interview.build_graph(model=model)


scripted_interview = _interview()


def _broken() -> Any:
    model = ScriptedChatModel(replies=["this is not JSON"], cycle=True)
    builder = StateGraph(ChatState, input_schema=ChatInput)
    builder.add_node("Ada", persona_node(Persona(name="Ada"), model=model))
    builder.add_edge(START, "Ada")
    builder.add_edge("Ada", END)
    return builder.compile(name="broken_chat")


broken_chat = _broken()
