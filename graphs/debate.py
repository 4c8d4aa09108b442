"""Debate: two sides argue a motion for N rounds; a judge returns a typed verdict.

Input: ``{"motion": "...", "rounds": 1}``. The Proposition opens, the sides alternate
(round-robin) until each spoke ``rounds`` times, then the Judge answers with a
:class:`Verdict` (winner and reasons), stored in ``state["verdict"]``.

Each side's turn is asked for its side explicitly (a stage direction naming the
motion and FOR or AGAINST); a turn that restates the motion for the wrong side is
asked again once. The Judge's reasons must name a side or quote a turn (else asked
again, then replaced by a pointer at the winner's turn).

    dialogllm run debate --input '{"motion": "Cities should ban cars", "rounds": 2}'
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import (
    MaxTurns,
    RoundRobin,
    decision_node,
    grounded,
    persona_node,
    stop_or,
    transcript_text,
)
from dialogllm.models import DialogueState, Persona
from dialogllm.readability import is_junk, overlap, words

__all__ = ["Argument", "DebateInput", "DebateState", "Verdict", "build_graph", "graph"]


class DebateInput(BaseModel):
    """What a debate starts from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    motion: str = Field(min_length=3, max_length=300)
    rounds: int = Field(default=1, ge=1, le=10)


class DebateState(DialogueState, total=False):
    """Dialogue state plus the motion, the number of rounds and the verdict."""

    motion: str
    rounds: int
    verdict: dict[str, Any] | None


class Argument(BaseModel):
    """A debater's turn."""

    message: str = Field(min_length=1, max_length=1200)


Reason = Annotated[str, Field(min_length=1, max_length=300)]


class Verdict(BaseModel):
    """The judge's decision: each reason names a side or quotes a turn."""

    winner: Literal["Proposition", "Opposition"]
    reasons: list[Reason] = Field(min_length=1, max_length=3)


PROPOSITION = Persona(
    name="Proposition", role="argues for the motion", style="concrete and brief"
)
OPPOSITION = Persona(
    name="Opposition", role="argues against the motion", style="concrete and brief"
)
SIDES = (PROPOSITION, OPPOSITION)


RULES = (
    "Proposition argues for the motion, Opposition against it. Each speaker "
    "answers the other in one or two clear sentences of their own, never "
    "repeating the other side's words."
)

_NEGATIONS = frozenset(
    {"not", "no", "never", "against", "oppose", "wrong", "nor", "without"}
    | {"shouldn't", "don't", "isn't", "aren't", "won't", "can't", "cannot"}
)


def _direction(side: Persona) -> Any:
    """The stage direction of ``side``'s turn: its side of the motion, by name."""
    stance = "FOR" if side is PROPOSITION else "AGAINST"
    other = OPPOSITION if side is PROPOSITION else PROPOSITION

    def direction(state: Any) -> str:
        motion = str(state.get("motion") or "").strip().rstrip(".")
        opened = any(e.is_turn for e in state.get("transcript") or ())
        task = (
            f"answers {other.name} with a new reason"
            if opened
            else "opens the debate with its strongest reason"
        )
        return f'({side.name} argues {stance} the motion "{motion}" and {task}.)'

    return direction


def _argues_other_side(side: Persona) -> Any:
    """A check of ``side``'s turns: a turn that restates the motion without a
    negation argues for it (wrong for the Opposition); one that restates it with a
    negation argues against it (wrong for the Proposition)."""

    def check(state: Any, text: str) -> str | None:
        motion = str(state.get("motion") or "")
        if overlap(motion, text) < 0.5:
            return None
        negated = bool(_NEGATIONS & set(words(text)) - set(words(motion)))
        if side is OPPOSITION and not negated:
            return "Opposition argues AGAINST the motion, not for it"
        if side is PROPOSITION and negated:
            return "Proposition argues FOR the motion, not against it"
        return None

    return check


def _judge_prompt(state: Any) -> list[BaseMessage]:
    system = (
        f"A debate on the motion: {state.get('motion', '')}\n"
        "Proposition argues for it, Opposition against it. After the debate the "
        "Judge names the side that argued better and gives one or two reasons; "
        "each reason names a side and what it said."
    )
    lines = transcript_text(state.get("transcript") or [], window=40)
    return [
        SystemMessage(content=system),
        HumanMessage(content=f"Transcript:\n{lines}\nJudge's verdict:"),
    ]


def _turns(state: Any) -> list[Any]:
    return [e for e in state.get("transcript") or () if e.is_turn]


def _verdict_problems(state: Any, verdict: Verdict) -> list[str]:
    turns = _turns(state)
    return [
        f'the reason "{r[:60]}" names no side and quotes no turn'
        for r in verdict.reasons
        if is_junk(r) or not grounded(r, turns)
    ]


def _verdict_repair(state: Any, verdict: Verdict) -> Verdict:
    """Keep the grounded reasons; with none, point at the winner's last turn."""
    turns = _turns(state)
    kept = [r for r in verdict.reasons if not is_junk(r) and grounded(r, turns)]
    if not kept:
        loser = "Opposition" if verdict.winner == "Proposition" else "Proposition"
        said = [i for i, e in enumerate(turns, 1) if e.speaker == verdict.winner]
        where = f"in turn {said[-1]}" if said else "last"
        kept = [f"{verdict.winner} made the point {where} that {loser} left open."]
    return verdict.model_copy(update={"reasons": kept})


def _verdict_update(state: Any, verdict: Verdict) -> dict[str, Any]:
    return {
        "verdict": verdict.model_dump(mode="json"),
        "concluded": True,
        "stop_reason": f"{2 * int(state.get('rounds', 1))} turns argued",
    }


def build_graph(
    *, model: BaseChatModel | None = None, max_tokens: int = 96
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the debate graph (``model=None``: the run's or the default model).

    >>> debate = build_graph()
    """
    names = [p.name for p in SIDES]
    until = MaxTurns(lambda s: 2 * int(s.get("rounds", 1)))
    builder = StateGraph(DebateState, input_schema=DebateInput)
    for side in SIDES:
        builder.add_node(
            side.name,
            persona_node(
                side,
                schema=Argument,
                participants=SIDES,
                instructions=RULES,
                max_tokens=max_tokens,
                model=model,
                direction=_direction(side),
                check=_argues_other_side(side),
            ),
        )
        builder.add_conditional_edges(
            side.name,
            stop_or(until, RoundRobin(names), end="judge"),
            [*names, "judge"],
        )
    builder.add_node(
        "judge",
        decision_node(
            Verdict,
            prompt=_judge_prompt,
            update=_verdict_update,
            speaker="Judge",
            kind="judge",
            role="judge",
            describe=lambda v: f"{v.winner} wins: " + " ".join(v.reasons),
            max_tokens=max_tokens,
            model=model,
            check=_verdict_problems,
            repair=_verdict_repair,
            guard="verdict",
        ),
    )
    builder.add_edge(START, PROPOSITION.name)
    builder.add_edge("judge", END)
    return builder.compile(name="debate")


graph = build_graph()
