"""The dialogue data: personas, replies, transcript entries and the delta reducer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError

from dialogllm.models import (
    DialogueState,
    HumanRequest,
    Persona,
    SpeakerChoice,
    Transcript,
    TranscriptEntry,
    Turn,
    append_entries,
)


def _entry(speaker: str, text: str, **kw: Any) -> TranscriptEntry:
    return TranscriptEntry(speaker=speaker, text=text, **kw)


def test_append_entries_is_batching_invariant() -> None:
    writes: list[Any] = [
        _entry("A", "1"),
        [_entry("B", "2"), _entry("A", "3")],
        None,
        [],
        _entry("B", "4"),
    ]
    whole = append_entries([], writes)
    for cut in range(len(writes) + 1):
        split = append_entries(append_entries([], writes[:cut]), writes[cut:])
        assert split == whole
    assert [e.index for e in whole] == [0, 1, 2, 3]
    assert [e.text for e in whole] == ["1", "2", "3", "4"]


def test_append_entries_accepts_plain_dicts_and_leaves_input_alone() -> None:
    start = [_entry("A", "1")]
    out = append_entries(start, [[{"speaker": "B", "text": "2"}]])
    assert len(start) == 1
    assert out[1] == out[1].model_copy(update={"index": 1})
    assert out[1].speaker == "B"


def test_entry_counts_tokens_and_tells_turns_from_notes() -> None:
    turn = _entry("A", "x", prompt_tokens=3, completion_tokens=4)
    note = _entry("Judge", "y", kind="judge")
    assert (turn.tokens, turn.is_turn, note.is_turn) == (7, True, False)
    with pytest.raises(ValidationError):
        _entry("A", "x", prompt_tokens=-1)


def test_persona_rejects_names_that_break_a_transcript_line() -> None:
    with pytest.raises(ValidationError):
        Persona(name="Ada: the first")
    with pytest.raises(ValidationError):
        Persona(name="two\nlines")
    p = Persona(name=" Ada ", role="mathematician", goals=("a", "b"), style="dry")
    assert p.name == "Ada"
    assert p.describe() == "Ada, mathematician. Goals: a; b. Style: dry."
    assert Persona(name="Bo").describe() == "Bo."
    with pytest.raises(ValidationError):
        p.name = "Eve"  # type: ignore[misc]


def test_reply_models_export_json_schemas() -> None:
    for model in (Persona, Turn, SpeakerChoice, TranscriptEntry, Transcript):
        schema = model.model_json_schema()
        assert schema["type"] == "object"
    assert Turn.model_validate_json('{"message": "hi", "junk": 1}').message == "hi"
    with pytest.raises(ValidationError):
        Turn(message="")


def test_transcript_exports_markdown_and_json_round_trip() -> None:
    t = Transcript(
        thread_id="t-1",
        graph="debate",
        title="Tea *beats* coffee",
        entries=(
            _entry("Ada", "Line one\nline two", completion_tokens=2),
            _entry("Judge", "Ada wins", kind="judge", prompt_tokens=1),
            _entry("Bo", "ok"),
        ),
    )
    md = t.to_markdown()
    assert md.startswith("# Tea \\*beats\\* coffee\n")
    assert "graph: `debate`" in md
    assert "**Ada:** Line one  \nline two" in md
    assert "*Judge (judge):* Ada wins" in md
    assert [e.speaker for e in t.turns] == ["Ada", "Bo"]
    assert t.speakers == ("Ada", "Judge", "Bo")
    assert t.total_tokens == 3
    again = Transcript.from_json(t.to_json())
    assert again == t
    assert json.loads(t.to_json(indent=None))["thread_id"] == "t-1"
    assert Transcript().to_markdown() == "# Dialogue\n"


def test_human_request_checks_answers() -> None:
    req = HumanRequest(
        speaker="Cand", prompt="Why?", max_chars=5, choices=("yes", "no")
    )
    assert req.check_answer(" yes ") == "yes"
    for bad, why in ((3, "must be text"), ("  ", "empty"), ("maybe", "one of")):
        with pytest.raises(ValueError, match=why):
            req.check_answer(bad)
    with pytest.raises(ValueError, match="at most 5"):
        HumanRequest(speaker="C", max_chars=5).check_answer("toolong")


async def test_a_checkpoint_stores_only_the_new_turn() -> None:
    def speak(state: DialogueState) -> dict[str, Any]:
        n = len(state.get("transcript") or [])
        return {"transcript": [_entry("A" if n % 2 == 0 else "B", f"turn {n}")]}

    def route(state: DialogueState) -> str:
        return END if len(state.get("transcript") or []) >= 5 else "speak"

    builder = StateGraph(DialogueState)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", route, ["speak", END])
    saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": "delta"}}
    out = await graph.ainvoke({"topic": "x"}, config)
    assert [e.index for e in out["transcript"]] == [0, 1, 2, 3, 4]
    latest = await saver.aget_tuple(config)
    assert latest is not None
    assert "transcript" not in latest.checkpoint["channel_values"]
    state = await graph.aget_state(config)
    assert [e.text for e in state.values["transcript"]][-1] == "turn 4"
