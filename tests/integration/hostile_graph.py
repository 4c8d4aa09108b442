"""The graph the hostile-data test runs: two checkpointed steps, the second asks a
scripted model through :func:`dialogllm.llm.ask` with a shared Redis rate limiter and
Redis metrics, so every run touches the thread's checkpoint keys, the limiter bucket
and the metrics keys. Input: ``prefix`` (the test's key prefix), ``model`` (the
model name, whose limiter and metrics keys the test also attacks)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage
from langgraph.graph import START, StateGraph

from dialogllm.llm import LLMSettings, RedisRateLimiter, ask
from dialogllm.llm.metrics import LLMMetrics
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import Turn


class Hostile(TypedDict, total=False):
    prefix: str
    model: str
    transcript: Annotated[list[str], operator.add]


def _open(state: Hostile) -> dict[str, Any]:
    return {"transcript": ["ada: hello"]}


async def _reply(state: Hostile) -> dict[str, Any]:
    limiter = RedisRateLimiter(
        state["model"],
        requests_per_minute=600_000,
        tokens_per_minute=1_000_000_000,
        prefix=state["prefix"],
    )
    metrics = LLMMetrics(prefix=state["prefix"])
    model = ScriptedChatModel(
        replies=['{"message": "Hi."}'],
        model_name=state["model"],
        rate_limiter=limiter,
        callbacks=[metrics],
    )
    settings = LLMSettings(base_url="http://llm.invalid/v1", backoff_base_s=0.001)
    reply = await ask(
        model, [HumanMessage("Bob:")], schema=Turn, settings=settings, metrics=metrics
    )
    return {"transcript": [f"bob: {reply.value.message}"]}


_builder = StateGraph(Hostile)
_builder.add_node("open", _open)
_builder.add_node("reply", _reply)
_builder.add_edge(START, "open")
_builder.add_edge("open", "reply")
hostile = _builder.compile()
