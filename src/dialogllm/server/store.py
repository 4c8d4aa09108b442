"""``/store``: the long-term memory store over HTTP, as LangGraph's server serves it.

``PUT/GET/DELETE /store/items``, ``POST /store/items/search`` and ``POST
/store/namespaces`` answer ``langgraph-sdk``'s ``client.store`` calls with the
reference's bodies and status codes: a put or delete is 204, a missing item is 200
with ``null`` (not 404: that is what LangGraph's server answers), a namespace label
that is empty or holds a ``.`` is 422. The server's store is the
:class:`~dialogllm.store.AsyncRedisStore` the workers' graphs use (same Redis, same
prefix, the ``langgraph.json`` ``"store"`` section), so what a graph remembered is
what the API reads.

Custom auth works as on LangGraph's platform: the ``store`` resource's handler
(``@auth.on.store``, or per action ``put``/``get``/``search``/``delete``/
``list_namespaces``) runs before each call with a mutable ``value`` whose
``namespace`` it may rewrite (say, prefix the caller's identity); a filter it
returns for ``search`` is added to the request's filter. The rule a reader must not
break: the namespace is validated again after the handler ran, and the store is only
ever called with the handler's namespace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from langgraph.store.base import InvalidNamespaceError
from pydantic import BaseModel, ConfigDict

from dialogllm.server.context import RequestContext, request_context
from dialogllm.server.errors import ApiError, unprocessable
from dialogllm.server.wire import JSONResponse

__all__ = ["router"]

router = APIRouter(prefix="/store", tags=["store"])
Context = Depends(request_context)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StorePut(_Body):
    """``PUT /store/items``."""

    namespace: list[str]
    key: str
    value: dict[str, Any]
    index: bool | list[str] | None = None
    ttl: float | None = None


class StoreDelete(_Body):
    """``DELETE /store/items``."""

    namespace: list[str] = []
    key: str


class StoreSearch(_Body):
    """``POST /store/items/search``."""

    namespace_prefix: list[str] = []
    filter: dict[str, Any] | None = None
    limit: int = 10
    offset: int = 0
    query: str | None = None
    refresh_ttl: bool | None = None


class StoreListNamespaces(_Body):
    """``POST /store/namespaces``."""

    prefix: list[str] | None = None
    suffix: list[str] | None = None
    max_depth: int | None = None
    limit: int = 100
    offset: int = 0


def _namespace(value: Any, *, optional: bool = False) -> tuple[str, ...] | None:
    """``value`` as a namespace; 422 unless every label is a non-empty string
    without a period (LangGraph's rule)."""
    if value is None and optional:
        return None
    if not isinstance(value, list | tuple):
        raise unprocessable("Namespace must be a list of labels")
    for label in value:
        if not isinstance(label, str) or not label or "." in label:
            raise unprocessable(
                f"Namespace label {label!r} must be a non-empty string without periods"
            )
    return tuple(value)


@contextmanager
def _refused_as_422() -> Iterator[None]:
    """LangGraph's own namespace checks (an empty namespace, the reserved root
    ``langgraph``) answer 422 like ours."""
    try:
        yield
    except InvalidNamespaceError as exc:
        raise unprocessable(str(exc)) from None


def _memory(ctx: RequestContext) -> Any:
    if ctx.memory is None:  # pragma: no cover - the lifespan always builds one
        raise ApiError(503, "this server has no store")
    return ctx.memory


@router.put("/items", status_code=204)
async def put_item(body: StorePut, ctx: RequestContext = Context) -> Response:
    """Store or update an item (``client.store.put_item``)."""
    value: dict[str, Any] = {
        "namespace": _namespace(body.namespace),
        "key": body.key,
        "value": body.value,
        "index": body.index,
        "ttl": body.ttl,
    }
    await ctx.allow("store", "put", value)
    namespace = _namespace(value["namespace"])
    index = value["index"]
    with _refused_as_422():
        await _memory(ctx).aput(
            namespace,
            value["key"],
            value["value"],
            index=False
            if index is False
            else (index if isinstance(index, list) else None),
            ttl=value["ttl"],
        )
    return Response(status_code=204)


@router.get("/items")
async def get_item(
    namespace: str = Query(""),
    key: str | None = Query(None),
    refresh_ttl: str | None = Query(None),
    ctx: RequestContext = Context,
) -> JSONResponse:
    """One item, or ``null`` (``client.store.get_item``)."""
    labels = _namespace(namespace.split("."))
    if not key:
        raise ApiError(400, "Key is required")
    value: dict[str, Any] = {
        "namespace": labels,
        "key": key,
        "refresh_ttl": None if refresh_ttl is None else refresh_ttl.lower() == "true",
    }
    await ctx.allow("store", "get", value)
    item = await _memory(ctx).aget(
        _namespace(value["namespace"]), value["key"], refresh_ttl=value["refresh_ttl"]
    )
    return JSONResponse(None if item is None else item.dict())


@router.delete("/items", status_code=204)
async def delete_item(body: StoreDelete, ctx: RequestContext = Context) -> Response:
    """Delete an item (``client.store.delete_item``); deleting nothing is no error."""
    value: dict[str, Any] = {"namespace": _namespace(body.namespace), "key": body.key}
    await ctx.allow("store", "delete", value)
    await _memory(ctx).adelete(_namespace(value["namespace"]), value["key"])
    return Response(status_code=204)


@router.post("/items/search")
async def search_items(
    body: StoreSearch, ctx: RequestContext = Context
) -> JSONResponse:
    """Items under a namespace prefix, by filter and (with an index) by similarity
    (``client.store.search_items``): ``{"items": [...]}``."""
    value: dict[str, Any] = {
        "namespace": _namespace(body.namespace_prefix),
        "filter": body.filter,
        "limit": body.limit,
        "offset": body.offset,
        "query": body.query,
        "refresh_ttl": body.refresh_ttl,
    }
    condition = await ctx.allow("store", "search", value)
    flt = value["filter"]
    if condition:
        flt = {"$and": [flt, condition]} if flt else condition
    items = await _memory(ctx).asearch(
        _namespace(value["namespace"]),
        filter=flt,
        limit=int(value["limit"] or 10),
        offset=int(value["offset"] or 0),
        query=value["query"],
        refresh_ttl=value["refresh_ttl"],
    )
    return JSONResponse({"items": [item.dict() for item in items]})


@router.post("/namespaces")
async def list_namespaces(
    body: StoreListNamespaces, ctx: RequestContext = Context
) -> JSONResponse:
    """Namespaces by prefix, suffix (``"*"``: any label) and depth
    (``client.store.list_namespaces``): ``{"namespaces": [[...], ...]}``."""
    value: dict[str, Any] = {
        "namespace": _namespace(body.prefix or None, optional=True),
        "suffix": _namespace(body.suffix or None, optional=True),
        "max_depth": body.max_depth,
        "limit": body.limit,
        "offset": body.offset,
    }
    await ctx.allow("store", "list_namespaces", value)
    found = await _memory(ctx).alist_namespaces(
        prefix=_namespace(value["namespace"], optional=True),
        suffix=_namespace(value["suffix"], optional=True),
        max_depth=value["max_depth"],
        limit=value["limit"],
        offset=value["offset"],
    )
    return JSONResponse({"namespaces": [list(ns) for ns in found]})
