"""The real local default model through its OpenAI-compatible server.

Calls are few and short: the model runs on shared CPUs.
"""

from __future__ import annotations

from typing import Literal

import httpx
import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from dialogllm.llm import (
    LOCAL_MODEL_ALIAS,
    LLMMetrics,
    LLMSettings,
    LocalModelServer,
    ask,
    get_chat_model,
    local_server,
)
from dialogllm.models import Turn

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=30)
    quantity: int = Field(ge=0)


class Order(BaseModel):
    customer: str = Field(min_length=1, max_length=30)
    urgent: bool
    size: Literal["small", "medium", "large"]
    items: list[Item] = Field(min_length=1, max_length=2)


async def test_schema_with_str_bool_enum_and_nested_list_comes_back_valid(
    local_model_server: LocalModelServer, local_settings: LLMSettings
) -> None:
    metrics = LLMMetrics(to_redis=False)
    model = get_chat_model("orders", settings=local_settings, metrics=metrics)
    messages = [
        SystemMessage(
            "Coffee shop order slips, written as JSON.\n\nBob wants one small tea."
            '\nOrder slip for Bob: {"customer":"Bob","urgent":false,"size":"small",'
            '"items":[{"name":"tea","quantity":1}]}'
        ),
        HumanMessage(
            "Alice wants two large lattes, quickly please.\nOrder slip for Alice:"
        ),
    ]
    reply = await ask(model, messages, schema=Order, max_tokens=80, temperature=0.2)
    assert isinstance(reply.value, Order)
    assert reply.value.items
    assert reply.model == LOCAL_MODEL_ALIAS
    assert reply.mode == "json_schema"
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.completion_tokens > 0
    seen = metrics.snapshot()[LOCAL_MODEL_ALIAS]
    assert seen.prompt_tokens >= reply.usage.prompt_tokens
    assert seen.completion_tokens >= reply.usage.completion_tokens
    assert seen.latency_p50_s is not None


async def test_dialogue_prompt_gives_a_turn_within_the_token_bound(
    local_model_server: LocalModelServer, local_settings: LLMSettings
) -> None:
    model = get_chat_model("persona", settings=local_settings)
    assert isinstance(model, ChatOpenAI)
    messages = [
        SystemMessage(
            "A conversation about tea.\n\nParticipants:\n- Ada, host.\n- Bo, guest."
            "\n\nBo loves green tea.\nBo speaks next: one short sentence."
        ),
        HumanMessage("Transcript:\nAda: Welcome, Bo! Which tea do you like?\nBo:"),
    ]
    reply = await ask(model, messages, schema=Turn, max_tokens=48)
    assert reply.value.message.strip()
    assert reply.usage.completion_tokens <= 48 * reply.attempts
    assert local_server(local_settings) is local_model_server  # reused, not restarted


def test_local_server_renders_messages_as_one_document(
    local_model_server: LocalModelServer,
) -> None:
    response = httpx.post(
        f"{local_model_server.address}/apply-template",
        json={
            "messages": [
                {"role": "system", "content": "Scene."},
                {"role": "user", "content": "Ada: Hi.\nBo:"},
            ]
        },
        headers={"Authorization": f"Bearer {local_model_server.api_key}"},
        timeout=10,
    )
    assert response.json()["prompt"] == "Scene.\n\nAda: Hi.\nBo:"


def test_local_server_refuses_requests_without_its_key(
    local_model_server: LocalModelServer,
) -> None:
    response = httpx.post(
        f"{local_model_server.base_url}/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 1},
        timeout=10,
    )
    assert response.status_code == 401


@pytest.mark.parametrize(("level", "verbosity"), [("info", 0), ("debug", 3)])
def test_llama_cpp_lines_reach_the_terminal_only_at_debug(
    level: str, verbosity: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp prints dozens of lines per start at its default verbosity (3): the
    server is started at 0 (its errors only) unless DIALOGLLM_LOG_LEVEL=debug."""
    import xllamacpp

    from dialogllm.config import get_settings

    seen: list[int] = []

    class RecordingServer:
        listening_address = "http://127.0.0.1:1"

        def __init__(self, params: object) -> None:
            seen.append(params.verbosity)  # type: ignore[attr-defined]

    monkeypatch.setattr(xllamacpp, "Server", RecordingServer)
    monkeypatch.setenv("DIALOGLLM_LOG_LEVEL", level)
    get_settings(reload=True)
    try:
        LocalModelServer(LLMSettings(base_url=None))
    finally:
        monkeypatch.delenv("DIALOGLLM_LOG_LEVEL")
        get_settings(reload=True)
    assert seen == [verbosity]
