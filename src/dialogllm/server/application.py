"""The ASGI application: LangGraph's HTTP API on the queue, workers and checkpointer.

:func:`create_app` builds a FastAPI app; its lifespan connects to Redis (the URL
given, else :func:`dialogllm.redis.resolve_url`: ``DIALOGLLM_REDIS_URL``, else the
embedded Redis), loads the graphs of a ``langgraph.json``, and (unless told not to)
runs a worker in the same process, as ``langgraph dev`` does. Every API process is
stateless: threads, runs, events and assistants live in Redis, so any number of them
behind a load balancer serve every thread and stream.

``dialogllm.server:app`` is an app built from the environment
(``DIALOGLLM_SERVER_CONFIG``, default ``./langgraph.json``) for users who run it
under their own ASGI server::

    uvicorn dialogllm.server:app --port 2024

The rule a reader must not break: routes translate HTTP to the queue, the
checkpointer and :class:`~dialogllm.server.storage.ServerStore`; they hold no state
of their own between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from langgraph_sdk.auth import Auth

from dialogllm import event_loop
from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.config import get_settings
from dialogllm.errors import ConfigError
from dialogllm.loader import LangGraphConfig, load_object
from dialogllm.logging import get_logger, mask_url
from dialogllm.queue import CronScheduler, Queue, Worker
from dialogllm.queue.fleet import FleetExporter, WorkerPresence
from dialogllm.redis.clients import async_client
from dialogllm.redis.url import resolve_url, using
from dialogllm.server import assistants, crons, runs, store, threads
from dialogllm.server.auth import Authorizer
from dialogllm.server.context import ServerContext
from dialogllm.server.cron_firings import CronFirings
from dialogllm.server.errors import install_error_handlers
from dialogllm.server.followups import Followup, Followups
from dialogllm.server.graphs import GraphTable
from dialogllm.server.metrics import install_metrics
from dialogllm.server.middleware import ApiMiddleware
from dialogllm.server.page import install_page
from dialogllm.server.storage import ServerStore, now_ms
from dialogllm.server.webhooks import WebhookConfig
from dialogllm.store import AsyncRedisStore, store_options

__all__ = ["create_app"]

_log = get_logger("dialogllm.server")


class WorkerThread:
    """The in-process worker (``dialogllm serve`` without ``--no-worker``), on an
    event loop of its own in a thread, so graph steps never hold up the API's loop
    (requests and streams answer while a run computes).

    >>> in_process = WorkerThread(Worker(url)); in_process.start()   # doctest: +SKIP
    """

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name="dialogllm-worker", daemon=True
        )

    def start(self) -> None:
        """Start the worker's thread and wait until its loop runs."""
        self._thread.start()
        self._started.wait(10)

    def _main(self) -> None:
        async def work() -> None:
            self._loop = asyncio.get_running_loop()
            self._started.set()
            worker = self.worker
            # announced like `dialogllm worker`, so `dialogllm status` and the
            # page's fleet view count it (and do not alert "no live workers")
            client = async_client(worker.url, decode=True)
            presence = WorkerPresence(
                client,
                prefix=worker.prefix,
                name=worker.name,
                queue=worker.queue,
                concurrency=worker.concurrency,
                ready=lambda: worker.ready,
            )
            presence.start()
            try:
                await worker.run(install_signal_handlers=False)
            finally:
                await presence.stop()
                await client.aclose()

        try:
            event_loop.run(work())
        except Exception:
            _log.exception("in-process worker stopped")
        finally:
            self._started.set()

    async def stop(self, *, timeout: float) -> None:
        """Stop taking runs, give running ones the worker's grace, then return."""
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                self._loop.call_soon_threadsafe(self.worker.stop)
        await asyncio.to_thread(self._thread.join, timeout)


def _version() -> str:
    from dialogllm import __version__

    return __version__


