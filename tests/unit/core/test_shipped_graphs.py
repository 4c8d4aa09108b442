"""The shipped graphs' logic with scripted models: turns, typed replies, termination."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.memory import InMemorySaver

from dialogllm.core import DialogueRunner, GraphRegistry
from dialogllm.errors import InputValidationError
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.loader import load_object
from tests.unit.core.conftest import said, scripted

ROOT_REFS = {
    name: f"graphs/{name}.py:graph"
    for name in ("debate", "interview", "directed_dialogue")
}


@pytest.fixture(autouse=True)
def _repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[3])


def _runner(model: Any) -> DialogueRunner:
    return DialogueRunner(InMemorySaver(), chat_model=model, registry=GraphRegistry())


async def _directed(model: Any, **inputs: Any) -> Any:
    """A directed dialogue of ``inputs`` on ``model``, run to its end."""
    async with _runner(model) as runner:
        return await runner.run(ROOT_REFS["directed_dialogue"], inputs)


async def test_debate_alternates_sides_then_the_judge_rules() -> None:
    model = scripted(
        said("Cars choke streets."),
        said("Cars carry the sick."),
        said("Buses do that."),
        said("Not at night."),
        {"winner": "Opposition", "reasons": ["Opposition answered every point."]},
    )
    async with _runner(model) as runner:
        result = await runner.run(
            ROOT_REFS["debate"], {"motion": "Ban cars", "rounds": 2}, thread_id="d"
        )
    speakers = [e.speaker for e in result.transcript.entries]
    assert speakers == ["Proposition", "Opposition"] * 2 + ["Judge"]
    assert result.values["verdict"] == {
        "winner": "Opposition",
        "reasons": ["Opposition answered every point."],
    }
    assert result.values["stop_reason"] == "4 turns argued"
    assert result.transcript.entries[-1].text.startswith("Opposition wins")


async def test_debate_refuses_an_empty_motion() -> None:
    async with _runner(scripted()) as runner:
        with pytest.raises(InputValidationError, match="motion"):
            await runner.run(ROOT_REFS["debate"], {"motion": ""})


async def test_interview_waits_for_the_candidate_each_question() -> None:
    model = scripted(said("What is a stream?"), said("And a group?"))
    async with _runner(model) as runner:
        ref = ROOT_REFS["interview"]
        first = await runner.run(ref, {"topic": "Redis", "questions": 2}, thread_id="i")
        assert first.request is not None
        assert first.request.prompt == "What is a stream?"
        second = await runner.resume("i", "A log.")
        assert second.status == "interrupted"
        done = await runner.resume("i", "Consumers sharing it.")
    assert done.status == "done"
    assert [(e.speaker, e.kind) for e in done.transcript.entries] == [
        ("Interviewer", "persona"),
        ("Candidate", "human"),
        ("Interviewer", "persona"),
        ("Candidate", "human"),
    ]


CAST = ("Ana", "Ben", "Cleo")


def _scene(cast: int = 2) -> dict[str, Any]:
    return {
        "setting": "A night train full of people who talk about trains and queues.",
        "cast": [
            {"name": CAST[i], "role": "a night-train traveller"} for i in range(cast)
        ],
    }


ANALYSIS = {
    "sentiment": [{"speaker": "Ana", "sentiment": "positive"}],
    "claims_to_check": ["Ana says trains are late."],
    "privacy_flags": [],
}


async def test_directed_dialogue_reviews_each_round_and_concludes() -> None:
    model = scripted(
        _scene(),
        said("Tickets please."),
        said("Here."),
        {"conclude": False, "reason": "just started"},
        said("Late again."),
        said("Always."),
        {"conclude": True, "reason": "point made"},
        {"summary": "Trains are late."},
        ANALYSIS,
    )
    async with _runner(model) as runner:
        result = await runner.run(
            ROOT_REFS["directed_dialogue"],
            {"topic": "night trains", "max_turns": 10},
            thread_id="dd",
        )
    values = result.values
    assert values["scenario"] == _scene()["setting"]
    assert [p.name for p in values["personas"]] == ["Ana", "Ben"]
    assert [e.speaker for e in result.transcript.turns] == ["Ana", "Ben", "Ana", "Ben"]
    assert values["conclusion"] == "Trains are late."
    assert values["stop_reason"] == "the judge decided to conclude"
    assert values["analysis"] == ANALYSIS
    kinds = [e.kind for e in result.transcript.entries]
    assert kinds[0] == "director" and kinds[-1] == "analyst"
    assert result.transcript.entries[-1].text == "1 claim to check, 0 privacy flags"


async def test_directed_dialogue_ends_well_when_no_analysis_or_summary_fits() -> None:
    # a small model that writes what the schema refuses, every attempt: the run
    # still ends, with a summary and an analysis that say where they came from
    model = scripted(
        _scene(),
        said("Tickets please."),
        said("Here."),
        *["not json"] * 3,  # the conclusion (2 turns end the dialogue: no review)
        *["not json"] * 3,  # the analysis
    )
    async with _runner(model) as runner:
        result = await runner.run(
            ROOT_REFS["directed_dialogue"], {"topic": "night trains", "max_turns": 2}
        )
    values = result.values
    assert values["conclusion"] == (
        "Ana, Ben talked over night trains; the director wrote no summary."
    )
    assert values["analysis"]["sentiment"] == [
        {"speaker": "Ana", "sentiment": "neutral"},
        {"speaker": "Ben", "sentiment": "neutral"},
    ]
    assert values["analysis"]["claims_to_check"][0].startswith(
        "What Ana says in turn 1"
    )
    flags = [e.flags for e in result.transcript.entries if e.flags]
    assert flags == [("conclusion_fallback",), ("analysis_fallback",)]
    assert len(model.calls) == 1 + 2 + 3 + 3  # every reply used, no more asked


async def test_directed_dialogue_falls_back_on_a_plan_and_a_review_that_never_fit() -> (
    None
):
    model = scripted(
        *["not json"] * 3,  # the plan: the fallback cast and setting
        said("Queues are long."),
        said("Longer on Mondays."),
        *["not json"] * 3,  # the review after the first round: go on
        said("Shorter on Fridays."),
        said("Not at lunch."),
        {"summary": "They compared the queues of the week."},
        *["not json"] * 3,  # the analysis
    )
    result = await _directed(model, topic="queues", max_turns=4)
    assert [p.name for p in result.values["personas"]] == ["Maya", "Tom"]
    assert result.values["scenario"].endswith("talk it over: queues.")
    assert len(result.transcript.turns) == 4
    flags = [e.flags for e in result.transcript.entries if e.flags]
    assert flags == [("cast_fallback",), ("review_fallback",), ("analysis_fallback",)]
    assert len(model.calls) == 3 + 2 + 3 + 2 + 1 + 3


async def test_directed_dialogue_with_director_choosing_and_max_turns() -> None:
    model = scripted(
        _scene(3),
        {"next_speaker": "Cleo"},
        said("I go first."),
        {"next_speaker": "Ana"},
        said("Then me."),
        {"summary": "Short."},
        ANALYSIS,
        usage=(10, 5),
    )
    async with _runner(model) as runner:
        result = await runner.run(
            ROOT_REFS["directed_dialogue"],
            {
                "topic": "queues",
                "cast_size": 3,
                "max_turns": 2,
                "turn_taking": "director",
            },
        )
    assert [e.speaker for e in result.transcript.turns] == ["Cleo", "Ana"]
    assert result.values["stop_reason"] == "reached 2 turns"
    # the two choices wrote no entry; their tokens are kept beside the transcript
    assert result.values["spent_tokens"] == 2 * 15
    assert result.tokens == result.transcript.total_tokens + 30 == 15 * len(model.calls)


async def test_an_ungrounded_analysis_of_short_turns_still_names_a_claim() -> None:
    # the model's notes name no speaker twice, and every turn is under three
    # words: the repair still points at each speaker's turn, and the analysis
    # keeps the one claim its schema requires
    loose = {**ANALYSIS, "claims_to_check": ["This is"], "privacy_flags": ["Yes"]}
    model = scripted(
        _scene(),
        said("Tickets."),
        said("Here, late."),
        {"summary": "Trains are late."},
        loose,
        loose,
    )
    async with _runner(model) as runner:
        result = await runner.run(
            ROOT_REFS["directed_dialogue"], {"topic": "trains", "max_turns": 2}
        )
    analysis = result.values["analysis"]
    assert analysis["claims_to_check"] == [
        'What Ana says in turn 1 ("Tickets. …").',
        'What Ben says in turn 2 ("Here, late. …").',
    ]
    assert analysis["privacy_flags"] == []
    assert result.transcript.entries[-1].flags == ("analysis_repaired",)


async def _analysed(*analyses: dict[str, Any]) -> Any:
    """A two-turn directed dialogue of Ana and Ben whose analyst answers
    ``analyses`` in order; the result and the model."""
    model = scripted(
        _scene(),
        said("Trains are late tonight."),
        said("Queues are long too."),
        {"summary": "They spoke of delays and crowds."},
        *analyses,
    )
    return await _directed(model, topic="trains", max_turns=2), model


async def test_an_analysis_names_speakers_as_they_spoke() -> None:
    spelt = {**ANALYSIS, "sentiment": [{"speaker": " ana ", "sentiment": "positive"}]}
    result, model = await _analysed(spelt)
    assert result.values["analysis"]["sentiment"] == [
        {"speaker": "Ana", "sentiment": "positive"}
    ]
    assert result.transcript.entries[-1].flags == ()
    assert len(model.calls) == 5  # no re-ask for a name's case
    assert "The speakers are Ana, Ben; name each" in str(model.calls[-1][0].content)


async def test_a_sentiment_of_one_who_did_not_speak_is_asked_again_then_goes() -> None:
    strangers = {
        **ANALYSIS,
        "sentiment": [
            {"speaker": "negative", "sentiment": "neutral"},
            {"speaker": "ben", "sentiment": "negative"},
        ],
    }
    result, model = await _analysed(strangers, strangers)
    assert result.values["analysis"]["sentiment"] == [
        {"speaker": "Ben", "sentiment": "negative"}
    ]
    assert result.transcript.entries[-1].flags == ("analysis_repaired",)
    asked_again = " ".join(str(m.content) for m in model.calls[-1])
    assert '"negative" did not speak here; name one of: Ana, Ben' in asked_again


async def test_an_analysis_naming_nobody_who_spoke_gives_each_speaker_neutral() -> None:
    nobody = {**ANALYSIS, "sentiment": [{"speaker": "B", "sentiment": "positive"}]}
    result, _ = await _analysed(nobody, nobody)
    assert result.values["analysis"]["sentiment"] == [
        {"speaker": "Ana", "sentiment": "neutral"},
        {"speaker": "Ben", "sentiment": "neutral"},
    ]
    assert result.values["analysis"]["claims_to_check"] == ANALYSIS["claims_to_check"]
    assert result.transcript.entries[-1].flags == ("analysis_repaired",)


async def test_directed_dialogue_keeps_a_given_cast_and_fills_a_short_one() -> None:
    said_so_far: list[str] = []

    def reply(messages: list[BaseMessage]) -> str:
        system, last = str(messages[0].content), str(messages[1].content)
        if last.endswith("Director's plan:"):
            return json.dumps(
                {"setting": "Lab.", "cast": [{"name": "X"}, {"name": "X"}]}
            )
        if last.endswith("Analyst's report:"):
            return json.dumps(ANALYSIS)
        if "decides whether" in system:
            return json.dumps({"conclude": False})
        if last.endswith("Director:"):
            return json.dumps({"summary": "They compared their labs."})
        said_so_far.append(f"Line number {len(said_so_far)} is about my lab.")
        return said(said_so_far[-1], end=True)

    async with _runner(ScriptedChatModel(reply_fn=reply)) as runner:
        own = await runner.run(
            ROOT_REFS["directed_dialogue"],
            {"topic": "labs", "cast": [{"name": "Ann"}, {"name": "Ben"}]},
        )
        made = await runner.run(
            ROOT_REFS["directed_dialogue"], {"topic": "labs", "cast_size": 3}
        )
    assert [p.name for p in own.values["personas"]] == ["Ann", "Ben"]
    # every turn asks to end; a persona may end only after the requested 4 turns,
    # and the reason names the one who spoke last
    assert [e.speaker for e in own.transcript.turns] == ["Ann", "Ben"] * 2
    assert own.values["stop_reason"] == "Ben ended the dialogue"
    names = [p.name for p in made.values["personas"]]
    assert names == ["Maya", "Tom", "Priya"]
    assert all("labs" in p.role for p in made.values["personas"])
    setup = made.transcript.entries[0]
    assert setup.flags == ("cast_repaired",) and setup.reasks == 1
    # the repaired plan is still a valid Scenario (its roles fit the schema)
    assert setup.reply is not None and setup.reply_schema == "Scenario"
    load_object("graphs/directed_dialogue.py:Scenario").model_validate(setup.reply)
