"""The scripted chat model used by tests, examples and the benchmark."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from dialogllm.core import ScriptedChatModel


def test_replies_in_order_then_a_clear_error() -> None:
    model = ScriptedChatModel(replies=["a", AIMessage(content="b")], delay_s=0.001)
    assert [model.invoke("x").content for _ in range(2)] == ["a", "b"]
    with pytest.raises(RuntimeError, match="ran out of its 2 replies"):
        model.invoke("x")
    with pytest.raises(RuntimeError, match="has no replies"):
        ScriptedChatModel().invoke("x")
    assert len(model.calls) == 3


async def test_cycles_or_answers_from_a_function_and_reports_usage() -> None:
    cycling = ScriptedChatModel(replies=["a"], cycle=True, delay_s=0.001)
    assert [(await cycling.ainvoke("x")).content for _ in range(3)] == ["a"] * 3
    echo = ScriptedChatModel(reply_fn=lambda msgs: str(msgs[-1].content).upper())
    reply = await echo.ainvoke("hello")
    assert reply.content == "HELLO"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] > 0
    assert echo.bind_tools([]) is echo
