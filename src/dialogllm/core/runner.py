"""The runner: run, stream, resume, fork and export dialogues on a checkpointed thread.

:class:`DialogueRunner` drives any compiled LangGraph graph on a thread of a
checkpointer (by default the Redis :class:`~dialogllm.checkpoint.AsyncRedisSaver` at
``DIALOGLLM_REDIS_URL``). It validates input against the graph's input schema before
anything runs, remembers which graph a thread belongs to (checkpoint metadata), so
``resume`` needs only the thread id, and turns LangGraph's stream into typed events
(:class:`TurnEvent`, :class:`InterruptEvent`, :class:`DoneEvent`).

The rule: every refusal (unknown thread, wrong resume value, bad input) happens before
the graph is invoked, so a refused call writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import Command, Durability, StateSnapshot
from pydantic import BaseModel, PydanticUserError, RootModel, ValidationError

from dialogllm.config import check_id, get_settings
from dialogllm.core.nodes import MODEL_CONFIG_KEY, ChatModelSource
from dialogllm.core.registry import (
    GraphRegistry,
    GraphSource,
    ResolvedGraph,
    default_registry,
)
from dialogllm.errors import (
    GraphNotFoundError,
    InputValidationError,
    ResumeError,
    ThreadNotFoundError,
)
from dialogllm.loader import META_GRAPH, META_GRAPH_REF
from dialogllm.logging import get_logger
from dialogllm.models import HumanRequest, Transcript, TranscriptEntry

__all__ = [
    "META_GRAPH",
    "META_GRAPH_REF",
    "NOT_GIVEN",
    "CheckpointInfo",
    "DialogueEvent",
    "DialogueResult",
    "DialogueRunner",
    "DoneEvent",
    "InterruptEvent",
    "TurnEvent",
    "UpdateEvent",
    "topic_field",
    "validate_input",
]


class _NotGiven:
    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Any = _NotGiven()
"""Marks "no resume value" (``None`` is a value a graph may expect)."""

Status = Literal["done", "interrupted", "stopped"]


@dataclass(frozen=True)
class DialogueResult:
    """Where a dialogue stands after a call returned.

    ``status`` is ``"done"`` (the graph finished), ``"interrupted"`` (it waits for
    a person: ``request`` says for whom and about what) or ``"stopped"`` (it was
    stopped midway, by a crash or Ctrl-C: :meth:`DialogueRunner.resume` continues).
    """

    thread_id: str
    graph: str
    status: Status
    values: dict[str, Any]
    transcript: Transcript
    request: HumanRequest | None = None
    interrupt_value: Any = None
    checkpoint_id: str | None = None

    @property
    def tokens(self) -> int:
        """Every token the dialogue spent: its entries', and ``spent_tokens`` (calls
        that wrote no entry, such as the director's choice of speaker).

        >>> result.tokens, result.transcript.total_tokens      # doctest: +SKIP
        (1262, 1232)
        """
        extra = self.values.get("spent_tokens")
        return self.transcript.total_tokens + (extra if isinstance(extra, int) else 0)


@dataclass(frozen=True)
class TurnEvent:
    """A new transcript entry, as soon as the node that wrote it finished."""

    entry: TranscriptEntry
    node: str


@dataclass(frozen=True)
class UpdateEvent:
    """A node finished and changed state keys other than the transcript."""

    node: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class InterruptEvent:
    """The dialogue paused for a person (``request``) or another interrupt."""

    thread_id: str
    value: Any
    request: HumanRequest | None


@dataclass(frozen=True)
class DoneEvent:
    """The call is over; ``result`` says whether the dialogue finished or waits."""

    result: DialogueResult


DialogueEvent = TurnEvent | UpdateEvent | InterruptEvent | DoneEvent


@dataclass(frozen=True)
class CheckpointInfo:
    """One step of a thread's history (for :meth:`DialogueRunner.fork`)."""

    checkpoint_id: str
    step: int
    turns: int
    next: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)


