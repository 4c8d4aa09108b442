"""Directed dialogue: a director sets the scene, personas converse, the director
concludes, an analyst reviews the transcript.

Input: ``{"topic": "...", "cast_size": 2, "max_turns": 4}`` (optionally ``"cast"``: your
own personas, and ``"turn_taking": "director"`` to let the director pick each speaker).

1. ``setup``: the director writes the scenario and the cast (typed :class:`Scenario`);
2. ``choose`` (director mode only) and ``speak``: personas take turns;
3. ``review``: after each full round the director decides whether to conclude
   (typed :class:`Review`);
4. ``conclude``: the director's conclusion (typed :class:`Conclusion`), when the
   director decided, a persona ended, or ``max_turns`` is reached;
5. ``analyze``: a typed :class:`Analysis` of the finished transcript — sentiment per
   speaker, factual claims to check, privacy flags.

    dialogllm run directed_dialogue --topic "Should we rewrite it in Rust?"
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import (
    DirectorChooses,
    JudgeDecided,
    MaxTurns,
    PersonaEnded,
    decision_node,
    director_choice_node,
    scene_text,
    speaker_node,
    transcript_text,
)
from dialogllm.models import DialogueState, Persona, Turn

__all__ = [
    "Analysis",
    "CastMember",
    "Conclusion",
    "DirectedInput",
    "DirectedState",
    "Review",
    "Scenario",
    "SpeakerSentiment",
    "build_graph",
    "graph",
]


class DirectedInput(BaseModel):
    """What a directed dialogue starts from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    topic: str = Field(min_length=3, max_length=300)
    cast_size: int = Field(default=2, ge=2, le=4, description="How many personas.")
    max_turns: int = Field(default=4, ge=1, le=40)
    turn_taking: Literal["round_robin", "director"] = "round_robin"
    cast: list[Persona] | None = Field(
        default=None,
        description="Your own cast (the director then only sets the scene).",
    )


class DirectedState(DialogueState, total=False):
    """Dialogue state plus the run's settings and the director's and analyst's
    output."""

    cast_size: int
    max_turns: int
    turn_taking: str
    cast: list[Persona] | None
    conclusion: str | None
    analysis: dict[str, Any] | None


class CastMember(BaseModel):
    """One persona the director invents."""

    name: str = Field(min_length=1, max_length=20, pattern=r"^[^:\n]+$")
    role: str = Field(default="", max_length=32)


class Scenario(BaseModel):
    """The director's set-up (short fields: a small model must fit the whole cast
    in its token budget)."""

    setting: str = Field(min_length=1, max_length=120)
    cast: list[CastMember] = Field(min_length=1, max_length=4)


class Review(BaseModel):
    """The director's decision after a round."""

    conclude: bool
    reason: str = Field(default="", max_length=200)


class Conclusion(BaseModel):
    """The director's closing summary."""

    summary: str = Field(min_length=1, max_length=800)


Note = Annotated[str, Field(min_length=3, max_length=160)]


class SpeakerSentiment(BaseModel):
    """How one speaker came across."""

    speaker: str = Field(max_length=40)
    sentiment: Literal["positive", "neutral", "negative"]


class Analysis(BaseModel):
    """The analyst's pass over the finished transcript."""

    sentiment: list[SpeakerSentiment] = Field(default_factory=list, max_length=6)
    claims_to_check: list[Note] = Field(default_factory=list, max_length=5)
    privacy_flags: list[Note] = Field(default_factory=list, max_length=5)


def _cast_names(state: Any) -> list[str]:
    return [p.name for p in state.get("personas") or ()]


def _setup_prompt(state: Any) -> list[BaseMessage]:
    system = (
        "A director plans a short conversation for a radio play.\n"
        f"Topic: {state.get('topic', '')}\n"
        f"The director writes the setting in one sentence and names "
        f"{int(state.get('cast_size', 2))} characters with a short role each."
    )
    return [SystemMessage(content=system), HumanMessage(content="Director's plan:")]


def _setup_update(state: Any, plan: Scenario) -> dict[str, Any]:
    """The cast: the user's own if given, else the director's (unique names, padded
    or cut to ``cast_size``)."""
    given = state.get("cast")
    if given:
        own = [Persona.model_validate(p) for p in given]
        return {"scenario": plan.setting, "personas": own}
    size = int(state.get("cast_size", 2))
    cast: list[Persona] = []
    seen: set[str] = set()
    for member in plan.cast[:size]:
        name = " ".join(member.name.split())[:24]
        if name in seen:
            name = f"{name[:20]} {len(seen) + 1}"
        seen.add(name)
        cast.append(Persona(name=name, role=member.role[:200]))
    while len(cast) < size:
        cast.append(Persona(name=f"Speaker {len(cast) + 1}"))
    return {"scenario": plan.setting, "personas": cast}


