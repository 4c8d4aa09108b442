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

Guards (:mod:`dialogllm.core.guards`): the cast has exactly ``cast_size`` people
with distinct names and roles tied to the topic (asked again, then sensible
defaults — never "Speaker 2"); a persona may end the dialogue only after
``DIALOGLLM_GUARD_PERSONA_END_MIN_TURNS`` turns (default: all ``max_turns``; the
director may still conclude); the conclusion may not copy a turn; the analysis
has at least one claim, and every claim and flag quotes or names a turn's speaker.

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
    get_guard_settings,
    grounded,
    junk_problems,
    scene_text,
    speaker_node,
    transcript_text,
)
from dialogllm.models import DialogueState, Persona, Turn
from dialogllm.readability import copies, is_junk, words

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


Note = Annotated[str, Field(min_length=1, max_length=160)]


class SpeakerSentiment(BaseModel):
    """How one speaker came across."""

    speaker: str = Field(max_length=40)
    sentiment: Literal["positive", "neutral", "negative"]


class Analysis(BaseModel):
    """The analyst's pass over the finished transcript."""

    sentiment: list[SpeakerSentiment] = Field(min_length=1, max_length=6)
    claims_to_check: list[Note] = Field(min_length=1, max_length=5)
    privacy_flags: list[Note] = Field(default_factory=list, max_length=5)


def _cast_names(state: Any) -> list[str]:
    return [p.name for p in state.get("personas") or ()]


def _setup_prompt(state: Any) -> list[BaseMessage]:
    size = int(state.get("cast_size", 2))
    system = (
        "A director plans a short conversation for a radio play.\n"
        f"Topic: {state.get('topic', '')}\n"
        f"The director writes the setting in one sentence about the topic and "
        f"names exactly {size} characters, each with a first name of their own and "
        "a short role that ties them to the topic."
    )
    return [SystemMessage(content=system), HumanMessage(content="Director's plan:")]


NAMES = ("Maya", "Tom", "Priya", "Leo", "Ines", "Kofi")
"""First names the director's cast falls back on."""

DEFAULT_ROLES = (
    "sees what could go well with",
    "doubts the case for",
    "has lived with the question of",
    "counts the costs of",
)
"""Roles of a fallback cast (each fits ``CastMember.role``); a persona's role is
one followed by the quoted topic."""

_NOT_NAMES = frozenset(
    {"speaker", "character", "person", "name", "director", "narrator", "someone"}
    | {"participant", "man", "woman", "the", "a", "an", "role", "host", "guest"}
)
_STOP = frozenset(
    {"should", "would", "could", "their", "there", "about", "with", "from", "that"}
    | {"this", "what", "which", "when", "where", "your", "they", "them", "good"}
)


def _stems(text: str) -> set[str]:
    return {w[:5] for w in words(text) if len(w) >= 4 and w not in _STOP}


def _name_ok(name: str) -> bool:
    parts = name.split()
    return (
        1 <= len(parts) <= 3
        and len(name) >= 2
        and all(p[:1].isupper() and p.replace("-", "").isalpha() for p in parts)
        and not set(words(name)) & _NOT_NAMES
    )


def _role_ok(role: str, state: Any, setting: str) -> bool:
    if is_junk(role) or len(words(role)) < 2:
        return False
    return bool(
        _stems(role) & (_stems(str(state.get("topic") or "")) | _stems(setting))
    )


def _setting_ok(setting: str, state: Any) -> bool:
    topic = _stems(str(state.get("topic") or ""))
    return len(words(setting)) >= 4 and (not topic or bool(_stems(setting) & topic))


def _scenario_problems(state: Any, plan: Scenario) -> list[str]:
    if state.get("cast") or not get_guard_settings().cast_check:
        return []
    size = int(state.get("cast_size", 2))
    problems: list[str] = []
    if len(plan.cast) != size:
        problems.append(f"name exactly {size} characters, not {len(plan.cast)}")
    names = [" ".join(m.name.split()) for m in plan.cast]
    if len({n.lower() for n in names}) != len(names):
        problems.append("give every character a different name")
    bad = [n for n in names if not _name_ok(n)]
    if bad:
        problems.append("not a first name: " + ", ".join(bad))
    if any(not _role_ok(m.role, state, plan.setting) for m in plan.cast):
        problems.append("give every character a role tied to the topic")
    if not _setting_ok(plan.setting, state):
        problems.append("write the setting as a sentence about the topic")
    return problems


def _topic(state: Any) -> str:
    """The topic on one line, without a closing full stop."""
    return " ".join(str(state.get("topic") or "").split()).rstrip(".")


