"""What happens to every request before and after its route: who is asking, and
the request's metrics.

One plain ASGI middleware (no per-request task or body wrapping, which Starlette's
``BaseHTTPMiddleware`` adds): the static API key and the ``langgraph.json``'s
``Auth`` refuse a request before any route sees it (401, ``{"detail": ...}``); the
caller goes to ``request.state.user``; the response's status, its time to headers
and open event streams are counted (:mod:`dialogllm.server.metrics`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialogllm.server.auth import Authorizer, is_open
from dialogllm.server.errors import ApiError
from dialogllm.server.metrics import ServerMetrics
from dialogllm.server.wire import JSONResponse

__all__ = ["ApiMiddleware"]


class ApiMiddleware:
    """Authentication and metrics for every HTTP request of the API app.

    Args:
        app: the ASGI app to guard.
        api_key: the key every request but the open paths must send as
            ``x-api-key`` (``None``: no key).
        authorizer: called for the ``Auth`` of the moment (it is loaded with the
            graphs, at start-up).
        metrics: where requests are counted.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        authorizer: Callable[[], Authorizer],
        metrics: ServerMetrics,
    ) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        self.authorizer = authorizer
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        refusal = await self._refusal(scope, receive)
        streaming = False

        async def counted(message: Message) -> None:
            nonlocal streaming
            if message["type"] == "http.response.start":
                self._count(scope, int(message["status"]), started)
                headers = dict(message.get("headers") or [])
                content_type = headers.get(b"content-type", b"")
                if content_type.startswith(b"text/event-stream"):
                    streaming = True
                    self.metrics.open_streams.inc()
            await send(message)

        try:
            if refusal is not None:
                await refusal(scope, receive, counted)
            else:
                await self.app(scope, receive, counted)
        finally:
            if streaming:
                self.metrics.open_streams.dec()

    async def _refusal(self, scope: Scope, receive: Receive) -> JSONResponse | None:
        """The 401 to answer instead of the route, or ``None`` (the caller is put in
        the request's state)."""
        if is_open(scope["path"]):
            return None
        if self.expected is not None:
            given = dict(scope.get("headers") or []).get(b"x-api-key", b"")
            if not hmac.compare_digest(given, self.expected):
                return JSONResponse(
                    {"detail": "Missing or invalid API key (header x-api-key)"},
                    status_code=401,
                )
        authorizer = self.authorizer()
        if authorizer.enabled:
            try:
                user = await authorizer.authenticate(Request(scope, receive))
            except ApiError as exc:
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
            state: MutableMapping[str, Any] = scope.setdefault("state", {})
            state["user"] = user
        return None

    def _count(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        # the route template, never the raw path: ids must not become label values
        name = str(getattr(route, "path", "unmatched"))
        self.metrics.latency.labels(name).observe(time.perf_counter() - started)
        self.metrics.requests.labels(scope["method"], name, str(status)).inc()
