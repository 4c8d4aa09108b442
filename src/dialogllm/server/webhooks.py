"""Webhooks: POST a run to the client's URL when it ends, as LangGraph's API does.

The body is the run as ``GET /threads/{thread_id}/runs/{run_id}`` answers it, plus
``values`` (the thread's values after the run) and, for a failed run, ``error``. A
delivery that fails (connection error, timeout, 5xx, 429) is retried with the
project's backoff (:mod:`dialogllm.backoff`) up to :data:`ATTEMPTS` times; a 4xx other
than 429 is the receiver's answer and is not retried.

Who sends it: the API process that created the run, or, when that process died,
another one (:mod:`dialogllm.server.followups`): at least once. Where it may go:
:mod:`dialogllm.server.webhook_policy` checks the URL when a run takes it and again
at each delivery; a delivery it refuses is logged and not retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from dialogllm.backoff import backoff_delay
from dialogllm.errors import WebhookBlockedError
from dialogllm.logging import get_logger, mask_url
from dialogllm.queue.models import dumps
from dialogllm.server.webhook_policy import PinnedTransport, WebhookPolicy

__all__ = ["ATTEMPTS", "deliver"]

ATTEMPTS = 5
_TIMEOUT_S = 10.0
_log = get_logger("dialogllm.server.webhooks")


async def deliver(
    url: str,
    body: Callable[[], Awaitable[dict[str, Any]]],
    *,
    run_id: str,
    policy: WebhookPolicy,
    attempts: int = ATTEMPTS,
    base_s: float = 0.5,
) -> bool:
    """Wait for ``body()`` (the run once it ended), POST it to ``url`` if
    ``policy`` lets it go there; whether a delivery was accepted (2xx)."""
    payload = dumps(await body()).encode()
    headers = {"content-type": "application/json"}
    transport = PinnedTransport(policy)
    async with httpx.AsyncClient(timeout=_TIMEOUT_S, transport=transport) as client:
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
            except WebhookBlockedError as exc:
                _log.warning(
                    "webhook_blocked", run_id=run_id, url=mask_url(url), why=exc.reason
                )
                return False
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
