"""Node factories of dialogue graphs: personas, people, directors and judges.

Each factory returns a plain async LangGraph node ``(state, config) -> update``. LLM
nodes get a typed reply through :func:`dialogllm.llm.ask` (validated, retried, never
``None``) and append a :class:`~dialogllm.models.TranscriptEntry`; the human node pauses
the graph with ``interrupt()`` and continues with ``Command(resume=answer)``.

Which chat model a node uses, first match wins: the factory's ``model=`` argument; the
run's ``configurable["dialogllm_chat_model"]`` (a model, or a function of the role);
:func:`dialogllm.llm.get_chat_model` for the role. The rule: code before ``interrupt()``
in a node runs again on resume, so it must not call an LLM or have side effects.

The nodes run the guards of :mod:`dialogllm.core.guards`: a persona's turn that
echoes, loops or fails the node's own ``check`` is asked again (the repeated text
named, stronger repetition penalties); a decision that fails its ``check`` is asked
again, then ``repair``-ed. Each re-ask is counted in the LLM metrics; what is kept
anyway is flagged on the entry.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypedDict, TypeVar, Unpack

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt
from pydantic import BaseModel, Field, create_model

from dialogllm.core.guards import (
    GuardSettings,
    Problem,
    get_guard_settings,
    turn_problems,
    with_avoidance,
)
from dialogllm.core.prompts import DEFAULT_WINDOW, dialogue_prompt, turn_direction
from dialogllm.core.turns import RoundRobin
from dialogllm.errors import ResumeError, StructuredOutputError
from dialogllm.llm import ask, find_metrics, get_chat_model, model_label
from dialogllm.logging import get_logger
from dialogllm.models import (
    DialogueState,
    EntryKind,
    HumanRequest,
    Persona,
    SpeakerChoice,
    TranscriptEntry,
    Turn,
)

__all__ = [
    "MODEL_CONFIG_KEY",
    "ChatModelSource",
    "Node",
    "TurnCheck",
    "TurnOptions",
    "aresolve_chat_model",
    "decision_node",
    "director_choice_node",
    "human_node",
    "persona_node",
    "reply_text",
    "resolve_chat_model",
    "speaker_node",
]

MODEL_CONFIG_KEY = "dialogllm_chat_model"
"""``configurable`` key holding the chat model (or a ``role -> model`` function)."""

M = TypeVar("M", bound=BaseModel)


class Node(Protocol):
    """What the node factories return: an async LangGraph node.

    The functions behind it annotate ``state`` as ``Any`` on purpose: LangGraph
    reads a node's annotation to decide which state keys it receives, and a dialogue
    node must see the whole state of whatever graph it is in.
    """

    def __call__(
        self, state: DialogueState, config: RunnableConfig
    ) -> Awaitable[dict[str, Any]]: ...


ChatModelSource = BaseChatModel | Callable[[str], BaseChatModel]


def resolve_chat_model(
    config: RunnableConfig | None, role: str, explicit: BaseChatModel | None = None
) -> BaseChatModel:
    """The chat model a node with ``role`` uses (see the module docstring).

    >>> resolve_chat_model({"configurable": {MODEL_CONFIG_KEY: model}}, "judge")
    ... # doctest: +SKIP
    """
    if explicit is not None:
        return explicit
    source = ((config or {}).get("configurable") or {}).get(MODEL_CONFIG_KEY)
    if isinstance(source, BaseChatModel):
        return source
    if callable(source):
        chosen = source(role)
        if isinstance(chosen, BaseChatModel):
            return chosen
    return get_chat_model(role=role)


async def aresolve_chat_model(
    config: RunnableConfig | None, role: str, explicit: BaseChatModel | None = None
) -> BaseChatModel:
    """:func:`resolve_chat_model` for nodes: the first use of the local default model
    starts a server (seconds), so ``get_chat_model`` runs in a worker thread and the
    event loop keeps serving checkpoint writes meanwhile.

    >>> chat = await aresolve_chat_model(config, "judge")      # doctest: +SKIP
    """
    if explicit is not None:
        return explicit
    source = ((config or {}).get("configurable") or {}).get(MODEL_CONFIG_KEY)
    if source is not None:
        return resolve_chat_model(config, role)
    return await asyncio.to_thread(get_chat_model, role=role)


def reply_text(value: BaseModel, field: str = "message") -> str:
    """The text of a typed reply: ``field`` if it is a string, else the first string
    field, else the reply as JSON.

    >>> reply_text(Turn(message="Hi."))
    'Hi.'
    """
    text = getattr(value, field, None)
    if isinstance(text, str):
        return text
    for name in type(value).model_fields:
        candidate = getattr(value, name)
        if isinstance(candidate, str) and candidate:
            return candidate
    return value.model_dump_json()


def _log(config: RunnableConfig | None, component: str) -> Any:
    cfg = config or {}
    conf = cfg.get("configurable") or {}
    meta = cfg.get("metadata") or {}
    context: dict[str, Any] = {
        "thread_id": conf.get("thread_id"),
        "node": meta.get("langgraph_node"),
    }
    run_id = cfg.get("run_id") or meta.get("run_id")
    if run_id:
        context["run_id"] = str(run_id)
    return get_logger(f"dialogllm.core.{component}", **context)


async def _ask_entry(
    model: BaseChatModel,
    messages: list[BaseMessage],
    schema: type[M],
    *,
    speaker: str,
    kind: EntryKind,
    max_tokens: int,
    text_field: str,
    config: RunnableConfig | None,
    sampling: Mapping[str, float] | None = None,
) -> tuple[M, TranscriptEntry]:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    reply = await ask(
        model, messages, schema=schema, max_tokens=max_tokens, sampling=sampling
    )
    value: M = reply.value
    entry = TranscriptEntry(
        speaker=speaker,
        kind=kind,
        text=reply_text(value, text_field),
        reply=value.model_dump(mode="json"),
        reply_schema=type(value).__name__,
        ends_dialogue=bool(getattr(value, "end", False)),
        prompt_tokens=reply.usage.prompt_tokens,
        completion_tokens=reply.usage.completion_tokens,
        latency_s=max(0.0, float(reply.latency_s)),
        model=str(reply.model) if reply.model else None,
        started_at=started,
        ended_at=datetime.now(UTC),
    )
    _log(config, "nodes").info(
        "llm_reply",
        speaker=speaker,
        schema=entry.reply_schema,
        attempts=reply.attempts,
        tokens=entry.tokens,
        seconds=round(time.perf_counter() - t0, 3),
    )
    return value, entry


def _record_reask(model: BaseChatModel, guard: str) -> None:
    metrics = find_metrics(model)
    if metrics is not None:
        metrics.record_guard_reask(model_label(model), guard)


def _merged(first: TranscriptEntry, last: TranscriptEntry) -> dict[str, Any]:
    """Tokens and time of every attempt, for the entry that is kept."""
    return {
        "prompt_tokens": first.prompt_tokens + last.prompt_tokens,
        "completion_tokens": first.completion_tokens + last.completion_tokens,
        "latency_s": first.latency_s + last.latency_s,
        "started_at": min(first.started_at, last.started_at),
        "ended_at": max(first.ended_at, last.ended_at),
    }


def _spent_on(entry: TranscriptEntry, failed: StructuredOutputError) -> TranscriptEntry:
    """``entry`` counting the tokens and time of attempts that ``failed`` too (a
    fallback or a kept answer still spent them)."""
    return entry.model_copy(
        update={
            "prompt_tokens": entry.prompt_tokens + failed.prompt_tokens,
            "completion_tokens": entry.completion_tokens + failed.completion_tokens,
            "latency_s": entry.latency_s + failed.latency_s,
        }
    )


TurnCheck = Callable[[Any, str], str | None]
"""A node's own check of a turn's text: a note saying what is wrong, or ``None``."""


async def _guarded_turn(
    chat: BaseChatModel,
    messages: list[BaseMessage],
    schema: type[BaseModel],
    *,
    persona: Persona,
    state: Any,
    check: TurnCheck | None,
    guard: GuardSettings,
    max_tokens: int,
    text_field: str,
    config: RunnableConfig | None,
) -> TranscriptEntry:
    earlier = [e.text for e in state.get("transcript") or () if e.is_turn]

    def problems_of(text: str) -> list[Problem]:
        found = turn_problems(text, earlier, guard)
        note = check(state, text) if check is not None else None
        if note:
            found.append(Problem("off_side", "", note))
        return found

    def budget(p: Problem) -> int:
        if p.guard in ("echo", "loop", "junk"):
            return guard.reask_budget
        return guard.side_budget

    async def turn(
        prompt: list[BaseMessage], sampling: Mapping[str, float] | None = None
    ) -> TranscriptEntry:
        _value, said = await _ask_entry(
            chat,
            prompt,
            schema,
            speaker=persona.name,
            kind="persona",
            max_tokens=max_tokens,
            text_field=text_field,
            config=config,
            sampling=sampling,
        )
        return said

    entry = await turn(messages)
    problems = problems_of(entry.text)
    spent: Counter[str] = Counter()
    avoid: list[Problem] = []
    total = entry
    while due := [p for p in problems if spent[p.guard] < budget(p)]:
        for p in due:
            spent[p.guard] += 1
            _record_reask(chat, p.guard)
        avoid += [p for p in due if p not in avoid]
        _log(config, "guards").info(
            "guard_reask", speaker=persona.name, guards=[p.guard for p in due]
        )
        try:
            again = await turn(
                with_avoidance(messages, persona.name, avoid), guard.reask_sampling
            )
        except StructuredOutputError as exc:  # keep the turn there is
            _log(config, "guards").warning(
                "guard_reask_failed", speaker=persona.name, error=str(exc)
            )
            total = _spent_on(total, exc)
            break
        total = total.model_copy(update=_merged(total, again))
        found = problems_of(again.text)
        if len(found) <= len(problems):
            entry, problems = again, found
    flags = tuple(dict.fromkeys(p.guard for p in problems))
    return entry.model_copy(
        update={
            **{k: getattr(total, k) for k in _merged(total, total)},
            "flags": flags,
            "reasks": sum(spent.values()),
        }
    )


def _participants(state: Mapping[str, Any], fixed: Sequence[Persona]) -> list[Persona]:
    from_state = [
        p if isinstance(p, Persona) else Persona.model_validate(p)
        for p in state.get("personas") or ()
    ]
    return from_state or list(fixed)


def persona_node(
    persona: Persona,
    *,
    schema: type[BaseModel] = Turn,
    participants: Sequence[Persona] = (),
    instructions: str | None = None,
    max_tokens: int = 128,
    window: int = DEFAULT_WINDOW,
    text_field: str = "message",
    model: BaseChatModel | None = None,
    direction: Callable[[Any], str] | None = None,
    check: TurnCheck | None = None,
) -> Node:
    """A node in which ``persona`` says their next line (a typed ``schema`` reply).

    ``participants`` lists everyone in the scene for the prompt (default: the
    ``personas`` in state, else just this persona). ``direction(state)`` is the
    stage direction before the cue (default:
    :func:`~dialogllm.core.prompts.turn_direction`). The turn is guarded (see
    :mod:`dialogllm.core.guards`): one that echoes or loops is asked again, and so
    is one for which ``check(state, text)`` returns a note (e.g. a debate side
    arguing the other side). The node appends one entry.

    >>> ada = Persona(name="Ada", role="mathematician")
    >>> builder.add_node("Ada", persona_node(ada))              # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        cast = _participants(state, participants) or [persona]
        stage = direction(state) if direction else turn_direction(persona, state)
        messages = dialogue_prompt(
            persona,
            state,
            cast,
            instructions=instructions,
            window=window,
            direction=stage,
        )
        chat = await aresolve_chat_model(config, persona.model or "persona", model)
        entry = await _guarded_turn(
            chat,
            messages,
            schema,
            persona=persona,
            state=state,
            check=check,
            guard=get_guard_settings(),
            max_tokens=max_tokens,
            text_field=text_field,
            config=config,
        )
        return {"transcript": [entry]}

    node.__name__ = f"persona_{persona.name}"
    return node


