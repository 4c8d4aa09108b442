"""Node factories: personas, speakers, people, directors and judges."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from pydantic import BaseModel

from dialogllm.core import (
    MODEL_CONFIG_KEY,
    DirectorChooses,
    RoundRobin,
    decision_node,
    dialogue_prompt,
    director_choice_node,
    human_node,
    persona_node,
    reply_text,
    resolve_chat_model,
    scene_text,
    speaker_node,
    transcript_text,
)
from dialogllm.core import nodes as nodes_module
from dialogllm.errors import ResumeError
from dialogllm.models import DialogueState, Persona, TranscriptEntry, Turn
from tests.unit.core.conftest import said, scripted

ADA = Persona(name="Ada", role="mathematician")
BO = Persona(name="Bo", role="engineer")


def _entries(*pairs: tuple[str, str]) -> list[TranscriptEntry]:
    return [TranscriptEntry(speaker=s, text=t) for s, t in pairs]


def test_prompt_is_a_transcript_ending_with_the_speakers_cue() -> None:
    state = {"topic": "engines", "transcript": _entries(("Ada", "Hi"), ("Bo", "Yo"))}
    system, human = dialogue_prompt(BO, state, [ADA, BO], window=1)
    assert system.content.startswith(
        "The following is the transcript of a conversation about engines."
    )
    assert "- Ada, mathematician.\n- Bo, engineer." in system.content
    assert human.content == "Bo: Yo\nBo:"
    opening = "The following is the transcript of a"
    assert scene_text({"scenario": "A pub."}, []) == f"{opening} conversation. A pub."
    assert scene_text({"motion": "Tea"}, []) == f'{opening} debate on the motion "Tea".'
    assert scene_text({}, []) == f"{opening} conversation."
    assert transcript_text(state["transcript"], window=0) == ""
    system, empty = dialogue_prompt(ADA, {}, [], instructions="Say hi.")
    assert empty.content == "Ada:"
    assert system.content.endswith("- Ada, mathematician.\n\nSay hi.")


async def test_persona_node_appends_a_typed_turn_with_usage() -> None:
    model = scripted(said("Engines weave algebra.", intent="answer", end=True))
    node = persona_node(ADA, model=model)
    out = await node({"topic": "engines"}, {})
    (entry,) = out["transcript"]
    assert entry.speaker == "Ada" and entry.text == "Engines weave algebra."
    assert entry.reply == {
        "message": "Engines weave algebra.",
        "intent": "answer",
        "end": True,
    }
    assert entry.reply_schema == "Turn" and entry.ends_dialogue
    assert entry.prompt_tokens > 0 and entry.completion_tokens > 0
    prompt = model.calls[0][1]  # then the LLM layer's schema instruction
    assert isinstance(prompt, HumanMessage)
    assert str(prompt.content).endswith("Ada:")


def test_resolve_chat_model_order(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, configured, by_role = scripted(), scripted(), scripted()
    assert resolve_chat_model({}, "x", explicit) is explicit
    conf: Any = {"configurable": {MODEL_CONFIG_KEY: configured}}
    assert resolve_chat_model(conf, "x") is configured
    roles: list[str] = []

    def pick(role: str) -> Any:
        roles.append(role)
        return by_role

    conf = {"configurable": {MODEL_CONFIG_KEY: pick}}
    assert resolve_chat_model(conf, "judge") is by_role and roles == ["judge"]
    fallback = scripted()
    monkeypatch.setattr(nodes_module, "get_chat_model", lambda role: fallback)
    assert resolve_chat_model(None, "persona") is fallback


async def test_nodes_build_the_default_model_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    fallback, seen = scripted(), []

    def build(role: str) -> Any:
        seen.append((role, threading.current_thread() is threading.main_thread()))
        return fallback

    monkeypatch.setattr(nodes_module, "get_chat_model", build)
    assert await nodes_module.aresolve_chat_model(None, "judge") is fallback
    assert seen == [("judge", False)]
    conf: Any = {"configurable": {MODEL_CONFIG_KEY: fallback}}
    assert await nodes_module.aresolve_chat_model(conf, "judge") is fallback


def test_reply_text_falls_back_to_first_string_then_json() -> None:
    class Verdict(BaseModel):
        score: int
        why: str

    class Numbers(BaseModel):
        n: int

    assert reply_text(Turn(message="Hi")) == "Hi"
    assert reply_text(Verdict(score=1, why="clear")) == "clear"
    assert reply_text(Numbers(n=3)) == '{"n":3}'


async def test_speaker_node_speaks_as_the_policys_choice() -> None:
    model = scripted(said("Hello from Bo."))
    node = speaker_node(RoundRobin(), model=model)
    state = {"personas": [ADA, BO], "transcript": _entries(("Ada", "Hi"))}
    out = await node(state, {})
    assert out["transcript"][0].speaker == "Bo"
    assert out["next_speaker"] is None
    stranger = speaker_node(lambda s: "Cy", model=scripted(said("Who am I here?")))
    assert (await stranger({}, {}))["transcript"][0].speaker == "Cy"


async def test_decision_node_updates_state_and_records_a_note() -> None:
    class Verdict(BaseModel):
        winner: str

    node = decision_node(
        Verdict,
        prompt=lambda s: [HumanMessage(content="verdict:")],
        update=lambda s, v: {"winner": v.winner},
        speaker="Judge",
        kind="judge",
        describe=lambda v: f"{v.winner} wins",
        model=scripted({"winner": "Ada"}),
    )
    out = await node({}, {})
    assert out["winner"] == "Ada"
    assert out["transcript"][0].text == "Ada wins"
    assert out["transcript"][0].kind == "judge"
    silent = decision_node(
        Verdict,
        prompt=lambda s: [HumanMessage(content="v")],
        update=lambda s, v: {"winner": v.winner},
        record=False,
        model=scripted({"winner": "Bo"}),
    )
    assert await silent({}, {}) == {"winner": "Bo"}


async def test_director_choice_is_restricted_to_candidates() -> None:
    # The first reply names someone not in the cast: it fails validation and the
    # LLM layer asks again, with the error.
    model = scripted({"next_speaker": "Zed"}, {"next_speaker": "Bo"}, usage=(10, 5))
    node = director_choice_node(model=model)
    out = await node({"personas": [ADA, BO], "topic": "x"}, {})
    # no transcript entry: both attempts' tokens go to spent_tokens
    assert out == {"next_speaker": "Bo", "spent_tokens": 30}
    assert len(model.calls) == 2
    custom = director_choice_node(
        candidates=["Ada"],
        prompt=lambda s: [HumanMessage(content="who?")],
        model=scripted({"next_speaker": "Ada"}, usage=(3, 1)),
    )
    assert await custom({}, {}) == {"next_speaker": "Ada", "spent_tokens": 4}
    with pytest.raises(ValueError, match="no candidates"):
        await director_choice_node(model=scripted())({}, {})


async def test_a_director_that_names_nobody_of_the_cast_lets_them_take_turns() -> None:
    model = scripted({"next_speaker": "Zed"}, repeat_last=True, usage=(10, 5))
    node = director_choice_node(model=model)
    cast = {"personas": [ADA, BO], "topic": "x"}
    first = await node(cast, {})
    assert first["next_speaker"] == "Ada"  # nobody spoke yet
    # what the failed attempts spent still counts
    assert first["spent_tokens"] == 15 * len(model.calls) > 15
    spoke = [TranscriptEntry(speaker="Ada", text="Hi.")]
    assert (await node({**cast, "transcript": spoke}, {}))["next_speaker"] == "Bo"
    spoke.append(TranscriptEntry(speaker="Bo", text="Hello."))
    assert (await node({**cast, "transcript": spoke}, {}))["next_speaker"] == "Ada"


def _human_graph(saver: InMemorySaver) -> Any:
    builder = StateGraph(DialogueState)
    builder.add_node("host", persona_node(ADA, model=scripted(said("Why tea?"))))
    builder.add_node("guest", human_node("Guest", choices=()))
    builder.add_edge(START, "host")
    builder.add_edge("host", "guest")
    builder.add_edge("guest", END)
    return builder.compile(checkpointer=saver)


async def test_human_node_pauses_and_continues_with_the_answer(
    saver: InMemorySaver,
) -> None:
    graph = _human_graph(saver)
    config: Any = {"configurable": {"thread_id": "h"}}
    await graph.ainvoke({"topic": "tea"}, config)
    state = await graph.aget_state(config)
    (paused,) = state.interrupts
    assert paused.value["speaker"] == "Guest"
    assert paused.value["prompt"] == "Why tea?"
    assert paused.value["asked_by"] == "Ada"
    out = await graph.ainvoke(Command(resume="  It is calm. "), config)
    assert [(e.speaker, e.kind, e.text) for e in out["transcript"]] == [
        ("Ada", "persona", "Why tea?"),
        ("Guest", "human", "It is calm."),
    ]


async def test_human_node_refuses_a_wrong_answer_type(saver: InMemorySaver) -> None:
    graph = _human_graph(saver)
    config: Any = {"configurable": {"thread_id": "h2"}}
    await graph.ainvoke({"topic": "tea"}, config)
    with pytest.raises(ResumeError, match="must be text"):
        await graph.ainvoke(Command(resume={"not": "text"}), config)


async def test_human_node_without_a_previous_turn_shows_the_topic() -> None:
    graph = StateGraph(DialogueState)
    graph.add_node("guest", human_node())
    graph.add_edge(START, "guest")
    compiled = graph.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t"}}
    await compiled.ainvoke({"topic": "Introduce yourself"}, config)
    (paused,) = (await compiled.aget_state(config)).interrupts
    assert paused.value["prompt"] == "Introduce yourself"
    assert paused.value["asked_by"] is None


def test_director_chooses_is_exported_for_speaker_nodes() -> None:
    assert DirectorChooses()({"personas": [ADA], "next_speaker": "Ada"}) == "Ada"