def validate_input(graph: Pregel[Any, Any, Any, Any], data: object) -> dict[str, Any]:
    """Check ``data`` against the graph's input schema; return the input to send.

    Raises :class:`~dialogllm.errors.InputValidationError` listing every problem.

    >>> validate_input(debate_graph, {"motion": ""})           # doctest: +SKIP
    Traceback (most recent call last):
    InputValidationError: input of graph 'debate' is invalid: motion: ...
    """
    name = graph.name or "graph"
    if not isinstance(data, Mapping):
        raise InputValidationError(
            f"input of graph {name!r} must be a JSON object, got {type(data).__name__}"
        )
    schema = _input_schema(graph)
    if schema is None:
        return dict(data)
    try:
        model = schema.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(input)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputValidationError(
            f"input of graph {name!r} is invalid: {problems}"
        ) from None
    if isinstance(model, RootModel):
        root = model.root
        return dict(root) if isinstance(root, Mapping) else {}
    declared = getattr(getattr(graph, "builder", None), "input_schema", None)
    if isinstance(declared, type) and issubclass(declared, BaseModel):
        keys: Sequence[str] = list(type(model).model_fields)
    else:
        keys = [k for k in type(model).model_fields if k in model.model_fields_set]
    return {k: getattr(model, k) for k in keys}


def topic_field(graph: Pregel[Any, Any, Any, Any]) -> str:
    """The input field a dialogue's topic goes in: ``topic``, else ``motion`` (a
    debate's), when the graph's input schema has it; ``topic`` otherwise.

    >>> topic_field(debate_graph)                                # doctest: +SKIP
    'motion'
    """
    schema = _input_schema(graph)
    fields = schema.model_fields if schema is not None else {}
    return next((k for k in ("topic", "motion") if k in fields), "topic")


def _input_schema(graph: Pregel[Any, Any, Any, Any]) -> type[BaseModel] | None:
    """The graph's input schema as a pydantic model; ``None`` when pydantic cannot
    build one (a ``typing.TypedDict`` state on Python < 3.12): such a graph's input
    goes unchecked, as LangGraph itself takes it."""
    try:
        return graph.get_input_schema()
    except PydanticUserError:
        return None


