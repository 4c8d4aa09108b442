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
from collections.abc import Awaitable, Callable
from typing import Any

import prometheus_client as prom
from fastapi import FastAPI, Response

from dialogllm.queue.fleet import FleetExporter

__all__ = ["ServerMetrics", "install_metrics", "metrics_for"]

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


def install_metrics(
    app: FastAPI, refresh: Callable[[FleetExporter], Awaitable[Any]]
) -> ServerMetrics:
    """Serve ``/metrics`` on ``app`` (``refresh`` updates the queue's gauges before
    each scrape); the collectors requests are counted in (by
    :class:`~dialogllm.server.middleware.ApiMiddleware`)."""
    metrics = metrics_for()

    @app.get("/metrics", tags=["meta"])
    async def scrape() -> Response:
        """Prometheus metrics of this process: requests, streams, the queue."""
        await refresh(metrics.fleet)
        return Response(
            prom.generate_latest(metrics.registry), media_type=prom.CONTENT_TYPE_LATEST
        )

    return metrics
