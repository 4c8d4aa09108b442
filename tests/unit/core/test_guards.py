"""The dialogue guards with scripted models: echo, loop and off-side turns asked
again and flagged, decisions re-asked then repaired, re-asks in the LLM metrics, a
persona ending only after the minimum turns, settings read from the environment."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, ValidationError

from dialogllm.core import (
    GuardSettings,
    MaxTurns,
    PersonaEnded,
    Sentence,
    decision_node,
    get_guard_settings,
    persona_node,
)
from dialogllm.errors import ConfigError, StructuredOutputError
from dialogllm.llm import LLMMetrics
from dialogllm.models import Persona, TranscriptEntry
from tests.unit.core.conftest import said, scripted

ADA = Persona(name="Ada", role="a mathematician")
BO = Persona(name="Bo", role="an engineer")
FIRST = "Engines can weave algebra the way looms weave flowers."


def _state(*texts: str) -> dict[str, Any]:
    speakers = ["Ada", "Bo"]
    return {
        "topic": "engines",
        "transcript": [
            TranscriptEntry(speaker=speakers[i % 2], text=t)
            for i, t in enumerate(texts)
        ],
    }


async def test_an_echoing_turn_is_asked_again_naming_the_text_and_counted() -> None:
    metrics = LLMMetrics(to_redis=False)
    model = scripted(said(FIRST), said("Looms need no algebra, only patience."))
    model.callbacks = [metrics]
    node = persona_node(BO, participants=[ADA, BO], model=model)
    out = await node(_state(FIRST), {})
    (entry,) = out["transcript"]
    assert entry.text == "Looms need no algebra, only patience."
    assert entry.flags == () and entry.reasks == 1
    reask = str(model.calls[1][1].content)
    assert f'(Bo does not repeat "{FIRST}"' in reask and reask.endswith("Bo:")
    assert metrics.snapshot()["scripted"].guard_reasks == 1
    first, second = model.calls[0], model.calls[1]
    assert len(second) == len(first)  # same prompt shape, one direction added


async def test_an_echo_re_ask_that_fits_no_schema_keeps_the_turn_there_is() -> None:
    model = scripted(said(FIRST), "not json", repeat_last=True, usage=(10, 5))
    node = persona_node(BO, participants=[ADA, BO], model=model)
    out = await node(_state(FIRST), {})
    (entry,) = out["transcript"]
    assert entry.text == FIRST and entry.flags == ("echo",)
    # the failed re-ask's attempts are spent too: every call counts
    assert (entry.prompt_tokens, entry.completion_tokens) == (
        10 * len(model.calls),
        5 * len(model.calls),
    )
    assert len(model.calls) > 2


async def test_a_turn_that_keeps_echoing_is_kept_with_a_flag_after_the_budget() -> None:
    model = scripted(said(FIRST), repeat_last=True)
    node = persona_node(BO, participants=[ADA, BO], model=model)
    (entry,) = (await node(_state(FIRST), {}))["transcript"]
    budget = GuardSettings().reask_budget
    assert len(model.calls) == 1 + budget
    assert entry.flags == ("echo",) and entry.reasks == budget
    assert entry.text == FIRST
    assert entry.completion_tokens > 0 and entry.prompt_tokens > 0


async def test_a_looping_turn_is_asked_again_and_the_loop_is_named() -> None:
    loop = "I have no money, I have no money, I have no money, I have none."
    model = scripted(said(loop), said("Money is not the point; time is."))
    node = persona_node(BO, participants=[ADA, BO], model=model)
    (entry,) = (await node(_state("What do engines cost?"), {}))["transcript"]
    assert entry.text == "Money is not the point; time is." and entry.reasks == 1
    assert 'does not repeat "i have no"' in str(model.calls[1][1].content)


async def test_guards_switched_off_by_settings_keep_the_first_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALOGLLM_GUARD_ECHO", "false")
    get_guard_settings(reload=True)
    try:
        model = scripted(said(FIRST))
        node = persona_node(BO, participants=[ADA, BO], model=model)
        (entry,) = (await node(_state(FIRST), {}))["transcript"]
        assert len(model.calls) == 1 and entry.flags == ()
    finally:
        monkeypatch.delenv("DIALOGLLM_GUARD_ECHO")
        get_guard_settings(reload=True)


def test_a_bad_guard_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIALOGLLM_GUARD_REASK_BUDGET", "-1")
    with pytest.raises(ConfigError, match="DIALOGLLM_GUARD_REASK_BUDGET"):
        get_guard_settings(reload=True)
    monkeypatch.delenv("DIALOGLLM_GUARD_REASK_BUDGET")
    get_guard_settings(reload=True)


async def test_a_node_check_re_asks_an_off_side_turn_once() -> None:
    def check(state: Any, text: str) -> str | None:
        return "Bo argues AGAINST it" if "agree" in text else None

    model = scripted(said("I agree with Ada."), said("I agree again."))
    node = persona_node(BO, participants=[ADA, BO], model=model, check=check)
    (entry,) = (await node(_state("Engines are good."), {}))["transcript"]
    assert len(model.calls) == 2  # the side budget is one re-ask
    assert entry.flags == ("off_side",) and entry.reasks == 1
    assert "(Bo Bo argues AGAINST it.)" in str(model.calls[1][1].content)


async def test_the_stage_direction_names_the_speaker_and_whom_they_answer() -> None:
    model = scripted(said("Looms are older."))
    node = persona_node(BO, participants=[ADA, BO], model=model)
    await node(_state(FIRST), {})
    prompt = str(model.calls[0][1].content)
    assert prompt.endswith(
        f"Ada: {FIRST}\n(Bo, an engineer, answers Ada with a new point, "
        "in a sentence or two.)\nBo:"
    )


class Notes(BaseModel):
    notes: list[Sentence]


def _notes_node(model: Any, **options: Any) -> Any:
    return decision_node(
        Notes,
        prompt=lambda s: [HumanMessage(content="Notes:")],
        update=lambda s, v: {"notes": v.notes},
        speaker="Analyst",
        kind="analyst",
        check=lambda s, v: [n for n in v.notes if "Ada" not in n],
        repair=lambda s, v: Notes(notes=["Ada spoke first."]),
        guard="analysis",
        model=model,
        **options,
    )


async def test_a_decision_failing_its_check_is_asked_again_then_repaired() -> None:
    metrics = LLMMetrics(to_redis=False)
    model = scripted({"notes": ["A fine talk."]}, repeat_last=True)
    model.callbacks = [metrics]
    out = await _notes_node(model)({}, {})
    assert out["notes"] == ["Ada spoke first."]
    (entry,) = out["transcript"]
    assert entry.flags == ("analysis_repaired",) and entry.reasks == 1
    assert "not usable: A fine talk." in str(model.calls[1][-2].content)
    assert metrics.snapshot()["scripted"].guard_reasks == 1


async def test_a_decision_fixed_on_the_re_ask_is_kept_as_the_model_wrote_it() -> None:
    model = scripted({"notes": ["A fine talk."]}, {"notes": ["Ada opened well."]})
    out = await _notes_node(model)({}, {})
    assert out["notes"] == ["Ada opened well."]
    assert out["transcript"][0].flags == ()


async def test_a_decision_no_reply_fits_falls_back_and_says_so() -> None:
    model = scripted("not json", repeat_last=True, usage=(10, 5))
    node = _notes_node(model, fallback=lambda s: Notes(notes=["No notes came."]))
    out = await node({}, {})
    assert out["notes"] == ["No notes came."]
    (entry,) = out["transcript"]
    assert entry.flags == ("analysis_fallback",)
    # what the failed attempts spent is on the entry (token budgets count it)
    calls = len(model.calls)
    assert (
        calls > 1 and entry.tokens == 15 * calls and entry.prompt_tokens == 10 * calls
    )
    assert entry.latency_s > 0
    assert entry.text == '{"notes":["No notes came."]}'  # as any Notes entry
    assert (
        entry.reply == {"notes": ["No notes came."]} and entry.reply_schema == "Notes"
    )
    # without a fallback the run fails, as before
    with pytest.raises(StructuredOutputError, match="no reply matching Notes"):
        await _notes_node(scripted("not json", repeat_last=True))({}, {})


async def test_a_re_ask_that_fits_no_schema_keeps_the_answer_there_is() -> None:
    model = scripted(
        {"notes": ["A fine talk."]}, "not json", repeat_last=True, usage=(10, 5)
    )
    out = await _notes_node(model)({}, {})
    assert out["notes"] == ["Ada spoke first."]  # the first answer, repaired
    assert out["transcript"][0].flags == ("analysis_repaired",)
    assert len(model.calls) > 2 and out["transcript"][0].tokens == 15 * len(model.calls)


async def test_placeholder_tokens_are_refused_and_asked_again() -> None:
    model = scripted({"notes": ["reason_116"]}, {"notes": ["Ada won on facts."]})
    out = await _notes_node(model)({}, {})
    assert out["notes"] == ["Ada won on facts."] and len(model.calls) == 2
    with pytest.raises(ValidationError, match="not a sentence"):
        Notes(notes=["12:00"])
    assert Notes(notes=["<start_of_image>Ada, sit."]).notes == ["Ada, sit."]


def test_a_persona_may_end_only_after_the_minimum_turns() -> None:
    ended = TranscriptEntry(speaker="Bo", text="Bye.", ends_dialogue=True)
    turns = [TranscriptEntry(speaker="Ada", text="Hi."), ended]
    stop = PersonaEnded(min_turns=lambda s: 4) | MaxTurns(6)
    assert stop.check({"transcript": turns}) is None
    assert stop.check({"transcript": turns * 2}) == "Bo ended the dialogue"


def test_guard_flags_survive_a_transcript_round_trip() -> None:
    entry = TranscriptEntry(speaker="Bo", text="x", flags=("echo",), reasks=2)
    back = TranscriptEntry.model_validate(json.loads(entry.model_dump_json()))
    assert back.flags == ("echo",) and back.reasks == 2


async def test_a_junk_turn_is_asked_again() -> None:
    model = scripted(said("1234567890+"), said("What would you change first?"))
    node = persona_node(BO, participants=[ADA, BO], model=model)
    (entry,) = (await node(_state("Engines are good."), {}))["transcript"]
    assert entry.text == "What would you change first?" and entry.reasks == 1
