"""Graphs the server tests serve (named in this folder's ``langgraph.json``)."""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic builds schemas of it on 3.11


class Asking(TypedDict, total=False):
    topic: str
    answer: str
    log: Annotated[list[str], operator.add]


def _first(state: Asking) -> dict[str, Any]:
    get_stream_writer()({"note": f"thinking about {state.get('topic', '')}"})
    return {"log": [f"first:{state.get('topic', '')}"]}


def _ask(state: Asking) -> dict[str, Any]:
    return {"answer": str(interrupt({"question": f"why {state.get('topic', '')}?"}))}


_asking = StateGraph(Asking)
_asking.add_node("first", _first)
_asking.add_node("ask", _ask)
_asking.add_edge(START, "first")
_asking.add_edge("first", "ask")
_asking.add_edge("ask", END)
ask = _asking.compile()


class Counter(TypedDict, total=False):
    n: int
    sleep: float
    steps: int
    log: Annotated[list[str], operator.add]


def _count(state: Counter) -> dict[str, Any]:
    time.sleep(state.get("sleep", 0.0))
    n = state.get("n", 0) + 1
    return {"n": n, "log": [f"step {n}"]}


def _more(state: Counter) -> str:
    return "count" if len(state.get("log") or []) < state.get("steps", 1) else END


_counting = StateGraph(Counter)
_counting.add_node("count", _count)
_counting.add_edge(START, "count")
_counting.add_conditional_edges("count", _more, ["count", END])
count = _counting.compile()


class Chat(TypedDict, total=False):
    prompt: str
    reply: str


async def _reply(state: Chat) -> dict[str, Any]:
    # the project's default chat model (the local one unless configured): its
    # tokens stream to clients that ask for messages
    from langchain_core.messages import HumanMessage

    from dialogllm.llm import get_chat_model

    model = get_chat_model(role="persona")
    message = await model.ainvoke([HumanMessage(state["prompt"])], max_tokens=12)
    return {"reply": str(message.content)}


_chatting = StateGraph(Chat)
_chatting.add_node("reply", _reply)
_chatting.add_edge(START, "reply")
_chatting.add_edge("reply", END)
chat = _chatting.compile()
