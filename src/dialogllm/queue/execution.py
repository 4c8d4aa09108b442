"""Running one queued run's graph: LangGraph execution for the worker.

The worker decides when a run runs and how it ends; this module owns what happens in
between. :class:`GraphExecution` resolves the run's graph reference, decodes its input,
runs a compiled graph with the Redis checkpointer and the run's fencing token, streams
each step's updates (and what nodes write with ``get_stream_writer()``) to the run's
event stream, stops at a step boundary when asked, and resumes a redelivered run from
its last checkpoint instead of starting it again. A plain function is called with the
input, without checkpoints. It also says which errors a retry cannot fix
(:data:`NON_RETRYABLE`), which mean the run is poison (:data:`POISON`), and which graph
node an error came from (:func:`failing_node`).

The rule a reader must not break: every checkpoint write of a run carries the run's
:class:`~dialogllm.leases.FencingToken`, so a worker that lost the thread's lease
cannot change the thread.

>>> execution = GraphExecution(resolve, saver, store)
>>> values, interrupted = await execution.run(
...     run_id, graph, thread_id, input_text, token, stop_requested=lambda: False)
"""

from __future__ import annotations

import contextlib
import inspect
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError, InvalidUpdateError
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from langgraph.types import Command

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.errors import GraphNotFoundError, InputValidationError, LLMRequestError
from dialogllm.leases import FENCE_CONFIG_KEY, FencingToken
from dialogllm.loader import (
    META_GRAPH,
    META_GRAPH_REF,
    Resolver,
    canonical_reference,
)
from dialogllm.queue.client import decode_input
from dialogllm.queue.models import RunOptions
from dialogllm.queue.store import QueueStore

__all__ = [
    "NON_RETRYABLE",
    "POISON",
    "GraphExecution",
    "StopAtStep",
    "failing_node",
]

#: Errors a retry cannot fix: the run ends as ``error`` at once (no dead letter).
#: An LLM endpoint's refusal (bad key, unknown model, a request larger than the
#: model's context) is one: the next attempt sends the same request.
NON_RETRYABLE: tuple[type[BaseException], ...] = (
    GraphRecursionError,
    InvalidUpdateError,
    LLMRequestError,
)
#: Errors that mean the run itself is broken: dead letter at once.
POISON: tuple[type[BaseException], ...] = (
    GraphNotFoundError,
    InputValidationError,
    json.JSONDecodeError,
)

#: Graph references whose graph copy and metadata a worker keeps (then starts over).
_CACHED_GRAPHS = 256
_UNSET: Any = object()

_TASK_NOTE = re.compile(r"^During task with name '(.+)' and id '[^']*'$")


def failing_node(exc: BaseException) -> str:
    """The graph node an exception came from, as LangGraph notes it; ``""`` if none.

    LangGraph adds the note ``During task with name 'NODE' and id '...'`` to an
    exception that escapes a node; the innermost (first) note names the failing node.

    >>> exc = RuntimeError("boom")
    >>> exc.add_note("During task with name 'judge' and id 'abc'")
    >>> failing_node(exc)
    'judge'
    """
    for note in getattr(exc, "__notes__", None) or ():
        match = _TASK_NOTE.match(str(note))
        if match:
            return match.group(1)
    return ""


def _graph_metadata(graph_ref: str) -> dict[str, str]:
    """The checkpoint metadata that names a run's graph, under the keys the runner
    reads (``dialogllm transcript``/``resume`` load a worker's thread by them); the
    plain ``graph`` key stays for readers of older threads."""
    ref = graph_ref
    if ":" in graph_ref:
        with contextlib.suppress(GraphNotFoundError):
            ref = canonical_reference(graph_ref)
    return {"graph": graph_ref, META_GRAPH: graph_ref, META_GRAPH_REF: ref}


def _decode_options(text: str) -> RunOptions:
    """A run's options; options that cannot be read make the run poison."""
    try:
        return RunOptions.from_json(text)
    except (ValueError, TypeError) as exc:
        raise InputValidationError(f"the run's options cannot be read: {exc}") from None