def _scenario_repair(state: Any, plan: Scenario) -> Scenario:
    """Exactly ``cast_size`` members: the director's good names and roles kept,
    the rest from :data:`NAMES` and :data:`DEFAULT_ROLES` (never "Speaker 2")."""
    size = int(state.get("cast_size", 2))
    topic = _topic(state)
    asked = topic if topic.endswith(("?", "!")) else f"{topic}."
    fallback = f"Friends who know the question well talk it over: {asked}"
    if len(fallback) > 120:
        fallback = "Friends who know the question well talk it over."
    setting = plan.setting if _setting_ok(plan.setting, state) else fallback
    used: set[str] = set()
    cast: list[CastMember] = []
    for member in plan.cast[:size]:
        name = " ".join(member.name.split())
        if not _name_ok(name) or name.lower() in used:
            continue
        used.add(name.lower())
        cast.append(member.model_copy(update={"name": name}))
    pool = (n for n in NAMES if n.lower() not in used)
    while len(cast) < size:
        cast.append(CastMember(name=next(pool)))
    fixed = [
        m
        if _role_ok(m.role, state, setting)
        else m.model_copy(update={"role": DEFAULT_ROLES[i % 4]})
        for i, m in enumerate(cast)
    ]
    return Scenario(setting=setting, cast=fixed)


def _counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1.

    >>> _counted(1, "claim"), _counted(0, "privacy flag")
    ('1 claim', '0 privacy flags')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _persona_role(role: str, state: Any) -> str:
    """The persona's role: the director's, or a fallback one with its topic."""
    if role in DEFAULT_ROLES:
        topic = _topic(state)
        role = f'{role} "{topic}"'
    return role[:200]


def _setup_update(state: Any, plan: Scenario) -> dict[str, Any]:
    """The cast: the user's own if given, else the director's (distinct names, cut
    or filled from :data:`NAMES` to ``cast_size``)."""
    given = state.get("cast")
    if given:
        own = [Persona.model_validate(p) for p in given]
        return {"scenario": plan.setting, "personas": own}
    size = int(state.get("cast_size", 2))
    cast: list[Persona] = []
    seen: set[str] = set()
    for member in plan.cast[:size]:
        name = " ".join(member.name.split())[:24]
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        cast.append(Persona(name=name, role=_persona_role(member.role, state)))
    spare = (n for n in NAMES if n.lower() not in seen)
    while len(cast) < size:
        cast.append(Persona(name=next(spare)))
    return {"scenario": plan.setting, "personas": cast}


def _review_update(state: Any, review: Review) -> dict[str, Any]:
    """The director's review concludes only after ``DIRECTOR_MIN_ROUNDS`` rounds (a
    small director concludes after the first one)."""
    rounds = get_guard_settings().director_min_rounds
    turns = sum(1 for e in state.get("transcript") or () if e.is_turn)
    early = turns < rounds * len(_cast_names(state))
    return {"concluded": review.conclude and not early}


def _spoken(state: Any) -> list[Any]:
    return [e for e in state.get("transcript") or () if e.is_turn]


def _conclusion_problems(state: Any, conclusion: Conclusion) -> list[str]:
    problems = junk_problems([conclusion.summary])
    if copies(conclusion.summary, [e.text for e in _spoken(state)]):
        problems.append("sum up in your own words, do not copy a speaker's line")
    return problems


def _speakers(state: Any) -> list[str]:
    """Who spoke, in order of their first turn (as a sentiment names them)."""
    return list(dict.fromkeys(e.speaker[:40] for e in _spoken(state)))


def _folded(name: str) -> str:
    """``name`` as names are compared: case and spacing aside."""
    return " ".join(name.split()).casefold()


def _named_sentiment(state: Any, analysis: Analysis) -> list[SpeakerSentiment]:
    """The analysis's sentiments of people who spoke, each spelt as the transcript
    spells them (``"maya"`` is Maya), the first per speaker; the rest go."""
    known = {_folded(name): name for name in _speakers(state)}
    named: dict[str, SpeakerSentiment] = {}
    for entry in analysis.sentiment:
        name = known.get(_folded(entry.speaker))
        if name is not None and name not in named:
            named[name] = entry.model_copy(update={"speaker": name})
    return list(named.values())


def _analysis_problems(state: Any, analysis: Analysis) -> list[str]:
    turns = _spoken(state)
    notes = [*analysis.claims_to_check, *analysis.privacy_flags]
    loose = [n for n in notes if is_junk(n) or not grounded(n, turns)]
    problems = [f'"{n[:50]}" names no speaker and quotes no turn' for n in loose]
    speakers = _speakers(state)
    known = {_folded(name) for name in speakers}
    problems += [
        f'"{e.speaker}" did not speak here; name one of: {", ".join(speakers)}'
        for e in analysis.sentiment
        if speakers and _folded(e.speaker) not in known
    ]
    return problems


def _analysis_tidy(state: Any, analysis: Analysis) -> dict[str, Any]:
    """The analysis as the state keeps it: its speakers spelt as they spoke."""
    named = _named_sentiment(state, analysis)
    tidy = analysis.model_copy(update={"sentiment": named}) if named else analysis
    return {"analysis": tidy.model_dump(mode="json")}