class TurnOptions(TypedDict, total=False):
    """How a persona's turns are asked: :func:`persona_node`'s options, which
    :func:`speaker_node` passes on."""

    schema: type[BaseModel]
    instructions: str | None
    max_tokens: int
    window: int
    text_field: str
    model: BaseChatModel | None
    direction: Callable[[Any], str] | None
    check: TurnCheck | None


def speaker_node(policy: Callable[[Any], str], **options: Unpack[TurnOptions]) -> Node:
    """A node that speaks as whichever persona of ``state["personas"]`` the turn-taking
    ``policy`` picks (for casts decided at run time, e.g. by a director).
    ``options`` are :func:`persona_node`'s (``schema``, ``max_tokens``, ``model``, …).

    >>> builder.add_node("speak", speaker_node(RoundRobin()))   # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        cast = _participants(state, ())
        name = policy(state)
        persona = next((p for p in cast if p.name == name), None)
        if persona is None:
            persona = Persona(name=name)
        update = await persona_node(persona, participants=cast, **options)(
            state, config
        )
        return {**update, "next_speaker": None}

    return node


def human_node(
    name: str = "Person",
    *,
    choices: Sequence[str] = (),
    max_chars: int = 2000,
) -> Node:
    """A node where a person takes their turn: the graph pauses with ``interrupt()``
    (payload: a :class:`~dialogllm.models.HumanRequest`) and continues when resumed
    with ``Command(resume="their answer")``.

    >>> builder.add_node("candidate", human_node("Candidate"))  # doctest: +SKIP
    >>> await graph.ainvoke(Command(resume="I led the migration."), config)
    ... # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        turns = [e for e in state.get("transcript") or () if e.is_turn]
        last = turns[-1] if turns else None
        request = HumanRequest(
            speaker=name,
            prompt=last.text if last else str(state.get("topic") or ""),
            asked_by=last.speaker if last else None,
            choices=tuple(choices),
            max_chars=max_chars,
        )
        started = datetime.now(UTC)
        answer = interrupt(request.model_dump(mode="json"))
        try:
            text = request.check_answer(answer)
        except ValueError as exc:
            raise ResumeError(f"cannot continue the dialogue: {exc}") from None
        _log(config, "nodes").info("human_answer", speaker=name, chars=len(text))
        entry = TranscriptEntry(
            speaker=name,
            kind="human",
            text=text,
            started_at=started,
            ended_at=datetime.now(UTC),
        )
        return {"transcript": [entry]}

    node.__name__ = f"human_{name}"
    return node


