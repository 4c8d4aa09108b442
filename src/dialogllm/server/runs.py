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
import functools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sse_starlette import EventSourceResponse

from dialogllm.errors import RunNotFoundError, ThreadBusyError
from dialogllm.logging import get_logger
from dialogllm.queue import RunOptions, RunRecord
from dialogllm.queue.models import dumps, node_names
from dialogllm.server.context import RequestContext, ServerContext, request_context
from dialogllm.server.errors import ApiError, conflict, not_found, unprocessable
from dialogllm.server.followups import Followup
from dialogllm.server.schemas import RunCreate
from dialogllm.server.storage import RunNote, ThreadRecord
from dialogllm.server.streaming import EventTranslator, recorded_modes
from dialogllm.server.threads import ThreadView, load_thread
from dialogllm.server.webhooks import deliver
from dialogllm.server.wire import JSONResponse, interrupts_json, iso, run_json

__all__ = ["router"]

router = APIRouter(tags=["runs"])
Context = Depends(request_context)
_log = get_logger("dialogllm.server")

_PING_S = 15
#: How often a thread's stream looks for the thread's next run.
_THREAD_POLL_S = 0.2


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
    ctx: RequestContext,
    thread_id: str | None,
    body: RunCreate,
    *,
    followed: bool = False,
) -> RunRecord:
    """Validate ``body``, check the caller may run on the thread (creating it when
    asked), enqueue the run. ``followed``: the request waits for or streams the
    run, and does its follow-up itself (then releases it)."""
    if body.input is not None and body.command is not None:
        raise unprocessable("input and command cannot both be given")
    if thread_id is None and (body.command or {}).get("resume") is not None:
        # a new thread has nothing to resume: LangGraph's server refuses it so
        raise ApiError(400, "You must provide a thread_id when resuming.")
    webhook = await ctx.webhooks.policy.check(body.webhook) if body.webhook else None
    assistant = await ctx.assistant(body.assistant_id, by_graph=True)
    modes = recorded_modes(body.modes())
    run_id = str(uuid.uuid4())
    target = thread_id or str(uuid.uuid4())
    value: dict[str, Any] = {
        "thread_id": target,
        "assistant_id": assistant.assistant_id,
        "run_id": run_id,
        "status": "pending",
        "metadata": dict(body.metadata),
        "multitask_strategy": body.multitask_strategy,
        "if_not_exists": body.if_not_exists,
        "after_seconds": body.after_seconds,
        "kwargs": {"input": body.input, "command": body.command},
    }
    condition = await ctx.allow("threads", "create_run", value)
    metadata = dict(value.get("metadata") or {})
    existing = None if thread_id is None else await ctx.store.thread(thread_id)
    if existing is not None and not ctx.sees(existing.metadata, condition):
        existing = None
        if await ctx.store.thread(target) is not None:  # someone else's thread
            raise not_found(f"Thread with ID {target} not found")
    if existing is None and thread_id is not None and body.if_not_exists != "create":
        raise not_found(f"Thread with ID {thread_id} not found")
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    owner = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
    options = RunOptions(
        command=body.command,
        config=_merged(assistant.config, body.config),
        context={**assistant.context, **(body.context or {})} or None,
        metadata={**metadata, **owner},
        checkpoint_id=checkpoint_id,
        stream_modes=modes,
        subgraphs=body.stream_subgraphs,
        interrupt_before=node_names(body.interrupt_before),
        interrupt_after=node_names(body.interrupt_after),
        durability=body.durability,
    )
    enqueue = ctx.queue.enqueue_record(
        ctx.graphs.references[assistant.graph_id],
        body.input,
        thread_id=target,
        multitask=body.multitask_strategy,
        delay=body.after_seconds,
        options=options,
        run_id=run_id,
    )
    note = functools.partial(
        _note_run, ctx, target, existing, {**metadata, **owner}, owner, run_id
    )
    # The thread's record (created, or its owner and latest run noted) is written
    # beside the enqueue, one wait for both; should the enqueue fail, the note is
    # taken back (the run it replaced is named again; a thread it made goes). A run
    # of another assistant than the thread's waits for its enqueue first: a refused
    # one must not hand it the thread (its state is read with the owner's graph).
    together = not _hands_over(existing, owner)
    if together:
        record, noted = await asyncio.gather(enqueue, note(), return_exceptions=True)
    else:
        record = await _settled(enqueue)
        noted = None if isinstance(record, BaseException) else await _settled(note())
    if isinstance(record, BaseException):
        if isinstance(noted, RunNote):
            await ctx.store.take_back(noted)
        if isinstance(record, ThreadBusyError):
            raise conflict(
                f"Thread {target} is already running a run; use multitask_strategy "
                "'enqueue', 'interrupt' or 'rollback' to run this one too"
            ) from None
        raise record
    if isinstance(noted, BaseException):
        raise noted
    # a stateless run's thread goes when the run ends, unless the client keeps it
    delete = thread_id is None and (body.on_completion or "delete") == "delete"
    if webhook is not None or delete:
        held = followed and webhook is None  # a request cannot send a webhook
        await ctx.followups.add(Followup(run_id, target, webhook, delete), held=held)
    return record


