"""Debate: two sides argue a motion for N rounds; a judge returns a typed verdict.

Input: ``{"motion": "...", "rounds": 1}``. The Proposition opens, the sides alternate
(round-robin) until each spoke ``rounds`` times, then the Judge answers with a
:class:`Verdict` (winner and reasons), stored in ``state["verdict"]``.

    dialogllm run debate --input '{"motion": "Cities should ban cars", "rounds": 2}'
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import (
    MaxTurns,
    RoundRobin,
    decision_node,
    persona_node,
    stop_or,
    transcript_text,
)
from dialogllm.models import DialogueState, Persona

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


class Verdict(BaseModel):
    """The judge's decision."""

    winner: Literal["Proposition", "Opposition"]
    reasons: list[str] = Field(min_length=1, max_length=3)


PROPOSITION = Persona(
    name="Proposition", role="argues for the motion", style="concrete and brief"
)
OPPOSITION = Persona(
    name="Opposition", role="argues against the motion", style="concrete and brief"
)
SIDES = (PROPOSITION, OPPOSITION)


RULES = (
    "Proposition argues for the motion, Opposition against it. Each speaker "
    "answers the other in one or two clear sentences."
)


def _judge_prompt(state: Any) -> list[BaseMessage]:
    system = (
        f"A debate on the motion: {state.get('motion', '')}\n"
        "Proposition argues for it, Opposition against it. After the debate the "
        "Judge names the side that argued better and gives short reasons."
    )
    lines = transcript_text(state.get("transcript") or [], window=40)
    return [
        SystemMessage(content=system),
        HumanMessage(content=f"Transcript:\n{lines}\nJudge's verdict:"),
    ]


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
        ),
    )
    builder.add_edge(START, PROPOSITION.name)
    builder.add_edge("judge", END)
    return builder.compile(name="debate")


graph = build_graph()
