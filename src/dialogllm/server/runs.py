"""Runs: ``/threads/{thread_id}/runs…`` and the stateless ``/runs…``.

A run created here is a queue run (:class:`~dialogllm.queue.Queue`): any worker of
the queue runs it, with leases, fencing and resumption from the last checkpoint; its
events live in the run's Redis stream, so any API process can stream them, from the
start or after the ``Last-Event-ID`` a reconnecting client sends. Routes validate and
translate; the queue and the checkpointer do the work.

Stream events are LangGraph's: ``metadata`` first (``run_id``, ``attempt``), then
one event per chunk of each requested mode (``values``, ``updates``, ``custom``,
``messages`` for ``messages-tuple``, ``debug``, ``tasks``, ``checkpoints``;
``mode|namespace`` for subgraphs), ``error`` when the run fails; each carries the
stream entry id as its ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse

from dialogllm.errors import RunNotFoundError, ThreadBusyError
from dialogllm.logging import get_logger
from dialogllm.queue import RunOptions, RunRecord
from dialogllm.queue.models import dumps
from dialogllm.server.context import ServerContext, context_of
from dialogllm.server.errors import ApiError, conflict, not_found, unprocessable
from dialogllm.server.schemas import RunCreate
from dialogllm.server.threads import ThreadView, load_thread
from dialogllm.server.wire import JSONResponse, run_json

__all__ = ["router"]

router = APIRouter(tags=["runs"])
Context = Depends(context_of)
_log = get_logger("dialogllm.server")

#: SDK stream mode -> the LangGraph stream mode a run records for it.
_RECORDED = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "messages-tuple": "messages",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}
_PING_S = 15


def _recorded_modes(body: RunCreate) -> tuple[str, ...]:
    modes = body.modes()
    unsupported = [m for m in modes if m not in _RECORDED]
    if unsupported:
        raise unprocessable(
            f"stream_mode {', '.join(unsupported)} is not supported by this server; "
            f"use {', '.join(_RECORDED)}"
        )
    return tuple(dict.fromkeys(_RECORDED[m] for m in modes))


def _merged(base: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**base, **(extra or {})}
    configurable = {
        **(base.get("configurable") or {}),
        **((extra or {}).get("configurable") or {}),
    }
    if configurable:
        merged["configurable"] = configurable
    return merged


async def create_run(
    ctx: ServerContext, thread_id: str | None, body: RunCreate
) -> RunRecord:
    """Validate ``body``, make sure the thread exists, enqueue the run."""
    if body.input is not None and body.command is not None:
        raise unprocessable("input and command cannot both be given")
    if thread_id is None and (body.command or {}).get("resume") is not None:
        # a new thread has nothing to resume: LangGraph's server refuses it so
        raise ApiError(400, "You must provide a thread_id when resuming.")
    assistant = await ctx.assistant(body.assistant_id, by_graph=True)
    modes = _recorded_modes(body)
    if thread_id is None:
        thread_id = str(uuid.uuid4())
        await ctx.store.create_thread(thread_id, {})
    elif await ctx.store.thread(thread_id) is None:
        if body.if_not_exists != "create":
            raise not_found(f"Thread with ID {thread_id} not found")
        await ctx.store.create_thread(thread_id, {})
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    owner = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
    options = RunOptions(
        command=body.command,
        config=_merged(assistant.config, body.config),
        context={**assistant.context, **(body.context or {})} or None,
        metadata={**body.metadata, **owner},
        checkpoint_id=checkpoint_id,
        stream_modes=modes,
        subgraphs=body.stream_subgraphs,
        interrupt_before=_nodes(body.interrupt_before),
        interrupt_after=_nodes(body.interrupt_after),
        durability=body.durability,
    )
    run_id = str(uuid.uuid4())
    try:
        await ctx.queue.enqueue(
            ctx.graphs.references[assistant.graph_id],
            body.input,
            thread_id=thread_id,
            multitask=body.multitask_strategy,
            delay=body.after_seconds,
            options=options,
            run_id=run_id,
        )
    except ThreadBusyError:
        raise conflict(
            f"Thread {thread_id} is already running a run; use multitask_strategy "
            "'enqueue', 'interrupt' or 'rollback' to run this one too"
        ) from None
    await ctx.store.update_thread(thread_id, metadata=owner, last_run=run_id)
    return await ctx.queue.get(run_id)


def _nodes(value: str | list[str] | None) -> str | tuple[str, ...] | None:
    return tuple(value) if isinstance(value, list) else value


async def _run_of(ctx: ServerContext, thread_id: str, run_id: str) -> RunRecord:
    try:
        record = await ctx.queue.get(run_id)
    except RunNotFoundError:
        record = None
    if record is None or record.thread_id != thread_id:
        raise not_found(f"Run {run_id} not found")
    return record


async def _final_values(ctx: ServerContext, record: RunRecord) -> Any:
    """What ``/wait`` and ``/join`` answer: the thread's values after the run (with
    its pending interrupts under ``__interrupt__``), or the run's error."""
    if record.status.value in ("error", "dead"):
        return {"__error__": {"error": "RunError", "message": record.error or ""}}
    stored = await ctx.store.thread(record.thread_id)
    if stored is None:
        return record.result
    snapshot = await ThreadView(ctx, stored).state()
    if snapshot is None or not snapshot.config:
        return record.result
    values: Any = snapshot.values
    if snapshot.interrupts and isinstance(values, dict):
        values = {
            **values,
            "__interrupt__": [
                {"value": i.value, "id": i.id} for i in snapshot.interrupts
            ],
        }
    return values