def _nodes(value: str | tuple[str, ...] | None) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _run_config(
    run_id: str,
    thread_id: str,
    token: FencingToken,
    opts: RunOptions,
    redelivered: bool,
    graph_metadata: dict[str, str],
) -> RunnableConfig:
    """The run's config: the client's ``config``, with the thread, the fence, the
    run's metadata, and the checkpoint to fork from (only on the first delivery: a
    redelivered run continues from its own newest checkpoint)."""
    config: dict[str, Any] = dict(opts.config or {})
    configurable = dict(config.get("configurable") or {})
    configurable.update({"thread_id": thread_id, FENCE_CONFIG_KEY: token})
    if opts.checkpoint_id and not redelivered:
        configurable["checkpoint_id"] = opts.checkpoint_id
    else:
        configurable.pop("checkpoint_id", None)
    config["configurable"] = configurable
    config["run_id"] = uuid.UUID(run_id)
    graph_id = (opts.metadata or {}).get("graph_id")
    if graph_id and "run_name" not in config:
        config["run_name"] = graph_id  # the root run's name, as LangGraph's API
    config["metadata"] = {
        **(config.get("metadata") or {}),
        **(opts.metadata or {}),
        "run_id": run_id,
        **graph_metadata,
    }
    return cast(RunnableConfig, config)


def _without_interrupts(values: Any) -> Any:
    if isinstance(values, dict) and "__interrupt__" in values:
        return {k: v for k, v in values.items() if k != "__interrupt__"}
    return values


def _event_data(mode: object, chunk: Any) -> Any:
    """What a run's event stream holds for one streamed chunk: LangGraph's
    ``messages`` mode yields (message chunk, metadata) pairs, kept as a list."""
    if mode == "messages" and isinstance(chunk, tuple):
        return list(chunk)
    return chunk


async def _with_events(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Any,
    config: RunnableConfig,
    arguments: dict[str, Any],
    run_id: str,
) -> AsyncIterator[tuple[str, Any]]:
    """The run streamed with LangChain's ``astream_events`` (v2), as LangGraph
    API's ``events`` stream mode does: the root run's ``on_chain_stream`` events
    carry the graph's stream chunks (yielded as ``("chunk", item)``, ``item`` as
    ``astream`` yields it); every other event is yielded as ``("events", event)``."""
    stream: Any = graph.astream_events(graph_input, config, version="v2", **arguments)
    async with contextlib.aclosing(stream):
        async for event in stream:
            if event["event"] == "on_chain_stream" and event["run_id"] == run_id:
                yield "chunk", event["data"]["chunk"]
            else:
                yield "events", event


class StopAtStep(Exception):
    """Raised inside a run to stop it at a step boundary."""