def _analysis_repair(state: Any, analysis: Analysis) -> Analysis:
    """Keep the grounded notes; with no claim left, point at each speaker's
    longest turn (quoting its opening words), so the analysis always has the
    claim its schema requires. Keep the sentiments of people who spoke; with
    none left, every speaker is neutral (the entry is flagged repaired)."""
    turns = _spoken(state)
    claims = [
        n for n in analysis.claims_to_check if not is_junk(n) and grounded(n, turns)
    ]
    if not claims:
        for speaker in dict.fromkeys(e.speaker for e in turns):
            number, said = max(
                ((i, e.text) for i, e in enumerate(turns, 1) if e.speaker == speaker),
                key=lambda turn: len(words(turn[1])),
            )
            opening = " ".join(said.split()[:5])
            quote = f' ("{opening} …")' if words(opening) else ""
            claims.append(f"What {speaker[:40]} says in turn {number}{quote}.")
    if not claims:
        claims = ["Whether the conclusion follows from the conversation."]
    flags = [n for n in analysis.privacy_flags if not is_junk(n) and grounded(n, turns)]
    sentiment = _named_sentiment(state, analysis) or [
        SpeakerSentiment(speaker=name, sentiment="neutral")
        for name in _speakers(state)[:6] or ["everyone"]
    ]
    return Analysis.model_validate(
        {
            "sentiment": [s.model_dump() for s in sentiment],
            "claims_to_check": [c[:160] for c in claims[:5]],
            "privacy_flags": flags,
        }
    )


def _scenario_fallback(state: Any) -> Scenario:
    """The set-up when the director wrote no usable plan: the repair's fallback
    setting and cast."""
    return _scenario_repair(state, Scenario.model_construct(setting="", cast=[]))


def _conclusion_fallback(state: Any) -> Conclusion:
    """A closing line that says no summary came, naming who spoke."""
    names = ", ".join(dict.fromkeys(e.speaker for e in _spoken(state))) or "nobody"
    topic = " ".join(str(state.get("topic") or "the topic").split())
    summary = f"{names} talked over {topic}; the director wrote no summary."
    if len(summary) > 800:
        summary = f"They talked over {topic[:700]}; the director wrote no summary."
    return Conclusion(summary=summary)


def _analysis_fallback(state: Any) -> Analysis:
    """An analysis when the analyst wrote no usable one: every speaker neutral,
    a claim to check per speaker (see :func:`_analysis_repair`), no flags."""
    empty = Analysis.model_construct(sentiment=[], claims_to_check=[], privacy_flags=[])
    return _analysis_repair(state, empty)


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
    speakers = _speakers(state)
    system = (
        "An analyst reviews a finished conversation: the sentiment of each speaker "
        "(positive, neutral or negative), factual claims worth checking, and any "
        "private information (names, addresses, health, money) that was shared. "
        "Each claim and flag names the speaker and quotes their words."
    )
    if speakers:
        system += f" The speakers are {', '.join(speakers)}; name each as written."
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

    # A persona may end the dialogue only after the requested turns unless the
    # guard settings say sooner (small models set the end flag on their first line).
    def end_after(state: Any) -> int:
        least = get_guard_settings().persona_end_min_turns
        requested = int(state.get("max_turns", 4))
        return requested if least is None else min(least, requested)

    until = (
        JudgeDecided()
        | PersonaEnded(min_turns=end_after)
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
            check=_scenario_problems,
            repair=_scenario_repair,
            fallback=_scenario_fallback,
            guard="cast",
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
            update=_review_update,
            speaker="Director",
            describe=lambda r: (
                ("Conclude: " if r.conclude else "Continue: ") + (r.reason or "-")
            ),
            max_tokens=max_tokens,
            model=model,
            fallback=lambda s: Review(conclude=False, reason="no usable review"),
            guard="review",
        ),
    )
    builder.add_node(
        "conclude",
        decision_node(
            Conclusion,
            prompt=_director_prompt(
                "The director closes with a short summary, in the director's own "
                "words, of what each speaker argued."
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
            check=_conclusion_problems,
            fallback=_conclusion_fallback,
            guard="conclusion",
        ),
    )
    builder.add_node(
        "analyze",
        decision_node(
            Analysis,
            prompt=_analysis_prompt,
            update=_analysis_tidy,
            speaker="Analyst",
            kind="analyst",
            role="analyst",
            describe=lambda a: (
                f"{_counted(len(a.claims_to_check), 'claim')} to check, "
                f"{_counted(len(a.privacy_flags), 'privacy flag')}"
            ),
            max_tokens=2 * max_tokens,
            model=model,
            check=_analysis_problems,
            repair=_analysis_repair,
            fallback=_analysis_fallback,
            guard="analysis",
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