def _hands_over(existing: ThreadRecord | None, owner: dict[str, Any]) -> bool:
    """Whether a run of ``owner`` would move the ``existing`` thread from another
    assistant (not: from none)."""
    known = existing.metadata if existing is not None else {}
    return any(known.get(k) not in (None, v) for k, v in owner.items())


async def _settled(step: Awaitable[Any]) -> Any:
    """What ``step`` returns, or the exception it raises (as ``gather`` with
    ``return_exceptions`` gives them)."""
    try:
        return await step
    except Exception as exc:
        return exc


async def _note_run(
    ctx: RequestContext,
    thread_id: str,
    existing: ThreadRecord | None,
    metadata: dict[str, Any],
    owner: dict[str, Any],
    run_id: str,
) -> RunNote | None:
    """Create the run's thread with ``metadata``, or note on the ``existing`` one
    its owner (when it changed) and its latest run; what to take back should the
    enqueue fail (``None``: the thread went meanwhile)."""
    if existing is None:
        made = await ctx.store.create_thread(thread_id, metadata, last_run=run_id)
        if made is not None:
            return RunNote(thread_id, run_id, created=True)
        existing = await ctx.store.thread(thread_id)  # made meanwhile by another
        if existing is None:
            return None  # and deleted since
    changed = any(existing.metadata.get(k) != v for k, v in owner.items())
    return await ctx.store.note_run(
        existing, run_id, metadata=owner if changed else None
    )


async def follow_up(ctx: ServerContext, followup: Followup) -> None:
    """What a run's :class:`~dialogllm.server.followups.Followup` asks for, once the
    run ended: POST its webhook, then delete its thread (a stateless run's)."""
    try:
        record = await ctx.queue.wait(followup.run_id)
    except RunNotFoundError:
        return  # deleted, or past the queue's retention: nothing to report
    if followup.webhook:

        async def ended() -> dict[str, Any]:
            return {
                **run_json(record),
                "values": await _final_values(ctx, record),
                "run_started_at": iso(record.started_at),
                "run_ended_at": iso(record.finished_at),
                "webhook_sent_at": iso(time.time()),
            }

        await deliver(
            followup.webhook, ended, run_id=followup.run_id, config=ctx.webhooks
        )
    if followup.delete_thread:
        await _delete_thread(ctx, followup.thread_id)