async def _delete_thread(ctx: ServerContext, thread_id: str) -> None:
    await ctx.saver.adelete_thread(thread_id)
    await ctx.store.delete_thread(thread_id)


def run_stream(
    ctx: ServerContext,
    record: RunRecord,
    modes: tuple[str, ...],
    *,
    last_event_id: str | None,
    cancel_on_disconnect: bool = False,
    delete_thread_after: bool = False,
) -> EventSourceResponse:
    """The run's events as Server-Sent Events, from ``last_event_id`` on."""
    run_id, thread_id = record.run_id, record.thread_id

    async def events() -> AsyncIterator[dict[str, Any]]:
        finished = False
        try:
            first = last_event_id is None
            async for event in ctx.queue.events(run_id, after=last_event_id or "0"):
                if first:
                    first = False
                    meta = {"run_id": run_id, "attempt": max(record.attempts, 1)}
                    yield {"event": "metadata", "data": dumps(meta), "id": event.id}
                if event.kind == "status":
                    status = event.status
                    if status is not None and status.value in ("error", "dead"):
                        detail = (event.data or {}).get("detail") or ""
                        body = {"error": "RunError", "message": str(detail)}
                        yield {"event": "error", "data": dumps(body), "id": event.id}
                    continue
                if event.kind.partition("|")[0] not in modes:
                    continue
                yield {"event": event.kind, "data": dumps(event.data), "id": event.id}
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                with contextlib.suppress(Exception):
                    await ctx.queue.cancel(run_id, "client disconnected")
            if finished and delete_thread_after:
                await ctx.queue.wait(run_id)
                await _delete_thread(ctx, thread_id)

    headers = {
        "Location": f"/threads/{thread_id}/runs/{run_id}/stream",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    }
    return EventSourceResponse(events(), ping=_PING_S, headers=headers, sep="\r\n")


async def _stream_new(
    ctx: ServerContext, thread_id: str | None, body: RunCreate, stateless: bool
) -> EventSourceResponse:
    record = await create_run(ctx, thread_id, body)
    modes = tuple(_RECORDED[m] for m in body.modes())
    on_disconnect = body.on_disconnect or ("cancel" if stateless else "continue")
    return run_stream(
        ctx,
        record,
        modes,
        last_event_id=None,
        cancel_on_disconnect=on_disconnect == "cancel",
        delete_thread_after=stateless and (body.on_completion or "delete") == "delete",
    )


async def _wait_new(
    ctx: ServerContext, thread_id: str | None, body: RunCreate, stateless: bool
) -> JSONResponse:
    record = await create_run(ctx, thread_id, body)
    done = await ctx.queue.wait(record.run_id)
    values = await _final_values(ctx, done)
    if stateless and (body.on_completion or "delete") == "delete":
        await _delete_thread(ctx, done.thread_id)
    headers = {"Content-Location": f"/threads/{done.thread_id}/runs/{done.run_id}"}
    return JSONResponse(values, headers=headers)


def _clean_up_later(ctx: ServerContext, record: RunRecord) -> None:
    """Delete a background stateless run's thread once the run ends (in this
    process: a restart leaves the thread, which the checkpointer's TTL expires)."""

    async def clean() -> None:
        with contextlib.suppress(Exception):
            await ctx.queue.wait(record.run_id)
            await _delete_thread(ctx, record.thread_id)

    task = asyncio.create_task(clean())
    ctx.background.add(task)
    task.add_done_callback(ctx.background.discard)