def decision_node(
    schema: type[M],
    *,
    prompt: Callable[[Any], list[BaseMessage]],
    update: Callable[[Any, M], dict[str, Any]],
    speaker: str = "Director",
    kind: EntryKind = "director",
    role: str = "director",
    record: bool = True,
    text_field: str = "message",
    describe: Callable[[M], str] | None = None,
    max_tokens: int = 128,
    model: BaseChatModel | None = None,
    check: Callable[[Any, M], Sequence[str]] | None = None,
    repair: Callable[[Any, M], M] | None = None,
    fallback: Callable[[Any], M] | None = None,
    guard: str = "decision",
) -> Node:
    """A node that asks for a typed decision (a director's plan, a judge's verdict,
    an analyst's report) and turns it into a state update with ``update``.

    With ``record=True`` the decision is also appended to the transcript as a
    non-turn entry of ``kind``, its text from ``describe(value)`` (default: the
    ``text_field`` of the reply).

    ``check(state, value)`` lists what is wrong with a decision (empty, junk, not
    grounded in the transcript); a decision with problems is asked again with them
    named, up to ``DIALOGLLM_GUARD_DECISION_BUDGET`` times (each re-ask counted as
    ``guard`` in the LLM metrics), then ``repair(state, value)`` makes it usable
    (sensible defaults; the entry is flagged ``<guard>_repaired``), or, without
    ``repair``, it is kept and flagged ``guard``.

    ``fallback(state)`` is the decision when no reply matches ``schema`` within the
    structured-output budget (a :class:`~dialogllm.errors.StructuredOutputError`: a
    small model that keeps writing what the schema refuses); the entry is flagged
    ``<guard>_fallback``. Without it that error fails the node (the run can be
    resumed). Other errors (an endpoint down, a context too long) always fail it.

    >>> judge = decision_node(
    ...     Verdict,
    ...     prompt=lambda s: verdict_prompt(s),
    ...     update=lambda s, v: {"verdict": v.model_dump(mode="json")},
    ...     speaker="Judge", kind="judge", role="judge",
    ... )                                                       # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        chat = await aresolve_chat_model(config, role, model)
        messages = prompt(state)
        began = datetime.now(UTC)

        async def decide(asked: list[BaseMessage]) -> tuple[M, TranscriptEntry]:
            return await _ask_entry(
                chat,
                asked,
                schema,
                speaker=speaker,
                kind=kind,
                max_tokens=max_tokens,
                text_field=text_field,
                config=config,
            )

        def decided(
            value: M, entry: TranscriptEntry, flags: tuple[str, ...], reasks: int
        ) -> dict[str, Any]:
            """The state update of the decision ``value``, its entry recorded."""
            entry = entry.model_copy(
                update={
                    "text": reply_text(value, text_field),
                    "reply": value.model_dump(mode="json"),
                    "flags": flags,
                    "reasks": reasks,
                }
            )
            out = dict(update(state, value))
            if describe is not None:
                entry = entry.model_copy(update={"text": describe(value)})
            if record:
                out["transcript"] = [*out.get("transcript", ()), entry]
            return out

        try:
            value, entry = await decide(messages)
        except StructuredOutputError as exc:
            if fallback is None:
                raise
            _log(config, "guards").warning(
                "decision_fallback", speaker=speaker, guards=[guard], error=str(exc)
            )
            value = fallback(state)
            entry = TranscriptEntry(  # text and reply: decided() writes them
                speaker=speaker,
                kind=kind,
                text="",
                reply_schema=schema.__name__,
                started_at=began,
            )
            return decided(value, _spent_on(entry, exc), (f"{guard}_fallback",), 0)
        problems = list(check(state, value)) if check is not None else []
        reasks = 0
        while problems and reasks < get_guard_settings().decision_budget:
            reasks += 1
            _record_reask(chat, guard)
            _log(config, "guards").info(
                "guard_reask", speaker=speaker, guards=[guard], problems=problems
            )
            retry = [
                *messages,
                AIMessage(content=value.model_dump_json()),
                HumanMessage(
                    content="That answer is not usable: "
                    + "; ".join(problems)
                    + ". Answer again, grounded in the transcript."
                ),
            ]
            try:
                again_value, again = await decide(retry)
            except StructuredOutputError as exc:  # keep the answer there is
                _log(config, "guards").warning(
                    "guard_reask_failed",
                    speaker=speaker,
                    guards=[guard],
                    error=str(exc),
                )
                entry = _spent_on(entry, exc)
                break
            entry = again.model_copy(update=_merged(entry, again))
            found = list(check(state, again_value)) if check is not None else []
            if len(found) <= len(problems):
                value, problems = again_value, found
        flags: tuple[str, ...] = ()
        if problems and repair is not None:
            value = repair(state, value)
            flags = (f"{guard}_repaired",)
        elif problems:
            flags = (guard,)
        return decided(value, entry, flags, reasks)

    node.__name__ = f"decision_{speaker}"
    return node


def director_choice_node(
    *,
    candidates: Sequence[str] = (),
    prompt: Callable[[Any], list[BaseMessage]] | None = None,
    role: str = "director",
    max_tokens: int = 32,
    model: BaseChatModel | None = None,
) -> Node:
    """A director picks who speaks next (typed :class:`~dialogllm.models.SpeakerChoice`
    restricted to the candidates) and writes ``next_speaker``; pair it with
    :class:`~dialogllm.core.DirectorChooses`.

    ``candidates`` default to the names of ``state["personas"]``. When no reply
    names one of them within the structured-output budget, the speaker after the
    last one (round robin) is chosen instead of failing the run. The choice writes
    no transcript entry: its tokens go to ``spent_tokens`` (which
    :class:`~dialogllm.core.TokenBudget` counts).

    >>> builder.add_node("director", director_choice_node(candidates=["Ada", "Bo"]))
    ... # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        names = list(candidates) or [p.name for p in _participants(state, ())]
        if not names:
            raise ValueError("director_choice_node: no candidates and no personas")
        choice_schema = _choice_schema(tuple(names))
        if prompt is not None:
            messages = prompt(state)
        else:
            director = Persona(
                name="Director", role="decides who speaks next to move things on"
            )
            cast = [Persona(name=n) for n in names]
            messages = dialogue_prompt(
                director,
                state,
                cast,
                instructions="Next speaker, one of: " + ", ".join(names) + ".",
            )
        chat = await aresolve_chat_model(config, role, model)
        try:
            value, entry = await _ask_entry(
                chat,
                messages,
                choice_schema,
                speaker="Director",
                kind="director",
                max_tokens=max_tokens,
                text_field="next_speaker",
                config=config,
            )
        except StructuredOutputError as exc:  # no name of the list: take turns
            _log(config, "guards").warning(
                "decision_fallback",
                speaker="Director",
                guards=["choice"],
                error=str(exc),
            )
            return {
                "next_speaker": RoundRobin(names)(state),
                "spent_tokens": exc.prompt_tokens + exc.completion_tokens,
            }
        return {"next_speaker": str(value.next_speaker), "spent_tokens": entry.tokens}

    return node


_CHOICE_SCHEMAS: dict[tuple[str, ...], type[SpeakerChoice]] = {}


def _choice_schema(names: tuple[str, ...]) -> type[SpeakerChoice]:
    cached = _CHOICE_SCHEMAS.get(names)
    if cached is None:
        from typing import Literal

        literal: Any = Literal[names]
        cached = create_model(
            "SpeakerChoice",
            __base__=SpeakerChoice,
            next_speaker=(literal, Field(description="Who speaks next.")),
        )
        _CHOICE_SCHEMAS[names] = cached
    return cached