async def _run_of(
    ctx: RequestContext,
    thread_id: str,
    run_id: str,
    action: str = "read",
) -> RunRecord:
    await load_thread(ctx, thread_id, action)
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
        values = {**values, "__interrupt__": interrupts_json(snapshot.interrupts)}
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
) -> EventSourceResponse:
    """The run's events as Server-Sent Events, from ``last_event_id`` on."""
    run_id, thread_id = record.run_id, record.thread_id

    async def events() -> AsyncIterator[dict[str, Any]]:
        finished = False
        translate = EventTranslator(modes)
        try:
            first = last_event_id is None
            async for event in ctx.queue.events(run_id, after=last_event_id or "0"):
                if first:
                    first = False
                    meta = {"run_id": run_id, "attempt": max(record.attempts, 1)}
                    yield {"event": "metadata", "data": dumps(meta), "id": event.id}
                for sse in translate(event):
                    yield sse
            finished = True
        finally:
            if not finished and cancel_on_disconnect:
                with contextlib.suppress(Exception):
                    await ctx.queue.cancel(run_id, "client disconnected")

    headers = {
        "Location": f"/threads/{thread_id}/runs/{run_id}/stream",
        "Content-Location": f"/threads/{thread_id}/runs/{run_id}",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    }
    return EventSourceResponse(events(), ping=_PING_S, headers=headers, sep="\r\n")


async def _stream_new(
    ctx: RequestContext,
    thread_id: str | None,
    body: RunCreate,
    stateless: bool,
) -> EventSourceResponse:
    record = await create_run(ctx, thread_id, body)
    modes = tuple(body.modes())
    on_disconnect = body.on_disconnect or ("cancel" if stateless else "continue")
    return run_stream(
        ctx,
        record,
        modes,
        last_event_id=None,
        cancel_on_disconnect=on_disconnect == "cancel",
    )


async def _wait_new(
    ctx: RequestContext,
    thread_id: str | None,
    body: RunCreate,
    stateless: bool,
) -> JSONResponse:
    record = await create_run(ctx, thread_id, body, followed=True)
    deleted = False
    try:
        done = await ctx.queue.wait(record.run_id)
        values = await _final_values(ctx, done)
        if (
            stateless
            and not body.webhook
            and (body.on_completion or "delete") == "delete"
        ):
            # the thread goes after its values are read (a webhook's follow-up
            # deletes it after the webhook read them)
            await _delete_thread(ctx, done.thread_id)
            deleted = True
    finally:
        # a client that left before the end leaves the deletion to the follow-up
        await ctx.followups.release(record.run_id, done=deleted)
    headers = {"Content-Location": f"/threads/{done.thread_id}/runs/{done.run_id}"}
    return JSONResponse(values, headers=headers)


# --- threaded runs ------------------------------------------------------------------


@router.post("/threads/{thread_id}/runs")
async def create(
    thread_id: str,
    body: RunCreate,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """Create a run in the background; answer its record at once."""
    record = await create_run(ctx, thread_id, body)
    headers = {"Content-Location": f"/threads/{thread_id}/runs/{record.run_id}"}
    return JSONResponse(run_json(record), headers=headers)


def _create_and(
    follow: Callable[..., Awaitable[Response]], doc: str
) -> Callable[..., Awaitable[Response]]:
    """The route that creates a run on a thread and then ``follow``s it (streams
    it, or waits for it): the two differ in nothing else."""

    async def route(
        thread_id: str, body: RunCreate, ctx: RequestContext = Context
    ) -> Response:
        return await follow(ctx, thread_id, body, stateless=False)

    route.__doc__ = doc
    return route


router.add_api_route(
    "/threads/{thread_id}/runs/stream",
    _create_and(_stream_new, "Create a run and stream its events."),
    methods=["POST"],
    name="create_and_stream",
)
router.add_api_route(
    "/threads/{thread_id}/runs/wait",
    _create_and(_wait_new, "Create a run, wait for it, answer the thread's values."),
    methods=["POST"],
    name="create_and_wait",
)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: str,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
    ctx: RequestContext = Context,
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
    thread_id: str, run_id: str, ctx: RequestContext = Context
) -> JSONResponse:
    """One run."""
    return JSONResponse(run_json(await _run_of(ctx, thread_id, run_id)))


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join(
    thread_id: str, run_id: str, ctx: RequestContext = Context
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
    ctx: RequestContext = Context,
) -> EventSourceResponse:
    """Stream a run's events: all of them, or those after ``Last-Event-ID``."""
    record = await _run_of(ctx, thread_id, run_id)
    if stream_mode:
        recorded_modes(stream_mode)  # 422 for a mode this server does not stream
        modes = tuple(stream_mode)
    else:  # the modes the run was created with
        modes = _own_modes(record)
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
    ctx: RequestContext = Context,
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


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
async def delete(thread_id: str, run_id: str, ctx: RequestContext = Context) -> None:
    """Forget a finished run (409 while it is pending or running: cancel it)."""
    await _run_of(ctx, thread_id, run_id, "update")
    await ctx.queue.delete(run_id)