# --- threaded runs ------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create(
    thread_id: str, body: RunCreate, ctx: ServerContext = Context
) -> JSONResponse:
    """Create a run in the background; answer its record at once."""
    record = await create_run(ctx, thread_id, body)
    headers = {"Content-Location": f"/threads/{thread_id}/runs/{record.run_id}"}
    return JSONResponse(run_json(record), headers=headers)


@router.post("/threads/{thread_id}/runs/stream")
async def create_and_stream(
    thread_id: str, body: RunCreate, ctx: ServerContext = Context
) -> EventSourceResponse:
    """Create a run and stream its events."""
    return await _stream_new(ctx, thread_id, body, stateless=False)


@router.post("/threads/{thread_id}/runs/wait")
async def create_and_wait(
    thread_id: str, body: RunCreate, ctx: ServerContext = Context
) -> JSONResponse:
    """Create a run, wait for it, answer the thread's values."""
    return await _wait_new(ctx, thread_id, body, stateless=False)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
    ctx: ServerContext = Context,
) -> JSONResponse:
    """The thread's runs, newest first."""
    await load_thread(ctx, thread_id)
    records = await ctx.queue.list(thread_id=thread_id, limit=limit + offset)
    found = [run_json(r) for r in records]
    if status is not None:
        found = [r for r in found if r["status"] == status]
    return JSONResponse(found[offset : offset + limit])


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get(
    thread_id: str, run_id: str, ctx: ServerContext = Context
) -> JSONResponse:
    """One run."""
    return JSONResponse(run_json(await _run_of(ctx, thread_id, run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(
    thread_id: str, run_id: str, ctx: ServerContext = Context
) -> JSONResponse:
    """Wait for the run to end; answer the thread's values."""
    await _run_of(ctx, thread_id, run_id)
    return JSONResponse(await _final_values(ctx, await ctx.queue.wait(run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
    last_event_id: Annotated[str | None, Header()] = None,
    ctx: ServerContext = Context,
) -> EventSourceResponse:
    """Stream a run's events: all of them, or those after ``Last-Event-ID``."""
    record = await _run_of(ctx, thread_id, run_id)
    if stream_mode:
        unknown = [m for m in stream_mode if m not in _RECORDED]
        if unknown:
            raise unprocessable(f"stream_mode {', '.join(unknown)} is not supported")
        modes = tuple(_RECORDED[m] for m in stream_mode)
    else:
        modes = record.options.stream_modes or ("values",)
    return run_stream(
        ctx,
        record,
        modes,
        last_event_id=last_event_id,
        cancel_on_disconnect=cancel_on_disconnect,
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(
    thread_id: str,
    run_id: str,
    wait: bool = False,
    action: str = "interrupt",
    ctx: ServerContext = Context,
) -> JSONResponse:
    """Stop a run (``action="rollback"`` also deletes what it wrote)."""
    if action not in ("interrupt", "rollback"):
        raise unprocessable("action must be 'interrupt' or 'rollback'")
    await _run_of(ctx, thread_id, run_id)
    await ctx.queue.cancel(run_id, f"cancelled ({action})")
    if wait or action == "rollback":
        await ctx.queue.wait(run_id)
    if action == "rollback":
        await ctx.saver.adelete_for_runs([run_id])
    return JSONResponse(None, status_code=202 if not wait else 200)


# --- stateless runs ------------------------------------------------------------------


@router.post("/runs")
async def create_stateless(
    body: RunCreate, ctx: ServerContext = Context
) -> JSONResponse:
    """A run on a new thread, in the background (deleted after it, by default)."""
    record = await create_run(ctx, None, body)
    if (body.on_completion or "delete") == "delete":
        _clean_up_later(ctx, record)
    return JSONResponse(run_json(record))


@router.post("/runs/stream")
async def stream_stateless(
    body: RunCreate, ctx: ServerContext = Context
) -> EventSourceResponse:
    """A run on a new thread, streamed."""
    return await _stream_new(ctx, None, body, stateless=True)


@router.post("/runs/wait")
async def wait_stateless(body: RunCreate, ctx: ServerContext = Context) -> JSONResponse:
    """A run on a new thread; answer its final values."""
    return await _wait_new(ctx, None, body, stateless=True)


@router.post("/runs/batch")
async def batch(bodies: list[RunCreate], ctx: ServerContext = Context) -> JSONResponse:
    """Several stateless background runs at once."""
    records = [await create_run(ctx, None, body) for body in bodies]
    return JSONResponse([run_json(r) for r in records])
