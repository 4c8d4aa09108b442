"""``/threads``: dialogues with their state, history and status.

A thread's record (metadata, times) is the server's
(:class:`~dialogllm.server.storage.ServerStore`); its state and history are the
checkpointer's, read through the thread's graph (named by ``metadata.graph_id``,
set by its first run, as LangGraph's server does); its status is derived when read:
``busy`` while a run holds it, ``error`` when its latest run failed,
``interrupted`` while its graph has a step to go on with (waiting at an
``interrupt()``, before a node, or stopped mid-step), else ``idle``.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import StateSnapshot

from dialogllm.errors import RunNotFoundError
from dialogllm.server.context import RequestContext, ServerContext, request_context
from dialogllm.server.errors import conflict, not_found, unprocessable
from dialogllm.server.schemas import (
    HistoryRequest,
    StateUpdate,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from dialogllm.server.storage import ThreadRecord
from dialogllm.server.wire import (
    JSONResponse,
    checkpoint_json,
    run_status,
    state_json,
    thread_json,
)

__all__ = ["ThreadView", "router", "thread_config"]

router = APIRouter(prefix="/threads", tags=["threads"])
Context = Depends(request_context)


def thread_config(
    thread_id: str, checkpoint: dict[str, Any] | None = None
) -> RunnableConfig:
    """The config that names a thread (at a checkpoint, when given)."""
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    for key in ("checkpoint_id", "checkpoint_ns"):
        if checkpoint and checkpoint.get(key) is not None:
            configurable[key] = checkpoint[key]
    return {"configurable": configurable}


class ThreadView:
    """A thread read for the wire: its record, graph, state and status."""

    def __init__(self, ctx: ServerContext, record: ThreadRecord) -> None:
        self.ctx = ctx
        self.record = record

    @property
    def graph_id(self) -> str | None:
        graph_id = self.record.metadata.get("graph_id")
        if isinstance(graph_id, str) and graph_id in self.ctx.graphs.references:
            return graph_id
        return None

    def graph(self) -> Pregel[Any, Any, Any, Any] | None:
        """The thread's graph with the server's checkpointer (``None`` before its
        first run)."""
        return None if self.graph_id is None else self.ctx.graph(self.graph_id)

    async def state(
        self, checkpoint: dict[str, Any] | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot | None:
        """The thread's state (at ``checkpoint``), or ``None`` before its first run."""
        graph = self.graph()
        if graph is None:
            return None
        config = thread_config(self.record.thread_id, checkpoint)
        return await graph.aget_state(config, subgraphs=subgraphs)

    async def status(self, snapshot: StateSnapshot | None) -> tuple[str, str | None]:
        """The thread's status and, for ``error``, its latest run's error."""
        if await self.ctx.queue.active_run(self.record.thread_id) is not None:
            return "busy", None
        if self.record.last_run:
            try:
                last = await self.ctx.queue.get(self.record.last_run)
            except RunNotFoundError:
                last = None
            if last is not None and run_status(last) == "error":
                return "error", last.error
        # ``tasks``, not only ``next``: a run stopped after a node saved its writes
        # but before the next checkpoint leaves a step whose tasks are all done, so
        # ``next`` is empty while the graph still goes on from there
        if snapshot is not None and (snapshot.next or snapshot.tasks):
            return "interrupted", None
        return "idle", None

    async def to_json(self) -> dict[str, Any]:
        """The thread as LangGraph's API's ``Thread``."""
        snapshot = await self.state()
        status, error = await self.status(snapshot)
        return thread_json(self.record, status, snapshot, error)


async def load_thread(
    ctx: RequestContext,
    thread_id: str,
    action: str = "read",
    value: dict[str, Any] | None = None,
) -> ThreadView:
    """The thread, if the caller may ``action`` it; 404 when it does not exist or
    does not pass the caller's filter (the two look the same)."""
    condition = await ctx.allow("threads", action, value or {"thread_id": thread_id})
    record = await ctx.store.thread(thread_id)
    if record is None or not ctx.sees(record.metadata, condition):
        raise not_found(f"Thread with ID {thread_id} not found")
    return ThreadView(ctx, record)


def _values_match(snapshot: StateSnapshot | None, values: dict[str, Any]) -> bool:
    current = snapshot.values if snapshot is not None else {}
    return isinstance(current, dict) and all(
        current.get(k) == v for k, v in values.items()
    )