def create_app(
    config: Path | str = "langgraph.json",
    *,
    redis_url: str | None = None,
    key_prefix: str | None = None,
    queue: str = "default",
    worker: bool = True,
    concurrency: int = 10,
    api_key: str | None = None,
) -> FastAPI:
    """The API app for the graphs of ``config`` (a ``langgraph.json``).

    ``worker=False`` serves the API only (run ``dialogllm worker`` elsewhere on the
    same Redis); ``api_key`` makes every request but ``/ok``, the API docs and the
    web page's files (``/``, ``/ui/…``: :mod:`dialogllm.server.page`) need the
    header ``x-api-key``. A ``langgraph.json`` with ``"auth": {"path": ...}``
    authenticates and authorizes requests with that ``langgraph_sdk.Auth``
    (:mod:`dialogllm.server.auth`).

    >>> app = create_app("langgraph.json", worker=False)
    """
    config_path = Path(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = resolve_url(redis_url)
        prefix = key_prefix or get_settings().key_prefix
        config_file = LangGraphConfig.read(config_path)  # read once: graphs, auth
        graphs = GraphTable.from_config(config_file, started_ms=now_ms())
        authorizer = _authorizer(config_file)
        text_client = async_client(url, decode=True)
        saver = AsyncRedisSaver(async_client(url, decode=False), key_prefix=prefix)
        memory_options = store_options(config_file.store, base=config_file.folder)
        memory = AsyncRedisStore(saver.client, key_prefix=prefix, **memory_options)
        memory.start_configured_ttl_sweeper()  # "ttl": {"sweep_interval_minutes": …}

        async def follow_up(followup: Followup) -> None:
            await runs.follow_up(context, followup)

        context = ServerContext(
            queue=Queue(text_client, key_prefix=prefix, queue=queue, url=mask_url(url)),
            saver=saver,
            store=ServerStore(text_client, prefix=prefix),
            graphs=graphs,
            url=url,
            followups=Followups(
                text_client,
                prefix=prefix,
                act=follow_up,
                claim_ms=int(get_settings().followup_claim_seconds * 1000),
            ),
            authorizer=authorizer,
            memory=memory,
            webhooks=WebhookConfig.from_config(config_file.webhooks),
        )
        app.state.context = context
        context.followups.start()
        # every API process fires due crons too: each tick fires once, whoever wins
        scheduler = CronScheduler(context.queue, saver, name="api")
        scheduling = asyncio.create_task(scheduler.run(), name="crons")
        firings = CronFirings(context)  # thread records, webhooks of cron runs
        firings.start()
        in_process: WorkerThread | None = None
        if worker:
            context.worker = Worker(
                url,
                key_prefix=prefix,
                queue=queue,
                concurrency=concurrency,
                # the served file decides, even where it has no "store"
                memory_config=config_file.store or {},
                memory_base=config_file.folder,
            )
            in_process = WorkerThread(context.worker)
            in_process.start()
        _log.info(
            "server started",
            redis=mask_url(url),
            graphs=sorted(graphs.references),
            worker=worker,
        )
        try:
            with using(url):
                yield
        finally:
            scheduler.stop()
            scheduling.cancel()
            await asyncio.gather(scheduling, return_exceptions=True)
            await firings.stop()
            if in_process is not None:
                await in_process.stop(timeout=60)
            await context.followups.stop()
            await memory.stop_ttl_sweeper()
            await text_client.aclose()
            await saver.client.aclose()

    app = FastAPI(
        title="DialogueLLM",
        version=_version(),
        description="LangGraph's API for dialogue graphs, on Redis.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    metrics = install_metrics(app, _refresh_fleet(app))
    app.add_middleware(
        ApiMiddleware,
        api_key=api_key,
        authorizer=lambda: app.state.context.authorizer,
        metrics=metrics,
    )
    _add_health(app)
    app.include_router(assistants.router)
    app.include_router(threads.router)
    app.include_router(runs.router)
    app.include_router(store.router)
    app.include_router(crons.router)
    install_page(app)  # GET /, /ui/…, /dialogllm/fleet: no API path
    return app


def _authorizer(config: LangGraphConfig) -> Authorizer:
    """The ``Auth`` object a ``langgraph.json`` names (``"auth": {"path": ...}``)."""
    if config.auth is None:
        return Authorizer(None)
    found = load_object(config.auth, base=config.folder)
    if not isinstance(found, Auth):
        raise ConfigError(
            f"{config.path}: auth.path {config.auth!r} is a {type(found).__name__}, "
            "not a langgraph_sdk.Auth"
        )
    return Authorizer(found)


def _add_health(app: FastAPI) -> None:
    started = time.time()

    @app.get("/ok", tags=["meta"])
    async def ok() -> dict[str, Any]:
        """Liveness: the process answers."""
        return {"ok": True}

    @app.get("/info", tags=["meta"])
    async def info() -> dict[str, Any]:
        """The server's version and what it offers (read by ``langgraph-sdk``)."""
        return {
            "version": _version(),
            "langgraph_py_version": _langgraph_version(),
            "flags": {"assistants": True, "crons": True, "langsmith": False},
            "host": {"kind": "dialogllm", "uptime_s": round(time.time() - started)},
        }


def _refresh_fleet(app: FastAPI) -> Callable[[FleetExporter], Awaitable[None]]:
    async def refresh(fleet: FleetExporter) -> None:
        context: ServerContext = app.state.context
        await fleet.refresh(context.queue.client, context.queue)

    return refresh


def _langgraph_version() -> str:
    from importlib.metadata import version

    return version("langgraph")