class GraphExecution:
    """Runs runs' graphs with the worker's checkpointer, streaming their events.

    Args:
        resolve: turns a run's graph reference into a graph or a function.
        saver: the checkpointer the graphs run with.
        store: the queue's store, where the run's events go.
        memory: the long-term memory store graphs get (``store=`` of LangGraph,
            nodes' ``store`` argument); ``None``: none.
    """

    def __init__(
        self,
        resolve: Resolver,
        saver: AsyncRedisSaver,
        store: QueueStore,
        memory: BaseStore | None = None,
    ) -> None:
        self.resolve = resolve
        self.saver = saver
        self.store = store
        self.memory = memory
        # per graph reference: the resolved target and its copy with the saver, and
        # the checkpoint metadata naming it (a path resolved once, not per run)
        self._graphs: dict[str, tuple[Any, Pregel[Any, Any, Any, Any]]] = {}
        self._metadata: dict[str, dict[str, str]] = {}

    def _with_saver(
        self, graph_ref: str, target: Pregel[Any, Any, Any, Any]
    ) -> Pregel[Any, Any, Any, Any]:
        """``target`` with this worker's checkpointer (and memory store), copied once
        per target."""
        cached = self._graphs.get(graph_ref)
        if cached is not None and cached[0] is target:
            return cached[1]
        update: dict[str, Any] = {"checkpointer": self.saver}
        if self.memory is not None:
            update["store"] = self.memory
        graph = target.copy(update=update)
        if len(self._graphs) >= _CACHED_GRAPHS:
            self._graphs.clear()
        self._graphs[graph_ref] = (target, graph)
        return graph

    def _graph_metadata(self, graph_ref: str) -> dict[str, str]:
        found = self._metadata.get(graph_ref)
        if found is None:
            if len(self._metadata) >= _CACHED_GRAPHS:
                self._metadata.clear()
            found = self._metadata[graph_ref] = _graph_metadata(graph_ref)
        return found

    async def run(
        self,
        run_id: str,
        graph_ref: str,
        thread_id: str,
        input_text: str,
        token: FencingToken,
        *,
        stop_requested: Callable[[], bool],
        options: str = "",
        fresh: bool = False,
    ) -> tuple[Any, bool]:
        """Run the graph once; return its final values and whether it ended
        interrupted (waiting for a person). Raises :class:`StopAtStep` after the
        first step at which ``stop_requested()`` is true. ``options`` is the run's
        :class:`~dialogllm.queue.models.RunOptions` as JSON. ``fresh``: the queue
        knows that no attempt of this run ever started (so it wrote no checkpoint):
        the thread is not read to look for one, and the final values come from the
        stream when they are exactly the thread's values; otherwise (a redelivery,
        or not known) the thread's state is read before and after.

        >>> values, interrupted = await execution.run(
        ...     run_id, "app.graphs:chat", "t-1", "{}", token,
        ...     stop_requested=lambda: False)
        """
        target = self.resolve(graph_ref)
        payload = decode_input(input_text)
        opts = _decode_options(options)
        if not isinstance(target, Pregel):
            value = target(payload)
            if inspect.isawaitable(value):
                value = await value
            return value, False
        graph = self._with_saver(graph_ref, target)
        plain = cast(RunnableConfig, {"configurable": {"thread_id": thread_id}})
        redelivered = False
        if not fresh:
            state = await graph.aget_state(plain)
            meta = state.metadata
            redelivered = bool(meta and meta.get("run_id") == run_id)
        config = _run_config(
            run_id, thread_id, token, opts, redelivered, self._graph_metadata(graph_ref)
        )
        graph_input: Any = payload
        if redelivered:
            # A redelivery: continue from the last checkpoint. Its committed
            # pending writes are applied, not executed again; a finished run
            # streams nothing. (``state.next`` cannot tell: it omits tasks whose
            # writes are stored but not yet folded into a checkpoint.)
            graph_input = None
        elif opts.command is not None:
            graph_input = Command(**opts.command)
        events = "events" in opts.stream_modes
        extra = [
            m for m in opts.stream_modes if m not in ("updates", "custom", "events")
        ]
        modes: Any = ["updates", "custom", *extra]
        # The last root ``values`` chunk is the thread's final values when the
        # graph's output channels are the channels its state shows, and nothing
        # of the run was there before it (a fresh run): then the thread need not
        # be read again at the end. Otherwise ``final`` stays unset.
        from_stream = fresh and list(graph.output_channels) == list(
            graph.stream_channels_asis
        )
        recorded = set(modes)
        if from_stream and "values" not in recorded:
            modes.append("values")
        final: Any = _UNSET
        interrupted = False
        arguments: dict[str, Any] = {
            "context": opts.context,
            "stream_mode": modes,
            "interrupt_before": _nodes(opts.interrupt_before),
            "interrupt_after": _nodes(opts.interrupt_after),
            "durability": opts.durability or "sync",
            "subgraphs": opts.subgraphs,
        }
        stream: Any = (
            _with_events(graph, graph_input, config, arguments, run_id)
            if events
            else graph.astream(graph_input, config, **arguments)
        )
        async with contextlib.aclosing(stream):
            async for item in stream:
                if events and item[0] == "events":
                    await self.store.add_event(run_id, "events", item[1])
                    continue
                if events:
                    item = item[1]
                namespace, mode, chunk = item if opts.subgraphs else ((), *item)
                if not namespace:
                    if mode == "updates" and isinstance(chunk, dict):
                        interrupted = interrupted or "__interrupt__" in chunk
                    elif mode == "values" and from_stream:
                        # at an interrupt() the chunk also lists the pending
                        # interrupts: they are not part of the thread's values
                        final = _without_interrupts(chunk)
                if mode in recorded:
                    kind = "|".join((str(mode), *namespace))
                    await self.store.add_event(run_id, kind, _event_data(mode, chunk))
                if stop_requested():
                    raise StopAtStep
        if final is not _UNSET:
            # a fresh run's interrupts all went through its root ``updates``
            return final, interrupted
        state = await graph.aget_state(plain)
        return state.values, interrupted or bool(state.interrupts)

    async def rollback(self, run_id: str) -> None:
        """Delete every checkpoint the run wrote (while its lease is still held)."""
        await self.saver.adelete_for_runs([run_id])