async def _search(ctx: RequestContext, body: ThreadSearch) -> list[dict[str, Any]]:
    """The threads matching ``body`` that the caller may see, as JSON, the whole
    match list (paging is the caller's)."""
    value = body.model_dump(exclude={"select", "sort_by", "sort_order"})
    condition = await ctx.allow("threads", "search", value)
    ids = body.ids if body.ids is not None else await ctx.store.thread_ids()
    records = await ctx.store.threads(ids)
    wanted = value.get("metadata") or {}
    records = [
        r
        for r in records
        if all(r.metadata.get(k) == v for k, v in wanted.items())
        and ctx.sees(r.metadata, condition)
    ]
    sort_by = body.sort_by or "created_at"
    descending = (body.sort_order or "desc") == "desc"
    if sort_by in ("created_at", "updated_at", "thread_id"):
        field = {"created_at": "created_ms", "updated_at": "updated_ms"}.get(
            sort_by, sort_by
        )
        records.sort(key=lambda r: getattr(r, field), reverse=descending)
    found: list[dict[str, Any]] = []
    for record in records:
        view = ThreadView(ctx, record)
        snapshot = await view.state()
        if body.values and not _values_match(snapshot, body.values):
            continue
        status, error = await view.status(snapshot)
        if body.status is not None and status != body.status:
            continue
        found.append(thread_json(record, status, snapshot, error))
    if sort_by == "status":
        found.sort(key=lambda t: str(t["status"]), reverse=descending)
    return found


def ttl_seconds(ttl: Any) -> float | None:
    """A thread TTL as the API sends it (minutes, or ``{"ttl": minutes,
    "strategy": "delete"}``) in seconds; ``None`` for none. 422 when it is not a
    positive number of minutes."""
    minutes = ttl.get("ttl") if isinstance(ttl, dict) else ttl
    if minutes is None:
        return None
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or minutes <= 0
    ):
        raise unprocessable("ttl must be a positive number of minutes")
    return float(minutes) * 60


async def _apply_ttl(ctx: RequestContext, thread_id: str, ttl: Any) -> None:
    """The thread's checkpoints and record expire after ``ttl`` of no writes."""
    seconds = ttl_seconds(ttl)
    if seconds is not None:
        await ctx.saver.aset_thread_ttl(thread_id, seconds)
        await ctx.store.expire_thread(thread_id, seconds)


@router.post("")
async def create(body: ThreadCreate, ctx: RequestContext = Context) -> JSONResponse:
    """Create a thread (``if_exists="do_nothing"`` returns an existing one)."""
    thread_id = body.thread_id or str(uuid.uuid4())
    value: dict[str, Any] = {"thread_id": thread_id, "metadata": dict(body.metadata)}
    value["if_exists"] = body.if_exists
    await ctx.allow("threads", "create", value)
    record = await ctx.store.create_thread(thread_id, value["metadata"])
    if record is None:
        if body.if_exists == "do_nothing":
            view = await load_thread(ctx, thread_id)
            return JSONResponse(await view.to_json())
        raise conflict(f"Thread {thread_id} already exists")
    await _apply_ttl(ctx, thread_id, body.ttl)
    return JSONResponse(thread_json(record, "idle", None))


@router.post("/search")
async def search(body: ThreadSearch, ctx: RequestContext = Context) -> JSONResponse:
    """Threads matching metadata, values, ids and status; sorted, paged."""
    found = await _search(ctx, body)
    return JSONResponse(found[body.offset : body.offset + body.limit])


@router.post("/count")
async def count(body: ThreadSearch, ctx: RequestContext = Context) -> JSONResponse:
    """How many threads match."""
    return JSONResponse(len(await _search(ctx, body)))


@router.post("/prune")
async def prune(body: dict[str, Any], ctx: RequestContext = Context) -> JSONResponse:
    """``keep_latest``: only each thread's newest checkpoint stays; ``delete``: the
    threads go."""
    thread_ids = [str(t) for t in body.get("thread_ids") or []]
    for thread_id in thread_ids:
        await load_thread(ctx, thread_id, "delete")
    strategy = body.get("strategy", "delete")
    if strategy == "keep_latest":
        await ctx.saver.aprune(thread_ids, strategy="keep_latest")
    else:
        for thread_id in thread_ids:
            await ctx.saver.adelete_thread(thread_id)
            await ctx.store.delete_thread(thread_id)
    return JSONResponse({"pruned_count": len(thread_ids)})


@router.get("/{thread_id}")
async def get(thread_id: str, ctx: RequestContext = Context) -> JSONResponse:
    """One thread with its status and values."""
    return JSONResponse(await (await load_thread(ctx, thread_id)).to_json())