class DialogueRunner:
    """Runs dialogue graphs on checkpointed threads.

    Args:
        checkpointer: any LangGraph ``BaseCheckpointSaver``; ``None`` opens the Redis
            saver at ``DIALOGLLM_REDIS_URL`` (unset: the embedded Redis; key prefix
            ``DIALOGLLM_KEY_PREFIX``) when the runner is entered with ``async with``.
        store: the long-term memory graphs get (compile's ``store=``, nodes'
            ``store`` argument, ``get_store()``): any LangGraph ``BaseStore``;
            ``None`` with ``checkpointer=None`` opens a
            :class:`~dialogllm.store.AsyncRedisStore` on the same Redis and prefix,
            configured by the nearest ``langgraph.json``'s ``"store"`` section
            (:func:`~dialogllm.store.configured_store_options`).
        chat_model: the model every LLM node uses (or a ``role -> model`` function);
            ``None`` lets nodes ask :func:`dialogllm.llm.get_chat_model`.
        registry: resolves graph references (default: the process-wide one).
        durability: LangGraph durability. ``"async"`` (default, as in LangGraph)
            writes each step's checkpoint while the next step runs: a killed process
            loses at most its last two steps, which ``resume`` runs again (no turn is
            lost or doubled: the transcript lives in the checkpoints). ``"sync"``
            waits for each write first (at most one step to redo), ~1-2 ms a step.

    >>> async with DialogueRunner() as runner:
    ...     result = await runner.run("debate", {"motion": "Tea beats coffee"})
    ...     print(result.transcript.to_markdown())              # doctest: +SKIP
    """

    def __init__(
        self,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        *,
        store: BaseStore | None = None,
        chat_model: ChatModelSource | None = None,
        registry: GraphRegistry | None = None,
        durability: Durability = "async",
    ) -> None:
        self._checkpointer = checkpointer
        self.store = store
        self._own_store = False
        self.chat_model = chat_model
        self.registry = registry or default_registry
        self.durability: Durability = durability
        self._stack: AsyncExitStack | None = None
        self._known: dict[str, ResolvedGraph] = {}

    async def __aenter__(self) -> DialogueRunner:
        if self._checkpointer is None:
            from dialogllm.checkpoint import AsyncRedisSaver
            from dialogllm.redis import async_client

            settings = get_settings()
            client = async_client(decode=False)
            self._stack = AsyncExitStack()
            self._stack.push_async_callback(client.aclose)
            self._checkpointer = AsyncRedisSaver(
                client,
                key_prefix=settings.key_prefix,
                ttl=settings.checkpoint_ttl_seconds,
            )
            if self.store is None:
                from dialogllm.store import AsyncRedisStore, configured_store_options

                store = AsyncRedisStore(
                    client,
                    key_prefix=settings.key_prefix,
                    **configured_store_options(),
                )
                if store.start_configured_ttl_sweeper():
                    self._stack.push_async_callback(store.stop_ttl_sweeper)
                self.store, self._own_store = store, True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            self._checkpointer = None
            if self._own_store:
                self.store, self._own_store = None, False
            await stack.aclose()

    @property
    def checkpointer(self) -> BaseCheckpointSaver[Any]:
        """The saver threads are stored in."""
        if self._checkpointer is None:
            raise RuntimeError("enter the runner first: `async with DialogueRunner()`")
        return self._checkpointer

    # --- public API -------------------------------------------------------------

    async def run(
        self,
        graph: GraphSource | ResolvedGraph,
        input: Mapping[str, Any],
        *,
        thread_id: str | None = None,
    ) -> DialogueResult:
        """Start a dialogue on a new thread and run it until it ends or waits.

        >>> result = await runner.run("debate", {"motion": "Tabs over spaces"})
        ... # doctest: +SKIP
        """
        return await _last_result(self.stream(graph, input, thread_id=thread_id))

    async def stream(
        self,
        graph: GraphSource | ResolvedGraph,
        input: Mapping[str, Any],
        *,
        thread_id: str | None = None,
    ) -> AsyncIterator[DialogueEvent]:
        """Start a dialogue and yield its events as they happen.

        Raises :class:`~dialogllm.errors.InputValidationError` (bad input, or a
        thread id already in use) before anything is written.

        >>> async for event in runner.stream("debate", {"motion": "..."}):
        ...     print(event)                                    # doctest: +SKIP
        """
        resolved = self._resolve(graph)
        payload = validate_input(resolved.graph, input)
        thread_id = thread_id or uuid.uuid4().hex
        check_id(thread_id, "thread id")
        config = self._config(resolved, thread_id)
        if await self.checkpointer.aget_tuple(_root(thread_id)) is not None:
            raise InputValidationError(
                f"thread {thread_id!r} already exists: resume it "
                f"(dialogllm resume {thread_id}) or pick another thread id"
            )
        async for event in self._drive(resolved, payload, config, start=0):
            yield event

    async def resume(
        self,
        thread_id: str,
        value: Any = NOT_GIVEN,
        *,
        graph: GraphSource | None = None,
    ) -> DialogueResult:
        """Continue a thread: after a crash (no ``value``) from its last checkpoint,
        or after an interrupt with the person's answer ``value``.

        >>> await runner.resume("t-42")                           # doctest: +SKIP
        >>> await runner.resume("t-42", "I'd rather not say.")    # doctest: +SKIP
        """
        return await _last_result(self.stream_resume(thread_id, value, graph=graph))

    async def stream_resume(
        self,
        thread_id: str,
        value: Any = NOT_GIVEN,
        *,
        graph: GraphSource | None = None,
    ) -> AsyncIterator[DialogueEvent]:
        """:meth:`resume`, yielding events as they happen.

        Raises :class:`~dialogllm.errors.ThreadNotFoundError` for an unknown thread
        and :class:`~dialogllm.errors.ResumeError` when the thread finished, waits for
        an answer and got none, got an answer it does not wait for, or got one of the
        wrong type. Nothing is written in any of these cases.
        """
        resolved = await self._graph_for_thread(thread_id, graph)
        config = self._config(resolved, thread_id)
        bound = self._bind(resolved)
        snapshot = await bound.aget_state(config)
        payload = self._resume_payload(thread_id, snapshot, value)
        start = len(snapshot.values.get("transcript") or ())
        async for event in self._drive(resolved, payload, config, start=start):
            yield event

    async def state(
        self, thread_id: str, *, graph: GraphSource | None = None
    ) -> DialogueResult:
        """Where a thread stands now, without running anything.

        >>> (await runner.state("t-42")).status                    # doctest: +SKIP
        'interrupted'
        """
        resolved = await self._graph_for_thread(thread_id, graph)
        return await self._result(resolved, self._config(resolved, thread_id))

    async def transcript(
        self, thread_id: str, *, graph: GraphSource | None = None
    ) -> Transcript:
        """The thread's transcript (export with ``to_json()`` / ``to_markdown()``).

        >>> print((await runner.transcript("t-42")).to_markdown())  # doctest: +SKIP
        """
        return (await self.state(thread_id, graph=graph)).transcript

    async def history(
        self, thread_id: str, *, graph: GraphSource | None = None
    ) -> list[CheckpointInfo]:
        """The thread's checkpoints, newest first (pick one to :meth:`fork` from)."""
        resolved = await self._graph_for_thread(thread_id, graph)
        bound = self._bind(resolved)
        out = []
        async for snap in bound.aget_state_history(self._config(resolved, thread_id)):
            conf = snap.config.get("configurable") or {}
            out.append(
                CheckpointInfo(
                    checkpoint_id=str(conf.get("checkpoint_id")),
                    step=int((snap.metadata or {}).get("step", -1)),
                    turns=sum(
                        1 for e in snap.values.get("transcript") or () if e.is_turn
                    ),
                    next=tuple(snap.next),
                    metadata=dict(snap.metadata or {}),
                )
            )
        return out

    async def fork(
        self,
        thread_id: str,
        checkpoint_id: str,
        *,
        values: Mapping[str, Any] | None = None,
        as_node: str | None = None,
        graph: GraphSource | None = None,
    ) -> str:
        """Branch the thread from an earlier checkpoint (optionally changing
        ``values``); the branch becomes the thread's latest checkpoint, so
        :meth:`resume` continues it. Returns the new checkpoint id.

        >>> cp = (await runner.history("t-42"))[-3].checkpoint_id   # doctest: +SKIP
        >>> await runner.fork("t-42", cp)                          # doctest: +SKIP
        """
        resolved = await self._graph_for_thread(thread_id, graph)
        bound = self._bind(resolved)
        config = self._config(resolved, thread_id)
        target: RunnableConfig = {
            **config,
            "configurable": {
                **config["configurable"],
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
            },
        }
        snap = await bound.aget_state(target)
        if snap.created_at is None:
            raise ThreadNotFoundError(
                f"thread {thread_id!r} has no checkpoint {checkpoint_id!r}"
            )
        new = await bound.aupdate_state(
            target, dict(values) if values else None, as_node=as_node
        )
        return str((new.get("configurable") or {}).get("checkpoint_id"))

    # --- internals --------------------------------------------------------------

    def _resolve(self, graph: GraphSource | ResolvedGraph) -> ResolvedGraph:
        if isinstance(graph, ResolvedGraph):
            found = graph
        elif isinstance(graph, Pregel):
            found = ResolvedGraph(graph.name or "graph", graph.name or "graph", graph)
        else:
            found = self.registry.resolve(graph)
        # Graphs given as objects cannot be loaded again from their name: remember
        # them, so this runner resumes their threads without being told the graph.
        self._known.setdefault(found.ref, found)
        return found

    def _bind(self, resolved: ResolvedGraph) -> Pregel[Any, Any, Any, Any]:
        update: dict[str, Any] = {"checkpointer": self.checkpointer}
        if self.store is not None:
            update["store"] = self.store
        return resolved.graph.copy(update=update)

    def _config(self, resolved: ResolvedGraph, thread_id: str) -> RunnableConfig:
        configurable: dict[str, Any] = {"thread_id": thread_id}
        if self.chat_model is not None:
            configurable[MODEL_CONFIG_KEY] = self.chat_model
        return {
            "configurable": configurable,
            "metadata": {META_GRAPH: resolved.name, META_GRAPH_REF: resolved.ref},
            "recursion_limit": 500,
        }

    async def _graph_for_thread(
        self, thread_id: str, graph: GraphSource | None
    ) -> ResolvedGraph:
        saved = await self.checkpointer.aget_tuple(_root(thread_id))
        if saved is None:
            raise ThreadNotFoundError(
                f"thread {thread_id!r} does not exist (no checkpoints); "
                "check the id, the Redis URL and the key prefix"
            )
        if graph is not None:
            return self._resolve(graph)
        meta = saved.metadata or {}
        ref, name = meta.get(META_GRAPH_REF), meta.get(META_GRAPH)
        if isinstance(ref, str) and ref in self._known:
            return self._known[ref]
        for candidate in (ref, name):
            if isinstance(candidate, str) and candidate:
                try:
                    found = self.registry.resolve(candidate)
                except GraphNotFoundError:
                    continue
                return ResolvedGraph(str(name or found.name), found.ref, found.graph)
        raise GraphNotFoundError(
            f"thread {thread_id!r} was made by graph {name or ref!r}, which cannot be "
            "loaded here; pass the graph explicitly"
        )

    def _resume_payload(
        self, thread_id: str, snapshot: StateSnapshot, value: Any
    ) -> Command[Any] | None:
        interrupts = snapshot.interrupts
        if interrupts:
            if value is NOT_GIVEN:
                who = _request_of(interrupts[0].value)
                whom = f" from {who.speaker}" if who else ""
                raise ResumeError(
                    f"thread {thread_id!r} is waiting for an answer{whom}; give it: "
                    f'dialogllm resume {thread_id} --answer "..." (from Python: '
                    "runner.resume(thread_id, answer))"
                )
            request = _request_of(interrupts[0].value)
            if request is not None:
                try:
                    value = request.check_answer(value)
                except ValueError as exc:
                    raise ResumeError(
                        f"cannot resume thread {thread_id!r}: {exc}"
                    ) from None
            if len(interrupts) > 1:
                return Command(resume={i.id: value for i in interrupts})
            return Command(resume=value)
        # A step that finished but was not folded into a checkpoint yet (the process
        # died between the two writes) is not in ``next``, only in ``tasks``.
        if not snapshot.next and not snapshot.tasks:
            raise ResumeError(
                f"thread {thread_id!r} has finished: there is nothing to resume "
                "(fork it from an earlier checkpoint to continue differently)"
            )
        if value is not NOT_GIVEN:
            raise ResumeError(
                f"thread {thread_id!r} is not waiting for an answer; "
                "resume it without a value to continue from its last checkpoint"
            )
        return None

    async def _drive(
        self,
        resolved: ResolvedGraph,
        payload: Any,
        config: RunnableConfig,
        *,
        start: int,
    ) -> AsyncIterator[DialogueEvent]:
        bound = self._bind(resolved)
        thread_id = str(config["configurable"]["thread_id"])
        run_id = uuid.uuid4().hex
        log = get_logger("dialogllm.core.runner", thread_id=thread_id, run_id=run_id)
        log.info("dialogue_step_start", graph=resolved.name, resume=start > 0)
        count = start
        with structlog.contextvars.bound_contextvars(
            thread_id=thread_id, run_id=run_id
        ):
            async for chunk in bound.astream(
                payload, config, stream_mode="updates", durability=self.durability
            ):
                for node, update in chunk.items():
                    if node.startswith("__") or not isinstance(update, dict):
                        continue
                    for entry in _entries_of(update.get("transcript")):
                        yield TurnEvent(
                            entry=entry.model_copy(update={"index": count}), node=node
                        )
                        count += 1
                    others = tuple(k for k in update if k != "transcript")
                    if others:
                        yield UpdateEvent(node=node, keys=others)
        result = await self._result(resolved, config)
        log.info(
            "dialogue_step_end",
            status=result.status,
            turns=len(result.transcript.turns),
        )
        if result.status == "interrupted":
            yield InterruptEvent(thread_id, result.interrupt_value, result.request)
        yield DoneEvent(result)

    async def _result(
        self, resolved: ResolvedGraph, config: RunnableConfig
    ) -> DialogueResult:
        snap = await self._bind(resolved).aget_state(config)
        thread_id = str(config["configurable"]["thread_id"])
        values = dict(snap.values or {})
        transcript = Transcript(
            thread_id=thread_id,
            graph=resolved.name,
            title=_title(values),
            entries=tuple(_entries_of(values.get("transcript"))),
        )
        value = snap.interrupts[0].value if snap.interrupts else None
        return DialogueResult(
            thread_id=thread_id,
            graph=resolved.name,
            status=_status(snap),
            values=values,
            transcript=transcript,
            request=_request_of(value),
            interrupt_value=value,
            checkpoint_id=(snap.config.get("configurable") or {}).get("checkpoint_id"),
        )


def _status(snap: StateSnapshot) -> Status:
    if snap.interrupts:
        return "interrupted"
    return "stopped" if snap.next or snap.tasks else "done"


def _root(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


def _entries_of(value: object) -> list[TranscriptEntry]:
    if value is None:
        return []
    items = [value] if isinstance(value, TranscriptEntry | dict) else value
    if not isinstance(items, list | tuple):
        return []
    return [
        e if isinstance(e, TranscriptEntry) else TranscriptEntry.model_validate(e)
        for e in items
    ]


def _request_of(value: object) -> HumanRequest | None:
    if isinstance(value, dict) and value.get("kind") == "human_turn":
        try:
            return HumanRequest.model_validate(value)
        except ValidationError:
            return None
    return None


def _title(values: Mapping[str, Any]) -> str | None:
    for key in ("title", "motion", "topic"):
        text = values.get(key)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


async def _last_result(events: AsyncIterator[DialogueEvent]) -> DialogueResult:
    result: DialogueResult | None = None
    async for event in events:
        if isinstance(event, DoneEvent):
            result = event.result
    if result is None:  # pragma: no cover - _drive always ends with DoneEvent
        raise RuntimeError("dialogue stream ended without a result")
    return result
