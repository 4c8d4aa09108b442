"""Termination conditions (and/or) and turn-taking policies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dialogllm.core import (
    AllOf,
    AnyOf,
    DirectorChooses,
    JudgeDecided,
    MaxTurns,
    PersonaEnded,
    RoundRobin,
    TimeBudget,
    TokenBudget,
    stop_or,
)
from dialogllm.models import Persona, TranscriptEntry


def _state(*speakers: str, **extra: Any) -> dict[str, Any]:
    entries = [
        TranscriptEntry(speaker=s, text="x", completion_tokens=10) for s in speakers
    ]
    return {"transcript": entries, **extra}


def test_max_turns_counts_only_what_participants_said() -> None:
    state = _state("A", "B")
    state["transcript"].append(TranscriptEntry(speaker="J", text="n", kind="judge"))
    assert MaxTurns(3).check(state) is None
    assert MaxTurns(2).check(state) == "reached 2 turns"
    assert MaxTurns(lambda s: 2 * s["rounds"]).check({**state, "rounds": 1})
    with pytest.raises(ValueError):
        MaxTurns(-1)


def test_persona_ended_looks_at_the_last_turn_only() -> None:
    state = _state("A")
    state["transcript"][0] = state["transcript"][0].model_copy(
        update={"ends_dialogue": True}
    )
    assert PersonaEnded().check(state) == "A ended the dialogue"
    state["transcript"].append(TranscriptEntry(speaker="B", text="no"))
    assert PersonaEnded().check(state) is None
    assert PersonaEnded().check({}) is None


def test_judge_token_and_time_budgets() -> None:
    assert JudgeDecided().check({"concluded": False}) is None
    assert JudgeDecided("done").check({"done": True}) is not None
    assert TokenBudget(20).check(_state("A")) is None
    assert TokenBudget(20).check(_state("A", "B")) == "spent 20 of 20 tokens"
    # calls that wrote no entry (the director's choice) count too
    with_choices = {**_state("A"), "spent_tokens": 15}
    assert TokenBudget(20).check(with_choices) == "spent 25 of 20 tokens"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entry = TranscriptEntry(speaker="A", text="x", started_at=start)
    clock = start + timedelta(seconds=30)
    budget = TimeBudget(60, clock=clock.timestamp)
    assert budget.check({"transcript": [entry]}) is None
    late = TimeBudget(10, clock=clock.timestamp)
    assert late.check({"transcript": [entry]}) == "ran 30.0s of a 10s budget"
    for bad in (lambda: TokenBudget(0), lambda: TimeBudget(0)):
        with pytest.raises(ValueError):
            bad()


def test_conditions_compose_with_and_or() -> None:
    two, ended, judge = MaxTurns(2), PersonaEnded(), JudgeDecided()
    any_of = two | ended | judge
    assert isinstance(any_of, AnyOf) and len(any_of.conditions) == 3
    all_of = two & judge & MaxTurns(1)
    assert isinstance(all_of, AllOf) and len(all_of.conditions) == 3
    state = _state("A", "B")
    assert any_of(state) == "reached 2 turns"
    assert all_of(state) is None
    assert all_of({**state, "concluded": True}) == (
        "reached 2 turns and the judge decided to conclude and reached 1 turns"
    )
    assert AllOf().check(state) is None
    mixed = (two & judge) | ended
    assert repr(mixed) == "(MaxTurns(2) & JudgeDecided('concluded') | PersonaEnded())"
    assert "TokenBudget(5)" in repr(TokenBudget(5) | TimeBudget(3))


def test_stop_or_routes_to_end_or_next() -> None:
    route = stop_or(MaxTurns(2), RoundRobin(["A", "B"]), end="judge")
    assert route(_state("A")) == "B"
    assert route(_state("A", "B")) == "judge"
    assert stop_or(MaxTurns(5), "speak", end="x")(_state()) == "speak"


def test_round_robin_continues_after_the_last_speaker() -> None:
    rr = RoundRobin(["A", "B", "C"])
    assert rr(_state()) == "A"
    assert rr(_state("A", "B")) == "C"
    assert rr(_state("A", "B", "C")) == "A"
    assert rr(_state("Z")) == "A"
    from_state = RoundRobin()
    personas = [Persona(name="X"), {"name": "Y"}]
    assert from_state({**_state("X"), "personas": personas}) == "Y"
    with pytest.raises(ValueError, match="no speakers"):
        from_state(_state())
    assert "A" in repr(rr)


def test_director_choice_wins_over_round_robin_when_valid() -> None:
    policy = DirectorChooses(["A", "B"])
    assert policy({**_state("A"), "next_speaker": "A"}) == "A"
    assert policy({**_state("A"), "next_speaker": "Nobody"}) == "B"
    assert policy(_state()) == "A"