@router.patch("/{thread_id}")
async def update(
    thread_id: str,
    body: ThreadPatch,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """Merge metadata into the thread's."""
    value: dict[str, Any] = {"thread_id": thread_id, "metadata": dict(body.metadata)}
    view = await load_thread(ctx, thread_id, "update", value)
    await ctx.store.update_thread(
        thread_id, metadata=value["metadata"], known=view.record
    )
    await _apply_ttl(ctx, thread_id, body.ttl)
    view.record = await ctx.store.thread(thread_id) or view.record
    return JSONResponse(await view.to_json())


@router.delete("/{thread_id}", status_code=204)
async def delete(thread_id: str, ctx: RequestContext = Context) -> None:
    """Delete the thread, its checkpoints and its record."""
    await load_thread(ctx, thread_id, "delete")
    active = await ctx.queue.active_run(thread_id)
    if active is not None:
        await ctx.queue.cancel(active.run_id, "thread deleted")
    await ctx.saver.adelete_thread(thread_id)
    await ctx.store.delete_thread(thread_id)


@router.post("/{thread_id}/copy")
async def copy(thread_id: str, ctx: RequestContext = Context) -> JSONResponse:
    """A new thread with the same metadata and history."""
    source = await load_thread(ctx, thread_id)
    new_id = str(uuid.uuid4())
    await ctx.saver.acopy_thread(thread_id, new_id)
    record = await ctx.store.create_thread(new_id, source.record.metadata)
    assert record is not None  # a fresh uuid
    return JSONResponse(await ThreadView(ctx, record).to_json())


def _empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "metadata": {},
        "created_at": None,
        "checkpoint": {
            "thread_id": thread_id,
            "checkpoint_ns": "",
            "checkpoint_id": None,
        },
        "parent_checkpoint": None,
        "interrupts": [],
        "checkpoint_id": None,
        "parent_checkpoint_id": None,
    }


async def _state(
    ctx: RequestContext,
    thread_id: str,
    checkpoint: dict[str, Any] | None,
    subgraphs: bool,
) -> JSONResponse:
    view = await load_thread(ctx, thread_id)
    snapshot = await view.state(checkpoint, subgraphs=subgraphs)
    if snapshot is None or (checkpoint is None and not snapshot.config):
        return JSONResponse(_empty_state(thread_id))
    if checkpoint is not None and not snapshot.config:
        raise not_found(
            f"Checkpoint {checkpoint.get('checkpoint_id')} of thread {thread_id} "
            "not found"
        )
    return JSONResponse(state_json(snapshot))


@router.get("/{thread_id}/state")
async def get_state(
    thread_id: str,
    subgraphs: bool = False,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The thread's latest state."""
    return await _state(ctx, thread_id, None, subgraphs)


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_state_at(
    thread_id: str,
    checkpoint_id: str,
    subgraphs: bool = False,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The thread's state at one checkpoint."""
    at = {"checkpoint_id": checkpoint_id}
    return await _state(ctx, thread_id, at, subgraphs)


@router.post("/{thread_id}/state/checkpoint")
async def get_state_at_checkpoint(
    thread_id: str,
    body: dict[str, Any],
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The thread's state at the checkpoint the body names."""
    at = dict(body.get("checkpoint") or {})
    return await _state(ctx, thread_id, at, bool(body.get("subgraphs")))


@router.post("/{thread_id}/state")
async def update_state(
    thread_id: str,
    body: StateUpdate,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """Write values into the thread's state as if ``as_node`` had (a new
    checkpoint); refused while a run holds the thread."""
    view = await load_thread(ctx, thread_id, "update")
    graph = view.graph()
    if graph is None:
        raise conflict(f"Thread {thread_id} has no graph yet: run it first")
    if await ctx.queue.active_run(thread_id) is not None:
        raise conflict(f"Thread {thread_id} is busy with a run")
    checkpoint = body.checkpoint or (
        {"checkpoint_id": body.checkpoint_id} if body.checkpoint_id else None
    )
    config = await graph.aupdate_state(
        thread_config(thread_id, checkpoint), body.values, as_node=body.as_node
    )
    await ctx.store.update_thread(thread_id)
    return JSONResponse({"checkpoint": checkpoint_json(config)})


async def _history(
    ctx: RequestContext, thread_id: str, body: HistoryRequest
) -> JSONResponse:
    view = await load_thread(ctx, thread_id)
    graph = view.graph()
    if graph is None:
        return JSONResponse([])
    before = body.before
    before_config = (
        thread_config(thread_id, {"checkpoint_id": before})
        if isinstance(before, str)
        else thread_config(thread_id, before)
        if before
        else None
    )
    states = [
        state_json(s)
        async for s in graph.aget_state_history(
            thread_config(thread_id, body.checkpoint),
            filter=body.metadata,
            before=before_config,
            limit=body.limit,
        )
    ]
    return JSONResponse(states)


@router.post("/{thread_id}/history")
async def history(
    thread_id: str,
    body: HistoryRequest,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The thread's past states, newest first."""
    return await _history(ctx, thread_id, body)


@router.get("/{thread_id}/history")
async def history_get(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    before: str | None = None,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The thread's past states, newest first (query form)."""
    body = HistoryRequest(limit=limit, before=before)
    return await _history(ctx, thread_id, body)
