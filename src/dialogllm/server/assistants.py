"""``/assistants``: the graphs a client can run, with their configuration.

Every graph of the server's ``langgraph.json`` has a system assistant (see
:mod:`dialogllm.server.graphs`); clients create more (a graph with its own config,
context and metadata), update them (each update is a new version) and delete them.
Stored assistants live in Redis (:class:`~dialogllm.server.storage.ServerStore`), so
every API process sees the same ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query

from dialogllm.logging import get_logger
from dialogllm.server.context import RequestContext, request_context
from dialogllm.server.errors import ApiError, conflict, not_found, unprocessable
from dialogllm.server.schemas import AssistantCreate, AssistantPatch, AssistantSearch
from dialogllm.server.storage import AssistantRecord, now_ms
from dialogllm.server.wire import JSONResponse, assistant_json

__all__ = ["router"]

router = APIRouter(prefix="/assistants", tags=["assistants"])
_log = get_logger("dialogllm.server")
Context = Depends(request_context)


def _check_uuid(assistant_id: str) -> None:
    try:
        uuid.UUID(assistant_id)
    except ValueError:
        raise unprocessable("Invalid assistant ID: must be a UUID") from None


def _matches(record: AssistantRecord, search: AssistantSearch) -> bool:
    if search.graph_id is not None and record.graph_id != search.graph_id:
        return False
    if search.name is not None and search.name.lower() not in record.name.lower():
        return False
    return all(record.metadata.get(k) == v for k, v in (search.metadata or {}).items())


async def _all(ctx: RequestContext, body: AssistantSearch) -> list[AssistantRecord]:
    """Every assistant the caller may see that matches ``body``."""
    value = body.model_dump(exclude={"sort_by", "sort_order"})
    condition = await ctx.allow("assistants", "search", value)
    stored = await ctx.store.assistants()
    ids = {record.assistant_id for record in stored}
    system = [a for a in ctx.graphs.system_assistants() if a.assistant_id not in ids]
    return [
        a
        for a in (*system, *stored)
        if _matches(a, body) and ctx.sees(a.metadata, condition)
    ]


async def _visible(
    ctx: RequestContext, assistant_id: str, action: str = "read"
) -> AssistantRecord:
    """The assistant, if the caller may ``action`` it; 404 otherwise."""
    _check_uuid(assistant_id)
    value = {"assistant_id": assistant_id}
    condition = await ctx.allow("assistants", action, value)
    record = await ctx.assistant(assistant_id, by_graph=False)
    if not ctx.sees(record.metadata, condition):
        raise not_found(f"Assistant {assistant_id} not found")
    return record


def _sorted(records: list[AssistantRecord], search: AssistantSearch) -> list[Any]:
    key = search.sort_by or "created_at"
    field = {"created_at": "created_ms", "updated_at": "updated_ms"}.get(key, key)
    descending = (search.sort_order or "desc") == "desc"
    return sorted(records, key=lambda r: getattr(r, field), reverse=descending)


@router.post("/search")
async def search(body: AssistantSearch, ctx: RequestContext = Context) -> JSONResponse:
    """Assistants matching the graph id, name and metadata."""
    found = _sorted(await _all(ctx, body), body)
    page = found[body.offset : body.offset + body.limit]
    return JSONResponse([assistant_json(a) for a in page])


@router.post("/count")
async def count(body: AssistantSearch, ctx: RequestContext = Context) -> JSONResponse:
    """How many assistants match."""
    return JSONResponse(len(await _all(ctx, body)))


@router.post("")
async def create(body: AssistantCreate, ctx: RequestContext = Context) -> JSONResponse:
    """Create an assistant for one of the server's graphs."""
    if body.graph_id not in ctx.graphs.references:
        raise not_found(f"Graph {body.graph_id} not found")
    assistant_id = body.assistant_id or str(uuid.uuid4())
    _check_uuid(assistant_id)
    value = body.model_dump()
    value["assistant_id"] = assistant_id
    await ctx.allow("assistants", "create", value)
    existing = await ctx.store.assistant(assistant_id)
    if existing is not None:
        if body.if_exists == "do_nothing":
            return JSONResponse(assistant_json(existing))
        raise conflict(f"Assistant {assistant_id} already exists")
    now = now_ms()
    record = AssistantRecord(
        assistant_id=assistant_id,
        graph_id=body.graph_id,
        name=body.name or "Untitled",
        version=1,
        created_ms=now,
        updated_ms=now,
        config=body.config,
        context=body.context,
        metadata=dict(value.get("metadata") or {}),
        description=body.description,
    )
    await ctx.store.put_assistant(record)
    return JSONResponse(assistant_json(record))


@router.get("/{assistant_id}")
async def get(assistant_id: str, ctx: RequestContext = Context) -> JSONResponse:
    """One assistant (its latest version)."""
    return JSONResponse(assistant_json(await _visible(ctx, assistant_id)))


