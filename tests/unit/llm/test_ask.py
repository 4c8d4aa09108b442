"""ask(): typed replies from any chat model, retries, budgets, fallbacks."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import BaseModel, Field

from dialogllm.errors import (
    LLMContextLengthError,
    LLMRequestError,
    LLMUnavailableError,
    StructuredOutputError,
)
from dialogllm.llm import (
    FallbackChatModel,
    LLMMetrics,
    LLMSettings,
    ModelTarget,
    TokenUsage,
    ask,
    build_chat_model,
    local_grammar,
    strict_json_schema,
)
from dialogllm.llm.structured import _bind
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import Turn

SETTINGS = LLMSettings(base_url="http://x/v1", backoff_base_s=0.001, backoff_max_s=0.01)
MESSAGES = [HumanMessage("Ada: Hello.\nBo:")]
REQUEST = httpx.Request("POST", "http://x/v1/chat/completions")


class Item(BaseModel):
    name: str = Field(max_length=500)
    count: int


class Order(BaseModel):
    who: str
    note: str | None = None
    rush: bool = False
    size: Literal["s", "m"] = "s"
    items: list[Item] = []


async def test_unknown_model_gets_the_schema_in_the_prompt_and_text_is_parsed() -> None:
    model = ScriptedChatModel(
        replies=['Sure! {"message": "Hi.", "end": true} Hope it helps.'],
        usage=(10, 5),
    )
    reply = await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)
    assert reply.value == Turn(message="Hi.", end=True)
    assert reply.mode == "prompt"
    assert reply.attempts == 1
    assert reply.usage == TokenUsage(10, 5)
    assert reply.model == "scripted"
    assert isinstance(reply.message, AIMessage)
    assert '"message"' in str(model.calls[0][-1].content)  # the schema was shown


async def test_invalid_reply_is_retried_with_the_error_fed_back() -> None:
    metrics = LLMMetrics(to_redis=False)
    model = ScriptedChatModel(
        replies=['{"message": ""}', '{"message": "Fixed."}'],
        usage=(10, 5),
        callbacks=[metrics],
    )
    reply = await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)
    assert reply.value.message == "Fixed."
    assert reply.attempts == 2
    assert reply.raw_outputs == ['{"message": ""}', '{"message": "Fixed."}']
    assert reply.usage.total_tokens == 30
    second = model.calls[1]
    assert second[-3].content == '{"message": ""}'  # its own bad answer
    assert "message" in str(second[-2].content)  # the validation error
    assert metrics.snapshot()["scripted"].structured_retries == 1


async def test_budget_spent_raises_with_every_raw_output_never_none() -> None:
    metrics = LLMMetrics(to_redis=False)
    model = ScriptedChatModel(
        replies=["", "no", "[]"], callbacks=[metrics], usage=(7, 2)
    )
    with pytest.raises(StructuredOutputError) as info:
        await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)
    assert info.value.raw_outputs == ["", "no", "[]"]
    # what the three attempts spent, for whoever falls back
    assert (info.value.prompt_tokens, info.value.completion_tokens) == (21, 6)
    assert info.value.latency_s > 0
    assert len(info.value.errors) == 3
    assert "Turn" in str(info.value)
    assert metrics.snapshot()["scripted"].structured_failures == 1


async def test_list_content_and_tool_calls_are_read() -> None:
    blocks = AIMessage(content=[{"type": "text", "text": '{"message": "A"}'}, "!"])
    reply = await ask(ScriptedChatModel(replies=[blocks]), MESSAGES, schema=Turn)
    assert reply.value.message == "A"
    tool = AIMessage(
        content="",
        tool_calls=[{"name": "Turn", "args": {"message": "B"}, "id": "1"}],
    )
    reply = await ask(
        ScriptedChatModel(replies=[tool]),
        MESSAGES,
        schema=Turn,
        mode="function_calling",
    )
    assert reply.value.message == "B"


async def test_unknown_exceptions_propagate_unchanged() -> None:
    model = ScriptedChatModel(replies=[RuntimeError("scripted model ran out")])
    with pytest.raises(RuntimeError, match="ran out"):
        await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)


async def test_transient_errors_are_retried_then_reported() -> None:
    timeout = openai.APITimeoutError(request=REQUEST)
    model = ScriptedChatModel(replies=[timeout, timeout, '{"message": "ok"}'])
    reply = await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)
    assert reply.value.message == "ok" and len(model.calls) == 3
    dead = ScriptedChatModel(replies=[timeout], repeat_last=True)
    with pytest.raises(LLMUnavailableError, match="timeout"):
        await ask(dead, MESSAGES, schema=Turn, settings=SETTINGS, max_retries=2)
    assert len(dead.calls) == 3


async def test_permanent_errors_fail_at_once() -> None:
    response = httpx.Response(401, request=REQUEST)
    denied = openai.AuthenticationError("bad key", response=response, body=None)
    model = ScriptedChatModel(replies=[denied])
    with pytest.raises(LLMRequestError, match="auth"):
        await ask(model, MESSAGES, schema=Turn, settings=SETTINGS)
    assert len(model.calls) == 1


async def test_a_request_larger_than_the_context_fails_at_once_naming_its_size() -> (
    None
):
    response = httpx.Response(400, request=REQUEST)
    too_long = openai.BadRequestError(
        "This model's maximum context length is 4096 tokens. However, your messages "
        "resulted in 9120 tokens.",
        response=response,
        body=None,
    )
    model = ScriptedChatModel(replies=[too_long], repeat_last=True)
    messages = [HumanMessage("x" * 30_000), HumanMessage("Ada:")]
    with pytest.raises(LLMContextLengthError) as caught:
        await ask(model, messages, schema=Turn, settings=SETTINGS, max_tokens=64)
    assert isinstance(caught.value, LLMRequestError)  # not retried by the queue
    text = str(caught.value)
    sent = model.calls[0]  # the conversation plus the schema prompt (mode "prompt")
    chars = sum(len(str(m.content)) for m in sent)
    assert chars > 30_004
    size = f"{len(sent)} messages, {chars} characters, about {chars // 4 + 1} prompt"
    assert size in text
    assert "max_tokens=64" in text
    assert "API_KEY" not in text
    assert len(model.calls) == 1


async def test_fallback_chain_serves_from_the_next_model() -> None:
    metrics = LLMMetrics(to_redis=False)
    broken = ScriptedChatModel(
        replies=[openai.APIConnectionError(request=REQUEST)],
        repeat_last=True,
        model_name="primary",
        callbacks=[metrics],
    )
    backup = ScriptedChatModel(
        replies=['{"message": "from backup"}'], repeat_last=True, model_name="backup"
    )
    chain = FallbackChatModel(models=[broken, backup], metrics=metrics)
    reply = await ask(chain, MESSAGES, schema=Turn, settings=SETTINGS, max_retries=0)
    assert reply.value.message == "from backup"
    assert reply.model == "backup"
    assert metrics.snapshot()["primary"].fallbacks == 1
    assert chain.model_name == "primary"
    direct = await chain.ainvoke(MESSAGES)
    assert "from backup" in str(direct.content)
    assert "from backup" in str(chain.invoke(MESSAGES).content)


async def test_a_fallback_chain_counts_the_tokens_of_a_model_that_never_fit() -> None:
    never = ScriptedChatModel(replies=["no"], repeat_last=True, usage=(7, 2))
    backup = ScriptedChatModel(
        replies=['{"message": "from backup"}'], repeat_last=True, usage=(5, 1)
    )
    reply = await ask(
        FallbackChatModel(models=[never, backup]),
        MESSAGES,
        schema=Turn,
        settings=SETTINGS,
    )
    tries = len(never.calls)
    assert tries == 3 and reply.value.message == "from backup"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        7 * tries + 5,
        2 * tries + 1,
    )
    # when no model fits, the error carries what every model spent
    other = ScriptedChatModel(replies=["[]"], repeat_last=True, usage=(5, 1))
    with pytest.raises(StructuredOutputError) as info:
        await ask(
            FallbackChatModel(models=[never, other]),
            MESSAGES,
            schema=Turn,
            settings=SETTINGS,
        )
    assert (info.value.prompt_tokens, info.value.completion_tokens) == (21 + 15, 6 + 3)


def test_fallback_chain_does_not_hide_programming_errors() -> None:
    chain = FallbackChatModel(
        models=[
            ScriptedChatModel(replies=[KeyError("bug")]),
            ScriptedChatModel(replies=["x"]),
        ]
    )
    with pytest.raises(KeyError):
        chain.invoke(MESSAGES)


def test_strict_schema_requires_every_field_and_narrows_to_the_budget() -> None:
    schema = strict_json_schema(Order, max_tokens=100)
    assert schema["required"] == ["who", "note", "rush", "size", "items"]
    note = schema["properties"]["note"]["anyOf"][0]
    assert note["maxLength"] == schema["properties"]["who"]["maxLength"]
    assert schema["additionalProperties"] is False
    item = schema["$defs"]["Item"]
    assert item["required"] == ["name", "count"]
    assert item["properties"]["name"]["maxLength"] < 500
    assert item["properties"]["count"]["maximum"] == 999_999
    assert "default" not in json.dumps(schema)
    unbounded = strict_json_schema(Order)["$defs"]["Item"]["properties"]
    assert unbounded["name"]["maxLength"] == 500
    assert "maximum" not in unbounded["count"]


def _kwargs(runnable: Any) -> dict[str, Any]:
    return dict(runnable.kwargs)


def test_openai_models_get_json_schema_and_length_in_the_body() -> None:
    target = ModelTarget(model="m", base_url="http://127.0.0.1:9/v1", max_tokens=64)
    model = build_chat_model(target, settings=SETTINGS)
    kwargs = _kwargs(_bind(model, "json_schema", Turn, 32, 0.3))
    assert kwargs["response_format"]["json_schema"]["name"] == "Turn"
    assert kwargs["extra_body"] == {"max_tokens": 32, "n_predict": 32}
    assert kwargs["max_tokens"] == 32 and kwargs["temperature"] == 0.3
    assert _kwargs(_bind(model, "json_mode", Turn, None, None)) == {
        "response_format": {"type": "json_object"}
    }
    tools = _kwargs(_bind(model, "function_calling", Turn, None, None))
    assert tools["tool_choice"]["function"]["name"] == "Turn"


def test_local_model_gets_a_compact_grammar_instead() -> None:
    target = ModelTarget(model="local", base_url=None, max_tokens=64)
    model = build_chat_model(
        target.model_copy(update={"base_url": "http://127.0.0.1:9/v1"}),
        settings=SETTINGS,
    )
    model.metadata = {**(model.metadata or {}), "dialogllm_local_grammar": True}
    kwargs = _kwargs(_bind(model, "json_schema", Turn, 40, None))
    assert "response_format" not in kwargs
    assert kwargs["extra_body"]["grammar"] == local_grammar(Turn, 40)
    assert '"whitespace_flexible":false' in kwargs["extra_body"]["grammar"]


def test_squeeze_divides_the_string_caps() -> None:
    loose = strict_json_schema(Turn, max_tokens=128)["properties"]["message"]
    tight = strict_json_schema(Turn, max_tokens=128, squeeze=2)["properties"]["message"]
    assert tight["maxLength"] <= loose["maxLength"] // 2 + 1
    assert local_grammar(Turn, 128, 2) != local_grammar(Turn, 128)
    target = ModelTarget(model="m", base_url="http://127.0.0.1:9/v1", max_tokens=64)
    model = build_chat_model(target, settings=SETTINGS)
    bound = _kwargs(_bind(model, "json_schema", Turn, 128, None, 2))
    sent = bound["response_format"]["json_schema"]["schema"]["properties"]["message"]
    assert sent["maxLength"] == tight["maxLength"]


async def test_a_reply_cut_off_at_the_token_bound_is_asked_again_not_argued_with() -> (
    None
):
    cut = AIMessage(
        content='{"message": "2017-04-24T10:00:00 and so on and',
        response_metadata={"finish_reason": "length"},
    )
    model = ScriptedChatModel(replies=[cut, '{"message": "Short now."}'])
    reply = await ask(model, MESSAGES, schema=Turn, settings=SETTINGS, max_tokens=32)
    assert (reply.value.message, reply.attempts) == ("Short now.", 2)
    first, second = model.calls
    assert second == first  # the same request again, no "that was invalid" turn
