"""Webhooks: POST a run to the client's URL when it ends, as LangGraph's API does.

The body is the run as ``GET /threads/{thread_id}/runs/{run_id}`` answers it, plus
``values`` (the thread's values after the run), ``run_started_at``,
``run_ended_at`` and ``webhook_sent_at``, as LangGraph's server sends it. A
delivery that fails (connection error, timeout, 5xx, 429) is retried with the
project's backoff (:mod:`dialogllm.backoff`) up to :data:`ATTEMPTS` times; a 4xx other
than 429 is the receiver's answer and is not retried.

Who sends it: the API process that created the run, or, when that process died,
another one (:mod:`dialogllm.server.followups`): at least once. Where it may go:
:mod:`dialogllm.server.webhook_policy` checks the URL when a run takes it and again
at each delivery; a delivery it refuses is logged and not retried.

What is sent besides the body is LangGraph Platform's ``"webhooks"`` section of
``langgraph.json`` too (:class:`WebhookConfig`): ``headers`` sent with every
delivery, whose values may name environment variables (``"Authorization": "Bearer
${{ env.LG_WEBHOOK_TOKEN }}"``, resolved once at start; only variables that begin
with ``env_prefix``, default ``LG_WEBHOOK_``, so a header cannot leak any other),
and ``allowed_fields``, the body's fields to send (default: all).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from dialogllm.backoff import backoff_delay
from dialogllm.errors import ConfigError, WebhookBlockedError
from dialogllm.logging import get_logger, mask_url
from dialogllm.queue.models import dumps
from dialogllm.server.webhook_policy import PinnedTransport, WebhookPolicy

__all__ = ["ATTEMPTS", "FIELDS", "WebhookConfig", "deliver"]

ATTEMPTS = 5
_TIMEOUT_S = 10.0
_log = get_logger("dialogllm.server.webhooks")

#: The body's fields ``allowed_fields`` may name (LangGraph's list).
FIELDS = frozenset(
    {
        "run_id",
        "thread_id",
        "assistant_id",
        "created_at",
        "updated_at",
        "metadata",
        "kwargs",
        "multitask_strategy",
        "status",
        "run_started_at",
        "run_ended_at",
        "webhook_sent_at",
        "values",
        "error",
    }
)
_TEMPLATE = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_SECTION_KEYS = ("url", "headers", "env_prefix", "allowed_fields")


def _rendered(value: str, prefix: str, environ: Mapping[str, str]) -> str:
    def variable(match: re.Match[str]) -> str:
        reference = match.group(1)
        name = reference.removeprefix("env.")
        if name == reference or not name or "." in name:
            raise ConfigError(
                f'webhook header template "{reference}": write env.NAME, as in '
                f"${{{{ env.{prefix}TOKEN }}}}"
            )
        if not name.startswith(prefix):
            raise ConfigError(
                f"webhook header variable {name} must begin with the env_prefix "
                f"{prefix!r}"
            )
        if name not in environ:
            raise ConfigError(f"webhook header variable {name} is not set")
        return environ[name]

    return _TEMPLATE.sub(variable, value)


@dataclass(frozen=True)
class WebhookConfig:
    """A ``langgraph.json``'s ``"webhooks"`` section: where webhooks may go
    (``policy``), the ``headers`` sent with each (resolved: they may hold secrets,
    and are never logged or stored in Redis) and the body's ``allowed_fields``.

    >>> WebhookConfig.from_config({"headers": {"X-Source": "dialogllm"}}).headers
    {'X-Source': 'dialogllm'}
    """

    policy: WebhookPolicy = field(default_factory=WebhookPolicy)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    allowed_fields: frozenset[str] | None = None

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
    ) -> WebhookConfig:
        """The section read and checked (``environ``: for the header templates,
        default ``os.environ``); a bad value is a :class:`ConfigError` naming it."""
        if section is None:
            return cls()
        policy = WebhookPolicy.from_config(section)  # also: the section's shape
        unknown = sorted(set(section) - set(_SECTION_KEYS))
        if unknown:
            raise ConfigError(
                f'unknown "webhooks" keys {unknown} in langgraph.json; known: '
                f"{sorted(_SECTION_KEYS)}"
            )
        prefix = section.get("env_prefix", "LG_WEBHOOK_")
        if not isinstance(prefix, str):
            raise ConfigError('"webhooks.env_prefix" must be a string')
        raw_headers = section.get("headers") or {}
        if not isinstance(raw_headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_headers.items()
        ):
            raise ConfigError('"webhooks.headers" must map header names to strings')
        env = os.environ if environ is None else environ
        headers = {k: _rendered(v, prefix, env) for k, v in raw_headers.items()}
        fields = section.get("allowed_fields")
        allowed: frozenset[str] | None = None
        if fields is not None:
            if not isinstance(fields, list) or not all(
                isinstance(f, str) for f in fields
            ):
                raise ConfigError('"webhooks.allowed_fields" must be a list of names')
            bad = sorted(set(fields) - FIELDS)
            if bad:
                raise ConfigError(
                    f'"webhooks.allowed_fields" has unknown fields {bad}; known: '
                    f"{sorted(FIELDS)}"
                )
            allowed = frozenset(fields)
        return cls(policy=policy, headers=headers, allowed_fields=allowed)

    def body(self, full: Mapping[str, Any]) -> dict[str, Any]:
        """The fields of ``full`` to send."""
        if self.allowed_fields is None:
            return dict(full)
        return {k: v for k, v in full.items() if k in self.allowed_fields}


async def deliver(
    url: str,
    body: Callable[[], Awaitable[dict[str, Any]]],
    *,
    run_id: str,
    config: WebhookConfig,
    attempts: int = ATTEMPTS,
    base_s: float = 0.5,
) -> bool:
    """Wait for ``body()`` (the run once it ended), POST the fields of it that
    ``config`` allows to ``url`` with its headers, if its policy lets it go there;
    whether a delivery was accepted (2xx)."""
    payload = dumps(config.body(await body())).encode()
    headers = {k: v for k, v in config.headers.items() if k.lower() != "content-type"}
    headers["content-type"] = "application/json"  # the body is JSON, whatever else
    transport = PinnedTransport(config.policy)
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
