"""The web page of ``dialogllm serve``: watch and join dialogues in a browser.

The page is static files shipped in this package (``static/``: plain HTML, CSS and
JavaScript modules, no build step) that talk to the API with ``fetch``, as any
client does; it sees what the API lets its caller see. ``/`` answers the page,
``/ui/…`` its assets, both without authentication (the page is where a person
enters the API key). One endpoint of our own feeds the page's fleet view:
``GET /dialogllm/fleet``, the snapshot ``dialogllm status`` prints, as JSON, with a
per-minute timeline of the last hour; it is behind the API's authentication like
every API path.

The rule a reader must not break: nothing here shadows an API path — the page owns
``GET /``, ``/ui/`` and ``/dialogllm/``, which LangGraph's API does not use.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from dialogllm.llm import read_llm_metrics
from dialogllm.queue.fleet import fleet_status
from dialogllm.queue.models import RunRecord, RunStatus
from dialogllm.server.context import context_of
from dialogllm.server.wire import JSONResponse

__all__ = ["STATIC", "UI_PREFIX", "install_page", "timeline"]

#: The page's files (shipped as package data).
STATIC = Path(__file__).with_name("static")
#: Where the page's assets are served (no authentication).
UI_PREFIX = "/ui"
_MINUTES = 60
_NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    """The page (a single page: its views are routes of the URL's hash)."""
    return FileResponse(STATIC / "index.html", headers=_NO_CACHE)


def timeline(
    records: list[RunRecord], llm: list[dict[str, Any]], now: float
) -> list[dict[str, Any]]:
    """The last hour minute by minute: runs finished and failed, the median run
    duration, LLM calls, their mean latency and tokens (``llm``: per minute, oldest
    first, ``{"calls", "latency_s", "tokens"}``).

    >>> timeline([], [], now=3600.0)[-1]["minute"]
    60
    """
    current = int(now // 60)
    first = current - _MINUTES + 1
    buckets: list[dict[str, Any]] = [
        {"minute": first + i, "runs": 0, "errors": 0, "durations": []}
        for i in range(_MINUTES)
    ]
    for record in records:
        if record.finished_at is None:
            continue
        index = int(record.finished_at // 60) - first
        if 0 <= index < _MINUTES:
            bucket = buckets[index]
            bucket["runs"] += 1
            if record.status in (RunStatus.ERROR, RunStatus.DEAD):
                bucket["errors"] += 1
            if record.started_at is not None:
                bucket["durations"].append(record.finished_at - record.started_at)
    out = []
    for bucket, calls in zip(buckets, llm or [{}] * _MINUTES, strict=False):
        durations = sorted(bucket.pop("durations"))
        bucket["run_duration_p50_s"] = (
            durations[len(durations) // 2] if durations else None
        )
        bucket["llm_calls"] = calls.get("calls", 0)
        bucket["llm_latency_s"] = calls.get("latency_s")
        bucket["llm_tokens"] = calls.get("tokens", 0)
        out.append(bucket)
    return out


async def _llm_minutes(redis: Any, prefix: str, now: float) -> list[dict[str, Any]]:
    """LLM calls, their mean latency and tokens, per minute of the last hour (all
    models together)."""
    current = int(now // 60)
    ends = [(current - _MINUTES + 1 + i) * 60 + 30 for i in range(_MINUTES)]
    minutes = await asyncio.gather(
        *(read_llm_metrics(redis, prefix=prefix, window_s=60, now=t) for t in ends)
    )
    out = []
    for models in minutes:
        calls = sum(m.calls for m in models.values())
        weighted = sum((m.latency_mean_s or 0) * m.calls for m in models.values())
        tokens = sum(m.prompt_tokens + m.completion_tokens for m in models.values())
        out.append(
            {
                "calls": calls,
                "latency_s": weighted / calls if calls else None,
                "tokens": tokens,
            }
        )
    return out


@router.get("/dialogllm/fleet", tags=["meta"])
async def fleet(request: Request) -> JSONResponse:
    """The fleet snapshot ``dialogllm status`` prints, as JSON: queue depth,
    workers and their readiness, runs by status, LLM latency and tokens per model,
    alerts; ``timeline``: the last hour minute by minute."""
    ctx = context_of(request)
    queue = ctx.queue
    now = time.time()
    status = await fleet_status(queue.client, queue, count_limit=1000)
    records = await queue.list(limit=1000)
    try:
        llm = await _llm_minutes(queue.client, queue.prefix, now)
    except Exception:  # metrics are optional: the snapshot stands without them
        llm = []
    return JSONResponse(
        {**status.as_dict(), "now": now, "timeline": timeline(records, llm, now)}
    )


def install_page(app: FastAPI) -> None:
    """Serve the page at ``/``, its assets under ``/ui`` and the fleet JSON."""
    app.include_router(router)
    app.mount(UI_PREFIX, StaticFiles(directory=STATIC), name="ui")
