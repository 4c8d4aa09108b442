"""Crons: ``/runs/crons…`` and ``/threads/{thread_id}/runs/crons``.

A cron created here is a queue cron (:class:`~dialogllm.queue.Crons`): the schedulers
of every worker and API process fire it, each tick exactly once, as a queue run of
the assistant's graph with the assistant's configuration (merged with the cron's).
A cron for a thread runs on that thread; a stateless one on a new thread per firing,
deleted after the run unless ``on_run_completed="keep"``. What the API does for
each firing — the thread's record, the ``webhook``, the stateless thread's deletion
— any API process does, whoever fired it (:mod:`dialogllm.server.cron_firings`).
Replies are LangGraph's
``Cron`` (``cron_id``, ``assistant_id``, ``thread_id``, ``schedule``, ``timezone``,
``end_time``, ``payload``, ``user_id``, ``next_run_date``, ``metadata``,
``enabled``, ``on_run_completed``, ``created_at``, ``updated_at``), with ``catch_up``,
``last_run_id`` and ``fired`` added. Custom auth runs the ``crons`` resource's
handlers (``create``, ``read``, ``update``, ``delete``, ``search``); their filters
apply to a cron's metadata.

The rule a reader must not break: a cron the caller's filter hides is answered as one
that does not exist (404), as for threads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.errors import CronNotFoundError
from dialogllm.queue import CronRecord, Crons, RunOptions
from dialogllm.queue.models import node_names
from dialogllm.server.context import RequestContext, request_context
from dialogllm.server.errors import ApiError, not_found, unprocessable
from dialogllm.server.schemas import MultitaskStrategy, StreamModeName
from dialogllm.server.storage import AssistantRecord
from dialogllm.server.streaming import recorded_modes
from dialogllm.server.threads import load_thread
from dialogllm.server.wire import JSONResponse, iso

__all__ = ["CronCreate", "CronPatch", "CronSearch", "cron_json", "router"]

router = APIRouter(tags=["crons"])
Context = Depends(request_context)

_OPTION_FIELDS = (
    "config",
    "context",
    "interrupt_before",
    "interrupt_after",
    "stream_mode",
    "stream_subgraphs",
    "durability",
)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CronCreate(_Body):
    """``POST /runs/crons`` and ``POST /threads/{thread_id}/runs/crons``
    (``catch_up`` is DialogueLLM's: fire every tick missed during downtime)."""

    assistant_id: str
    schedule: str
    input: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint_during: bool | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    end_time: datetime | None = None
    enabled: bool = True
    timezone: str | None = None
    stream_mode: StreamModeName | list[StreamModeName] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    catch_up: bool = False


class CronPatch(_Body):
    """``PATCH /runs/crons/{cron_id}``: the fields given change (an explicit
    ``end_time: null`` clears the end)."""

    schedule: str | None = None
    end_time: datetime | None = None
    input: Any = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    webhook: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    enabled: bool | None = None
    timezone: str | None = None
    stream_mode: StreamModeName | list[StreamModeName] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    catch_up: bool | None = None


class CronSearch(_Body):
    """``POST /runs/crons/search`` and ``/runs/crons/count``."""

    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: (
        Literal[
            "cron_id",
            "assistant_id",
            "thread_id",
            "next_run_date",
            "end_time",
            "created_at",
            "updated_at",
        ]
        | None
    ) = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


def cron_json(cron: CronRecord) -> dict[str, Any]:
    """A cron as LangGraph's API's ``Cron``."""
    spec = cron.spec
    return {
        "cron_id": cron.cron_id,
        "assistant_id": spec.assistant_id,
        "thread_id": spec.thread_id,
        "on_run_completed": None if spec.thread_id else spec.on_run_completed,
        "end_time": iso(spec.end_ms),
        "schedule": spec.schedule,
        "timezone": spec.timezone,
        "created_at": iso(cron.created_ms),
        "updated_at": iso(cron.updated_ms),
        "payload": spec.payload,
        "user_id": spec.user_id,
        "next_run_date": iso(cron.next_ms),
        "metadata": spec.metadata,
        "enabled": spec.enabled,
        "catch_up": spec.catch_up,
        "last_run_id": cron.last_run,
        "fired": cron.fired,
    }


def _merged(base: dict[str, Any], extra: dict[str, Any] | None) -> dict[str, Any]:
    configurable = {
        **(base.get("configurable") or {}),
        **((extra or {}).get("configurable") or {}),
    }
    merged = {**base, **(extra or {})}
    if configurable:
        merged["configurable"] = configurable
    return merged


def _modes(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return recorded_modes([value] if isinstance(value, str) else list(value))


def _options(
    assistant: AssistantRecord, given: dict[str, Any], metadata: dict[str, Any]
) -> RunOptions:
    """The run options of the cron's runs: the assistant's configuration, the
    cron's on top."""
    owner = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
    try:
        return RunOptions(
            config=_merged(assistant.config, given.get("config")),
            context={**assistant.context, **(given.get("context") or {})} or None,
            metadata={**metadata, **owner},
            stream_modes=_modes(given.get("stream_mode")),
            subgraphs=bool(given.get("stream_subgraphs")),
            interrupt_before=node_names(given.get("interrupt_before")),
            interrupt_after=node_names(given.get("interrupt_after")),
            durability=given.get("durability"),
        )
    except ValueError as exc:
        raise unprocessable(str(exc)) from None


def _payload(body: BaseModel) -> dict[str, Any]:
    """What the API shows as the cron's run payload: the fields the client set."""
    return body.model_dump(
        mode="json",
        exclude_none=True,
        exclude={"schedule", "end_time", "timezone", "enabled", "catch_up"},
    )


async def _create(
    ctx: RequestContext, thread_id: str | None, body: CronCreate
) -> JSONResponse:
    if thread_id is not None:
        await load_thread(ctx, thread_id, "read")
    if body.webhook:
        await ctx.webhooks.policy.check(body.webhook)
    assistant = await ctx.assistant(body.assistant_id, by_graph=True)
    if body.end_time is not None and _aware(body.end_time) <= datetime.now(UTC):
        raise unprocessable(
            f"end_time {body.end_time.isoformat()} is in the past; give a time "
            "ahead, or none to run without end"
        )
    value: dict[str, Any] = {
        "payload": _payload(body),
        "schedule": body.schedule,
        "thread_id": thread_id,
        "user_id": ctx.user.identity or None,
        "end_time": body.end_time,
        "metadata": dict(body.metadata),
    }
    await ctx.allow("crons", "create", value)
    metadata = dict(value.get("metadata") or {})
    options = _options(assistant, body.model_dump(), metadata)
    cron = await Crons(ctx.queue).create(
        ctx.graphs.references[assistant.graph_id],
        body.schedule,
        input=body.input,
        thread_id=thread_id,
        timezone=body.timezone,
        end_time=body.end_time,
        options=options,
        metadata=metadata,
        on_run_completed=body.on_run_completed or "delete",
        catch_up=body.catch_up,
        enabled=body.enabled,
        multitask=body.multitask_strategy,
        assistant_id=assistant.assistant_id,
        user_id=value.get("user_id"),
        payload=value.get("payload") or {},
        followed=True,  # dialogllm.server.cron_firings does the API's part
    )
    if thread_id is not None:  # the thread's state is read with the cron's graph
        owner = {"graph_id": assistant.graph_id, "assistant_id": assistant.assistant_id}
        await ctx.store.update_thread(thread_id, metadata=owner)
    return JSONResponse(cron_json(cron))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.post("/runs/crons")
async def create(body: CronCreate, ctx: RequestContext = Context) -> JSONResponse:
    """Create a stateless cron: a run on a new thread at every tick."""
    return await _create(ctx, None, body)


@router.post("/threads/{thread_id}/runs/crons")
async def create_for_thread(
    thread_id: str, body: CronCreate, ctx: RequestContext = Context
) -> JSONResponse:
    """Create a cron that runs on the thread at every tick."""
    return await _create(ctx, thread_id, body)


async def _visible(ctx: RequestContext, cron_id: str, action: str) -> CronRecord:
    """The cron, if the caller may ``action`` it; 404 otherwise."""
    condition = await ctx.allow("crons", action, {"cron_id": cron_id})
    try:
        cron = await Crons(ctx.queue).get(cron_id)
    except CronNotFoundError:
        cron = None
    if cron is None or not ctx.sees(cron.spec.metadata, condition):
        raise not_found(f"Cron with ID {cron_id} not found")
    return cron


async def _assistant_filter(
    ctx: RequestContext, assistant_id: str | None
) -> str | None:
    """The assistant id crons store for ``assistant_id`` (a graph id names its
    system assistant)."""
    if assistant_id is None:
        return None
    try:
        return (await ctx.assistant(assistant_id, by_graph=True)).assistant_id
    except ApiError:
        return assistant_id


async def _matching(ctx: RequestContext, body: CronSearch) -> list[CronRecord]:
    value = body.model_dump(include={"assistant_id", "thread_id", "limit", "offset"})
    condition = await ctx.allow("crons", "search", value)
    found = await Crons(ctx.queue).search(
        assistant_id=await _assistant_filter(ctx, body.assistant_id),
        thread_id=body.thread_id,
        enabled=body.enabled,
        metadata=body.metadata,
        limit=1_000_000,
        sort_by=body.sort_by or "created_at",
        sort_order=body.sort_order or "desc",
    )
    return [c for c in found if ctx.sees(c.spec.metadata, condition)]


@router.post("/runs/crons/search")
async def search(body: CronSearch, ctx: RequestContext = Context) -> JSONResponse:
    """The crons matching every filter given, sorted and paged."""
    found = await _matching(ctx, body)
    page = [cron_json(c) for c in found[body.offset : body.offset + body.limit]]
    if body.select:
        page = [{k: v for k, v in c.items() if k in body.select} for c in page]
    return JSONResponse(page)


@router.post("/runs/crons/count")
async def count(body: CronSearch, ctx: RequestContext = Context) -> JSONResponse:
    """How many crons match the filters."""
    return JSONResponse(len(await _matching(ctx, body)))


@router.patch("/runs/crons/{cron_id}")
async def update(
    cron_id: str, body: CronPatch, ctx: RequestContext = Context
) -> JSONResponse:
    """Change a cron; the next run date is computed again from now."""
    cron = await _visible(ctx, cron_id, "update")
    if body.webhook:
        await ctx.webhooks.policy.check(body.webhook)
    given = body.model_dump(exclude_unset=True)
    changes: dict[str, Any] = {}
    for name in ("schedule", "timezone", "enabled", "catch_up", "on_run_completed"):
        if given.get(name) is not None:
            changes[name] = given[name]
    if "end_time" in given:
        end = body.end_time
        if end is not None and _aware(end) <= datetime.now(UTC):
            raise unprocessable(f"end_time {end.isoformat()} is in the past")
        changes["end_ms"] = None if end is None else int(_aware(end).timestamp() * 1000)
    if "input" in given:
        changes["input"] = body.input
    metadata = cron.spec.metadata
    if body.metadata is not None:
        metadata = changes["metadata"] = dict(body.metadata)
    if body.metadata is not None or any(
        given.get(f) is not None for f in _OPTION_FIELDS
    ):
        assistant = await ctx.assistant(cron.spec.assistant_id or "", by_graph=True)
        previous = cron.spec.payload
        merged = {**previous, **{k: v for k, v in given.items() if v is not None}}
        changes["options"] = _options(assistant, merged, metadata)
    payload = {**cron.spec.payload, **_payload(body)}
    changes["payload"] = payload
    updated = await Crons(ctx.queue).update(cron_id, **changes)
    return JSONResponse(cron_json(updated))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete(cron_id: str, ctx: RequestContext = Context) -> Response:
    """Delete a cron (runs it enqueued already are left alone)."""
    await _visible(ctx, cron_id, "delete")
    await Crons(ctx.queue).delete(cron_id)
    return Response(status_code=204)
