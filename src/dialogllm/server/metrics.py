"""The server's Prometheus metrics: requests, their latency, open streams, and the
queue's figures (runs by status, depth, workers) refreshed when scraped.

Collectors are registered once per registry, on first use (never at import); the
queue's gauges are :class:`~dialogllm.queue.fleet.FleetExporter`'s, so a dashboard
reads the same names from an API process as from a worker.

Names: ``dialogllm_http_requests_total`` (``method``, ``route``, ``status``),
``dialogllm_http_request_seconds`` (``route``), ``dialogllm_http_open_streams``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import prometheus_client as prom
from fastapi import FastAPI, Request, Response
from starlette.routing import Match

from dialogllm.queue.fleet import FleetExporter

__all__ = ["ServerMetrics", "install_metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class ServerMetrics:
    """The collectors of one registry."""

    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.registry = registry
        self.requests = prom.Counter(
            "dialogllm_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = prom.Histogram(
            "dialogllm_http_request_seconds",
            "Time to the response's headers (a stream's start, not its end)",
            ["route"],
            buckets=(*_LATENCY_BUCKETS, float("inf")),
            registry=registry,
        )
        self.open_streams = prom.Gauge(
            "dialogllm_http_open_streams", "Event streams open now", registry=registry
        )
        self.fleet = FleetExporter(registry)


_metrics: dict[prom.CollectorRegistry, ServerMetrics] = {}
_lock = threading.Lock()


def metrics_for(registry: prom.CollectorRegistry = prom.REGISTRY) -> ServerMetrics:
    """The server collectors of ``registry``, registered there on first use."""
    with _lock:
        found = _metrics.get(registry)
        if found is None:
            found = _metrics[registry] = ServerMetrics(registry)
        return found


def _route(request: Request) -> str:
    """The route template (``/threads/{thread_id}``), never the raw path: ids must
    not become label values."""
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


def install_metrics(
    app: FastAPI, refresh: Callable[[FleetExporter], Awaitable[Any]]
) -> None:
    """Count ``app``'s requests and serve ``/metrics`` (``refresh`` updates the
    queue's gauges before each scrape)."""
    metrics = metrics_for()

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = _route(request)
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            metrics.open_streams.inc()
            inner = response.background

            async def closed() -> None:
                metrics.open_streams.dec()
                if inner is not None:
                    await inner()

            from starlette.background import BackgroundTask

            response.background = BackgroundTask(closed)
        return response

    @app.get("/metrics", tags=["meta"])
    async def scrape() -> Response:
        """Prometheus metrics of this process: requests, streams, the queue."""
        await refresh(metrics.fleet)
        return Response(
            prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST
        )
