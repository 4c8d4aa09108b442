"""Node factories of dialogue graphs: personas, people, directors and judges.

Each factory returns a plain async LangGraph node ``(state, config) -> update``. LLM
nodes get a typed reply through :func:`dialogllm.llm.ask` (validated, retried, never
``None``) and append a :class:`~dialogllm.models.TranscriptEntry`; the human node pauses
the graph with ``interrupt()`` and continues with ``Command(resume=answer)``.

Which chat model a node uses, first match wins: the factory's ``model=`` argument; the
run's ``configurable["dialogllm_chat_model"]`` (a model, or a function of the role);
:func:`dialogllm.llm.get_chat_model` for the role. The rule: code before ``interrupt()``
in a node runs again on resume, so it must not call an LLM or have side effects.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt
from pydantic import BaseModel, Field, create_model

from dialogllm.core.prompts import DEFAULT_WINDOW, dialogue_prompt
from dialogllm.errors import ResumeError
from dialogllm.llm import ask, get_chat_model
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
) -> tuple[M, TranscriptEntry]:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    reply = await ask(model, messages, schema=schema, max_tokens=max_tokens)
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
) -> Node:
    """A node in which ``persona`` says their next line (a typed ``schema`` reply).

    ``participants`` lists everyone in the scene for the prompt (default: the
    ``personas`` in state, else just this persona). The node appends one entry.

    >>> ada = Persona(name="Ada", role="mathematician")
    >>> builder.add_node("Ada", persona_node(ada))              # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        cast = _participants(state, participants) or [persona]
        messages = dialogue_prompt(
            persona, state, cast, instructions=instructions, window=window
        )
        chat = await aresolve_chat_model(config, persona.model or "persona", model)
        _value, entry = await _ask_entry(
            chat,
            messages,
            schema,
            speaker=persona.name,
            kind="persona",
            max_tokens=max_tokens,
            text_field=text_field,
            config=config,
        )
        return {"transcript": [entry]}

    node.__name__ = f"persona_{persona.name}"
    return node


def speaker_node(
    policy: Callable[[Any], str],
    *,
    schema: type[BaseModel] = Turn,
    instructions: str | None = None,
    max_tokens: int = 128,
    window: int = DEFAULT_WINDOW,
    text_field: str = "message",
    model: BaseChatModel | None = None,
) -> Node:
    """A node that speaks as whichever persona of ``state["personas"]`` the turn-taking
    ``policy`` picks (for casts decided at run time, e.g. by a director).

    >>> builder.add_node("speak", speaker_node(RoundRobin()))   # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        cast = _participants(state, ())
        name = policy(state)
        persona = next((p for p in cast if p.name == name), None)
        if persona is None:
            persona = Persona(name=name)
        inner = persona_node(
            persona,
            schema=schema,
            participants=cast,
            instructions=instructions,
            max_tokens=max_tokens,
            window=window,
            text_field=text_field,
            model=model,
        )
        update = await inner(state, config)
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
) -> Node:
    """A node that asks for a typed decision (a director's plan, a judge's verdict,
    an analyst's report) and turns it into a state update with ``update``.

    With ``record=True`` the decision is also appended to the transcript as a
    non-turn entry of ``kind``, its text from ``describe(value)`` (default: the
    ``text_field`` of the reply).

    >>> judge = decision_node(
    ...     Verdict,
    ...     prompt=lambda s: verdict_prompt(s),
    ...     update=lambda s, v: {"verdict": v.model_dump(mode="json")},
    ...     speaker="Judge", kind="judge", role="judge",
    ... )                                                       # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        chat = await aresolve_chat_model(config, role, model)
        value, entry = await _ask_entry(
            chat,
            prompt(state),
            schema,
            speaker=speaker,
            kind=kind,
            max_tokens=max_tokens,
            text_field=text_field,
            config=config,
        )
        out = dict(update(state, value))
        if describe is not None:
            entry = entry.model_copy(update={"text": describe(value)})
        if record:
            out["transcript"] = [*out.get("transcript", ()), entry]
        return out

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

    ``candidates`` default to the names of ``state["personas"]``.

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
        value, _entry = await _ask_entry(
            chat,
            messages,
            choice_schema,
            speaker="Director",
            kind="director",
            max_tokens=max_tokens,
            text_field="next_speaker",
            config=config,
        )
        return {"next_speaker": str(value.next_speaker)}

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
