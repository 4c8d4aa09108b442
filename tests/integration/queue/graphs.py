"""Graphs and functions the queue tests run, by reference ``<this file>:<name>``.

Every turn calls a *counting model*: it INCRs ``<counter>:<thread>:<turn>`` in Redis
before answering, so a test can tell how often each turn's "LLM call" happened.
Input keys: ``turns`` (how many), ``sleep`` (seconds per turn), ``counter`` (key
prefix of the call counters), ``url`` (Redis to count in).
"""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any, TypedDict

import redis
from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt

_clients: dict[str, redis.Redis] = {}


def _client(url: str) -> redis.Redis:
    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


class Dialogue(TypedDict, total=False):
    turns: int
    sleep: float
    counter: str
    url: str
    transcript: Annotated[list[str], operator.add]


def _turn(state: Dialogue) -> dict[str, Any]:
    n = len(state.get("transcript") or []) + 1
    thread = get_config()["configurable"]["thread_id"]
    _client(state["url"]).incr(f"{state['counter']}:{thread}:{n}")
    time.sleep(state.get("sleep", 0.0))
    speaker = "alice" if n % 2 else "bob"
    return {"transcript": [f"{speaker}: turn {n}"]}


def _more(state: Dialogue) -> str:
    return "turn" if len(state.get("transcript") or []) < state["turns"] else "__end__"


_builder = StateGraph(Dialogue)
_builder.add_node("turn", _turn)
_builder.add_edge(START, "turn")
_builder.add_conditional_edges("turn", _more)
dialogue = _builder.compile()


class Asking(TypedDict, total=False):
    question: str
    answer: str


def _ask(state: Asking) -> dict[str, Any]:
    answer = interrupt({"question": state.get("question", "?")})
    return {"answer": str(answer)}


_asking = StateGraph(Asking)
_asking.add_node("ask", _ask)
_asking.add_edge(START, "ask")
asking = _asking.compile()


class One(TypedDict, total=False):
    n: int


def _one(state: One) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


_one_builder = StateGraph(One)
_one_builder.add_node("one", _one)
_one_builder.add_edge(START, "one")
one_node = _one_builder.compile()


async def noop(payload: Any) -> Any:
    """A no-op run: returns its input."""
    return payload


async def sleepy(payload: dict[str, Any]) -> str:
    """Waits ``sleep`` seconds without blocking the event loop."""
    import asyncio

    await asyncio.sleep(payload["sleep"])
    return "slept"


def flaky(payload: dict[str, Any]) -> str:
    """Fails until it was called ``fail`` times (counted in Redis at ``counter``)."""
    calls = int(_client(payload["url"]).incr(payload["counter"]))
    if calls <= payload["fail"]:
        raise RuntimeError(f"flaky failure {calls}")
    return f"ok after {calls}"


def not_a_graph() -> int:
    return 42


class Clash(TypedDict, total=False):
    n: int


def _write_n(state: Clash) -> dict[str, Any]:
    return {"n": 1}


_clashing = StateGraph(Clash)
_clashing.add_node("a", _write_n)
_clashing.add_node("b", _write_n)
_clashing.add_edge(START, "a")
_clashing.add_edge(START, "b")
clashing = _clashing.compile()  # two writes to a plain key in one step: invalid


class Refused(TypedDict, total=False):
    status: int
    reply: str


async def _refused_ask(state: Refused) -> dict[str, Any]:
    """Ask a model whose endpoint refuses the request with HTTP ``status``."""
    import httpx
    import openai
    from langchain_core.messages import HumanMessage

    from dialogllm.llm import LLMSettings, ask
    from dialogllm.llm.testing import ScriptedChatModel
    from dialogllm.models import Turn

    request = httpx.Request("POST", "http://llm.invalid/v1/chat/completions")
    response = httpx.Response(state.get("status", 401), request=request)
    refusal = openai.APIStatusError("refused", response=response, body=None)
    model = ScriptedChatModel(replies=[refusal])
    settings = LLMSettings(base_url="http://llm.invalid/v1", backoff_base_s=0.001)
    reply = await ask(model, [HumanMessage("Ada:")], schema=Turn, settings=settings)
    return {"reply": reply.value.message}


_refused = StateGraph(Refused)
_refused.add_node("ask", _refused_ask)
_refused.add_edge(START, "ask")
refused_llm = _refused.compile()  # its LLM refuses every request (401 by default)