@router.patch("/{assistant_id}")
async def update(
    assistant_id: str,
    body: AssistantPatch,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """A new version of a stored assistant (system assistants cannot change)."""
    await _visible(ctx, assistant_id, "update")
    current = await ctx.store.assistant(assistant_id)
    if current is None:
        raise ApiError(409, f"Assistant {assistant_id} is a system assistant")
    graph_id = body.graph_id or current.graph_id
    if graph_id not in ctx.graphs.references:
        raise not_found(f"Graph {graph_id} not found")
    versions = await ctx.store.assistant_versions(assistant_id)
    record = AssistantRecord(
        assistant_id=assistant_id,
        graph_id=graph_id,
        name=body.name if body.name is not None else current.name,
        version=max(v.version for v in versions) + 1 if versions else 1,
        created_ms=current.created_ms,
        updated_ms=now_ms(),
        config=current.config if body.config is None else body.config,
        context=current.context if body.context is None else body.context,
        metadata={**current.metadata, **(body.metadata or {})},
        description=body.description
        if body.description is not None
        else current.description,
    )
    await ctx.store.put_assistant(record)
    return JSONResponse(assistant_json(record))


@router.delete("/{assistant_id}", status_code=204)
async def delete(assistant_id: str, ctx: RequestContext = Context) -> None:
    """Delete a stored assistant and all its versions."""
    await _visible(ctx, assistant_id, "delete")
    if not await ctx.store.delete_assistant(assistant_id):
        raise not_found(f"Assistant {assistant_id} not found")


@router.post("/{assistant_id}/versions")
async def versions(assistant_id: str, ctx: RequestContext = Context) -> JSONResponse:
    """Every version of an assistant, newest first."""
    latest = await _visible(ctx, assistant_id)
    found = await ctx.store.assistant_versions(assistant_id) or [latest]
    return JSONResponse([assistant_json(v) for v in found])


@router.post("/{assistant_id}/latest")
async def set_latest(
    assistant_id: str,
    version: int = Query(...),
    ctx: RequestContext = Context,
) -> JSONResponse:
    """Make an earlier version the latest one."""
    await _visible(ctx, assistant_id, "update")
    chosen = [
        v
        for v in await ctx.store.assistant_versions(assistant_id)
        if v.version == version
    ]
    if not chosen:
        raise not_found(f"Assistant {assistant_id} has no version {version}")
    await ctx.store.set_latest_assistant(chosen[0])
    return JSONResponse(assistant_json(chosen[0]))


@router.get("/{assistant_id}/graph")
async def graph(
    assistant_id: str,
    xray: int | bool = False,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The assistant's graph as nodes and edges (LangGraph's drawable graph)."""
    record = await _visible(ctx, assistant_id)
    drawable = ctx.graph(record.graph_id).get_graph(xray=xray)
    return JSONResponse(drawable.to_json())


def _schema(build: Callable[[], Any], what: str, graph_id: str) -> Any:
    """One JSON schema of a graph; ``None`` (logged) when pydantic cannot build it
    (e.g. a ``typing.TypedDict`` state on Python 3.11): the others still answer."""
    try:
        return build()
    except Exception as exc:
        _log.warning("schema_unavailable", graph=graph_id, schema=what, error=str(exc))
        return None


def _schemas(graph: Any, graph_id: str) -> dict[str, Any]:
    return {
        "graph_id": graph_id,
        "input_schema": _schema(graph.get_input_jsonschema, "input", graph_id),
        "output_schema": _schema(graph.get_output_jsonschema, "output", graph_id),
        "state_schema": _schema(graph.get_output_jsonschema, "state", graph_id),
        "config_schema": _schema(graph.get_config_jsonschema, "config", graph_id),
        "context_schema": _schema(graph.get_context_jsonschema, "context", graph_id),
    }


@router.get("/{assistant_id}/schemas")
async def schemas(assistant_id: str, ctx: RequestContext = Context) -> JSONResponse:
    """The graph's input, output, state, config and context JSON schemas."""
    record = await _visible(ctx, assistant_id)
    return JSONResponse(_schemas(ctx.graph(record.graph_id), record.graph_id))


@router.get("/{assistant_id}/subgraphs")
@router.get("/{assistant_id}/subgraphs/{namespace}")
async def subgraphs(
    assistant_id: str,
    namespace: str | None = None,
    recurse: bool = False,
    ctx: RequestContext = Context,
) -> JSONResponse:
    """The graph's subgraphs by namespace, each with its input and output schemas."""
    record = await _visible(ctx, assistant_id)
    found = ctx.graph(record.graph_id).get_subgraphs(
        namespace=namespace, recurse=recurse
    )
    return JSONResponse({ns: _schemas(sub, record.graph_id) for ns, sub in found})