@router.get("/threads/{thread_id}/stream")
async def thread_stream(
    thread_id: str,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
    ctx: RequestContext = Context,
) -> EventSourceResponse:
    """Every run of the thread, one after the other, as they happen (until the
    client leaves). Event ids are ``RUN_ID/ENTRY_ID``: a client that reconnects
    with one continues after it."""
    await load_thread(ctx, thread_id)
    asked = [m for m in stream_mode or [] if m != "run_modes"]
    recorded_modes(asked)  # 422 for a mode this server does not stream
    resume_run, _, resume_after = (last_event_id or "").partition("/")

    async def events() -> AsyncIterator[dict[str, Any]]:
        seen: set[str] = set()
        seconds, micros = await ctx.queue.client.time()  # the clock runs are timed by
        opened = seconds + micros / 1e6
        current, after = (resume_run or None), (resume_after or "0")
        while True:
            if current is None:
                current = await _next_run(ctx, thread_id, opened, seen)
                if current is None:
                    await asyncio.sleep(_THREAD_POLL_S)
                    continue
            record = await ctx.queue.get(current)
            translate = EventTranslator(asked or _own_modes(record))
            async for event in ctx.queue.events(current, after=after):
                for sse in translate(event):
                    yield {**sse, "id": f"{current}/{sse['id']}"}
            seen.add(current)
            current, after = None, "0"

    return EventSourceResponse(events(), ping=_PING_S, sep="\r\n")


async def _next_run(
    ctx: ServerContext, thread_id: str, opened: float, seen: set[str]
) -> str | None:
    """The thread's oldest run not streamed yet that is running or was created
    since the stream opened."""
    records = await ctx.queue.list(thread_id=thread_id, limit=50)
    fresh = [
        r
        for r in records
        if r.run_id not in seen
        and (not r.status.is_terminal or (r.created_at or 0) >= opened)
    ]
    fresh.sort(key=lambda r: r.created_at or 0)
    return fresh[0].run_id if fresh else None


def _own_modes(record: RunRecord) -> tuple[str, ...]:
    """The modes a run was created with, in the API's names."""
    return tuple(
        "messages-tuple" if m == "messages" else m
        for m in record.options.stream_modes or ("values",)
    )


# --- stateless runs ------------------------------------------------------------------


@router.post("/runs")
async def create_stateless(
    body: RunCreate, ctx: RequestContext = Context
) -> JSONResponse:
    """A run on a new thread, in the background (deleted after it, by default)."""
    record = await create_run(ctx, None, body)
    return JSONResponse(run_json(record))


@router.post("/runs/stream")
async def stream_stateless(
    body: RunCreate, ctx: RequestContext = Context
) -> EventSourceResponse:
    """A run on a new thread, streamed."""
    return await _stream_new(ctx, None, body, stateless=True)


@router.post("/runs/wait")
async def wait_stateless(
    body: RunCreate, ctx: RequestContext = Context
) -> JSONResponse:
    """A run on a new thread; answer its final values."""
    return await _wait_new(ctx, None, body, stateless=True)


@router.post("/runs/batch")
async def batch(bodies: list[RunCreate], ctx: RequestContext = Context) -> JSONResponse:
    """Several stateless background runs at once."""
    records = [await create_run(ctx, None, body) for body in bodies]
    return JSONResponse([run_json(r) for r in records])
