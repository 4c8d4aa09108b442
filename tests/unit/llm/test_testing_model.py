"""The scripted chat model users test their graphs with (and tests, benchmarks)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from dialogllm.llm.testing import ScriptedChatModel


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


def test_exceptions_in_the_script_are_raised_and_counted_in_turn() -> None:
    model = ScriptedChatModel(replies=[TimeoutError("slow"), "ok"])
    with pytest.raises(TimeoutError, match="slow"):
        model.invoke("x")
    assert model.invoke("x").content == "ok"
    assert len(model.calls) == 2


def test_repeat_last_keeps_answering_with_the_last_item() -> None:
    model = ScriptedChatModel(replies=["a", ConnectionError("down")], repeat_last=True)
    assert model.invoke("x").content == "a"
    for _ in range(3):
        with pytest.raises(ConnectionError):
            model.invoke("x")
    assert len(model.calls) == 4


def test_fixed_usage_and_own_metadata_are_reported() -> None:
    model = ScriptedChatModel(
        replies=["a", AIMessage(content="b", response_metadata={"finish_reason": "x"})],
        usage=(10, 5),
        model_name="mine",
    )
    first = model.invoke("x")
    assert first.usage_metadata == {
        "input_tokens": 10,
        "output_tokens": 5,
        "total_tokens": 15,
    }
    assert first.response_metadata["model_name"] == "mine"
    second = model.invoke("x")
    assert second.response_metadata["finish_reason"] == "x"
    assert second.usage_metadata is not None
    assert second.usage_metadata["total_tokens"] == 15
