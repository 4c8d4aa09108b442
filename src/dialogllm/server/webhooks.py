"""Webhooks: POST a run to the client's URL when it ends, as LangGraph's API does.

The body is the run as ``GET /threads/{thread_id}/runs/{run_id}`` answers it, plus
``values`` (the thread's values after the run) and, for a failed run, ``error``. A
delivery that fails (connection error, timeout, 5xx, 429) is retried with the
project's backoff (:mod:`dialogllm.backoff`) up to :data:`ATTEMPTS` times; a 4xx other
than 429 is the receiver's answer and is not retried.

Who sends it: the API process that created the run, or, when that process died,
another one (:mod:`dialogllm.server.followups`): at least once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from dialogllm.backoff import backoff_delay
from dialogllm.logging import get_logger, mask_url
from dialogllm.queue.models import dumps
from dialogllm.server.errors import unprocessable

__all__ = ["ATTEMPTS", "check_webhook", "deliver"]

ATTEMPTS = 5
_TIMEOUT_S = 10.0
_log = get_logger("dialogllm.server.webhooks")


def check_webhook(url: str) -> str:
    """``url`` if it is an absolute http(s) URL; 422 otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise unprocessable("webhook must be an absolute http:// or https:// URL")
    return url


async def deliver(
    url: str,
    body: Callable[[], Awaitable[dict[str, Any]]],
    *,
    run_id: str,
    attempts: int = ATTEMPTS,
    base_s: float = 0.5,
) -> bool:
    """Wait for ``body()`` (the run once it ended), POST it to ``url``; whether a
    delivery was accepted (2xx)."""
    payload = dumps(await body()).encode()
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(url, content=payload, headers=headers)
                if response.is_success:
                    return True
                if response.status_code < 500 and response.status_code != 429:
                    _log.warning(
                        "webhook_refused",
                        run_id=run_id,
                        url=mask_url(url),
                        status=response.status_code,
                    )
                    return False
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                why = type(exc).__name__
            _log.warning(
                "webhook_retry",
                run_id=run_id,
                url=mask_url(url),
                attempt=attempt,
                why=why,
            )
            if attempt < attempts:
                await asyncio.sleep(backoff_delay(attempt, base_s=base_s, max_s=30.0))
    return False
