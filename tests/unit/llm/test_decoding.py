"""Decoding settings and reply repairs: per-role sampling of the local model,
penalties for endpoints, a timeout scaled to the local model's speed, replies whose
texts never end mid-sentence or mid-word, special tokens stripped."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from dialogllm.llm import LLMSettings, ask, build_chat_model, tidy_reply
from dialogllm.llm.local import GenerationSpeed
from dialogllm.llm.structured import _bind
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import Turn


def _local_like(**metadata: Any) -> ChatOpenAI:
    """A ChatOpenAI marked as the local model (no server is contacted)."""
    return ChatOpenAI(
        model="gemma-3-270m",
        base_url="http://127.0.0.1:9/v1",
        api_key="x",  # type: ignore[arg-type]
        timeout=60.0,
        extra_body={"max_tokens": 128, "n_predict": 128, "repeat_penalty": 1.1},
        metadata={"dialogllm_local_grammar": True, **metadata},
    )


def test_local_sampling_differs_per_role_and_carries_the_penalties() -> None:
    settings = LLMSettings(base_url=None)
    persona, judge = settings.targets("persona")[0], settings.targets("judge")[0]
    assert (persona.temperature, judge.temperature) == (0.8, 0.3)
    assert persona.sampling() == {
        "presence_penalty": 0.2,
        "frequency_penalty": 0.2,
        "repeat_penalty": 1.1,
        "repeat_last_n": 64,
        "dry_multiplier": 0.8,
        "dry_base": 1.75,
        "dry_allowed_length": 2,
    }


def test_endpoints_get_only_the_openai_penalties(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALOGLLM_LLM_PRESENCE_PENALTY", "0.6")
    monkeypatch.setenv("DIALOGLLM_LLM_ROLES", '{"persona": {"frequency_penalty": 0.4}}')
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m")
    target = settings.targets("persona")[0]
    assert target.sampling() == {"presence_penalty": 0.6, "frequency_penalty": 0.4}
    chat = build_chat_model(target, settings=settings)
    assert (chat.presence_penalty, chat.frequency_penalty) == (0.6, 0.4)
    assert "repeat_penalty" not in (chat.extra_body or {})


def test_a_re_ask_sends_stronger_penalties_to_the_local_model() -> None:
    bound: Any = _bind(
        _local_like(),
        "json_schema",
        Turn,
        64,
        None,
        sampling={"repeat_penalty": 1.3, "presence_penalty": 0.8},
    )
    assert bound.kwargs["presence_penalty"] == 0.8
    assert bound.kwargs["extra_body"]["repeat_penalty"] == 1.3
    assert bound.kwargs["extra_body"]["n_predict"] == 64


def test_the_local_timeout_scales_with_max_tokens_and_measured_speed() -> None:
    speed = GenerationSpeed(tokens_per_s=40.0)
    fast = speed.timeout_s(128, floor_s=60.0, factor=4.0)
    for _ in range(6):
        speed.record(100, 25.0)  # a busy machine: 4 tokens a second
    slow = speed.timeout_s(512, floor_s=60.0, factor=4.0)
    assert fast == 60.0 and slow > 4 * 512 / 5
    assert speed.timeout_s(16, floor_s=60.0, factor=4.0) == 60.0


def test_a_local_request_carries_its_scaled_timeout() -> None:
    bound: Any = _bind(
        _local_like(dialogllm_timeout_factor=4.0), "json_schema", Turn, 1024, None
    )
    assert bound.kwargs["timeout"] >= 60.0
    doubled: Any = _bind(
        _local_like(), "json_schema", Turn, 1024, None, timeout_scale=2.0
    )
    assert doubled.kwargs["timeout"] == 2 * bound.kwargs["timeout"]
    remote: Any = _bind(
        ChatOpenAI(model="m", base_url="http://127.0.0.1:9/v1", api_key="x"),  # type: ignore[arg-type]
        "json_schema",
        Turn,
        64,
        None,
    )
    assert "timeout" not in remote.kwargs


class Plan(BaseModel):
    name: str = Field(max_length=20)
    notes: list[str]


def test_tidy_ends_texts_at_sentences_and_never_cuts_a_word() -> None:
    plan = Plan(
        name="Dr Elizabeth Warrenn",  # 20 characters: the cap stopped it
        notes=["<start_of_image><start_of_image>Please, sit.", "Cars are loud and"],
    )
    tidy = tidy_reply(plan, caps={20})
    assert tidy.name == "Dr Elizabeth"
    assert tidy.notes == ["Please, sit.", "Cars are loud."]
    assert tidy_reply(Turn(message="Should cities ban cars from a")).message == (
        "Should cities ban cars?"
    )
    assert tidy_reply(Turn(message="Hello.")) == Turn(message="Hello.")


async def test_ask_tidies_replies_and_re_asks_one_that_is_only_special_tokens() -> None:
    model = ScriptedChatModel(
        replies=['{"message": "<eos>"}', '{"message": "Trains are fast. Buses reach"}']
    )
    reply = await ask(model, [HumanMessage("Ada:")], schema=Turn, max_tokens=64)
    assert reply.value.message == "Trains are fast." and reply.attempts == 2


class Flags(BaseModel):
    flags: list[Annotated[str, Field(min_length=1)]] = Field(max_length=3)
    claims: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)


async def test_a_list_item_that_was_only_special_tokens_is_dropped() -> None:
    # a small model's "nothing to flag" written as a special token: the item goes,
    # the reply stays (before, the emptied item failed the schema, every attempt)
    model = ScriptedChatModel(
        replies=[
            '{"flags": ["<end_of_turn>", "Ada names a street.", " "], "claims": ["x"]}'
        ]
    )
    reply = await ask(model, [HumanMessage("Notes:")], schema=Flags, max_tokens=64)
    assert reply.value.flags == ["Ada names a street."] and reply.attempts == 1
    # a list its minimum needs is still asked again
    model = ScriptedChatModel(
        replies=[
            '{"flags": [], "claims": ["<eos>"]}',
            '{"flags": [], "claims": ["Trains run late."]}',
        ]
    )
    reply = await ask(model, [HumanMessage("Notes:")], schema=Flags, max_tokens=64)
    assert reply.value.claims == ["Trains run late."] and reply.attempts == 2
    # with the repairs off nothing is dropped
    kept = Flags(flags=[" "], claims=["x"])
    assert tidy_reply(kept, strip_special=False, finish_sentences=False) == kept


async def test_the_repairs_can_be_switched_off() -> None:
    model = ScriptedChatModel(replies=['{"message": "Trains are fast. Buses reach"}'])
    settings = LLMSettings(finish_sentences=False, strip_special_tokens=False)
    reply = await ask(model, [HumanMessage("Ada:")], schema=Turn, settings=settings)
    assert reply.value.message == "Trains are fast. Buses reach"


class Short(BaseModel):
    note: str = Field(min_length=3, max_length=5)


async def test_a_repair_that_breaks_the_schema_steps_back_instead_of_failing() -> None:
    model = ScriptedChatModel(replies=['{"note": "ab cd"}'])
    reply = await ask(model, [HumanMessage("Note:")], schema=Short, max_tokens=64)
    assert reply.value.note == "ab cd" and reply.attempts == 1