def _director_prompt(question: str) -> Any:
    def prompt(state: Any) -> list[BaseMessage]:
        cast = list(state.get("personas") or ())
        lines = transcript_text(state.get("transcript") or [], window=20)
        return [
            SystemMessage(content=f"{scene_text(state, cast)}\n\n{question}"),
            HumanMessage(content=f"Transcript:\n{lines}\nDirector:"),
        ]

    return prompt


def _analysis_prompt(state: Any) -> list[BaseMessage]:
    lines = transcript_text(state.get("transcript") or [], window=40)
    system = (
        "An analyst reviews a finished conversation: the sentiment of each speaker "
        "(positive, neutral or negative), factual claims worth checking, and any "
        "private information (names, addresses, health, money) that was shared."
    )
    return [
        SystemMessage(content=system),
        HumanMessage(content=f"Transcript:\n{lines}\nAnalyst's report:"),
    ]


def build_graph(
    *, model: BaseChatModel | None = None, max_tokens: int = 128
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the directed-dialogue graph (``model=None``: the run's or the default).

    >>> directed = build_graph()
    """
    # A persona may end the dialogue once everyone has spoken (small models tend to
    # set the end flag on their first line).
    one_round = MaxTurns(lambda s: len(s.get("personas") or ()))
    until = (
        JudgeDecided()
        | (PersonaEnded() & one_round)
        | MaxTurns(lambda s: int(s.get("max_turns", 4)))
    )
    policy = DirectorChooses()
    builder = StateGraph(DirectedState, input_schema=DirectedInput)

    builder.add_node(
        "setup",
        decision_node(
            Scenario,
            prompt=_setup_prompt,
            update=_setup_update,
            speaker="Director",
            describe=lambda s: s.setting,
            max_tokens=4 * max_tokens,
            model=model,
        ),
    )
    builder.add_node(
        "choose",
        director_choice_node(
            prompt=_director_prompt("The director picks who speaks next."),
            model=model,
        ),
    )
    builder.add_node(
        "speak", speaker_node(policy, schema=Turn, max_tokens=max_tokens, model=model)
    )
    builder.add_node(
        "review",
        decision_node(
            Review,
            prompt=_director_prompt(
                "After each round the director decides whether the conversation "
                "has reached its point and should conclude."
            ),
            update=lambda s, r: {"concluded": r.conclude},
            speaker="Director",
            describe=lambda r: (
                ("Conclude: " if r.conclude else "Continue: ") + (r.reason or "-")
            ),
            max_tokens=max_tokens,
            model=model,
        ),
    )
    builder.add_node(
        "conclude",
        decision_node(
            Conclusion,
            prompt=_director_prompt(
                "The director closes with a one-paragraph summary."
            ),
            update=lambda s, c: {
                "conclusion": c.summary,
                "concluded": True,
                "stop_reason": until.check(s) or "concluded",
            },
            speaker="Director",
            text_field="summary",
            max_tokens=max_tokens,
            model=model,
        ),
    )
    builder.add_node(
        "analyze",
        decision_node(
            Analysis,
            prompt=_analysis_prompt,
            update=lambda s, a: {"analysis": a.model_dump(mode="json")},
            speaker="Analyst",
            kind="analyst",
            role="analyst",
            describe=lambda a: (
                f"{len(a.claims_to_check)} claims to check, "
                f"{len(a.privacy_flags)} privacy flags"
            ),
            max_tokens=2 * max_tokens,
            model=model,
        ),
    )

    def next_turn(state: Any) -> str:
        return "choose" if state.get("turn_taking") == "director" else "speak"

    def after_speak(state: Any) -> str:
        if until.check(state) is not None:
            return "conclude"
        names = _cast_names(state)
        turns = sum(1 for e in state.get("transcript") or () if e.is_turn)
        if names and turns % len(names) == 0:
            return "review"
        return next_turn(state)

    def after_review(state: Any) -> str:
        return "conclude" if until.check(state) is not None else next_turn(state)

    builder.add_edge(START, "setup")
    builder.add_conditional_edges("setup", next_turn, ["choose", "speak"])
    builder.add_edge("choose", "speak")
    builder.add_conditional_edges(
        "speak", after_speak, ["conclude", "review", "choose", "speak"]
    )
    builder.add_conditional_edges(
        "review", after_review, ["conclude", "choose", "speak"]
    )
    builder.add_edge("conclude", "analyze")
    builder.add_edge("analyze", END)
    return builder.compile(name="directed_dialogue")


graph = build_graph()
