"""Which LLM call failures are worth retrying, and how long to wait.

This module owns the classification of errors raised by OpenAI-compatible clients
(and ``httpx``/asyncio underneath) into *transient* (timeouts, connection errors,
408/409/429, 5xx — retried with exponential backoff and jitter, a 429's
``Retry-After`` honoured) and *permanent* (401, 403, 404, a request larger than the
model's context, other 4xx — they fail at once). The rule: a message built here
passes through :func:`dialogllm.logging.redact_text`, so no key reaches an
exception or a log line.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import openai

from dialogllm.backoff import backoff_delay as exponential_delay
from dialogllm.logging import redact_text

__all__ = ["Failure", "backoff_delay", "classify", "retry_after_seconds"]

FailureKind = Literal[
    "timeout",
    "connection",
    "rate_limited",
    "server_error",
    "auth",
    "not_found",
    "bad_request",
    "unsupported",
    "context_length",
    "length",
    "other",
]

_TRANSIENT_STATUS = {408, 409, 425, 429}
_UNSUPPORTED_HINTS = (
    "response_format",
    "json_schema",
    "tool",
    "function",
    "not supported",
    "unsupported",
)

# What OpenAI, vLLM, llama.cpp, Ollama, LM Studio and Anthropic-style gateways say
# when the prompt (plus the requested completion) does not fit the context window.
_CONTEXT_LENGTH = re.compile(
    r"context[_ ]length[_ ]exceeded"
    r"|maximum context length"
    r"|context (length|size|window)[^.]{0,40}\b(exceed|too (long|large|small))"
    r"|exceeds? (the )?(model'?s? )?(available |maximum )?context"
    r"|(prompt|input) is too long"
    r"|too many tokens"
    r"|context too long",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    """A classified failure: its kind, whether to retry, and the server's wait hint."""

    kind: FailureKind
    transient: bool
    status: int | None
    retry_after_s: float | None
    detail: str


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def _headers(exc: BaseException) -> Any:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return headers if hasattr(headers, "get") else None


def retry_after_seconds(headers: Any, *, now: float | None = None) -> float | None:
    """The wait a response asks for (``retry-after-ms`` or ``Retry-After``).

    ``Retry-After`` may be seconds or an HTTP date.

    >>> retry_after_seconds({"retry-after": "2"})
    2.0
    >>> retry_after_seconds({"retry-after-ms": "250"})
    0.25
    """
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _detail(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return redact_text(text)[:500]


def _body_text(exc: BaseException, detail: str) -> str:
    """The error's message and JSON body (its ``code`` says
    ``context_length_exceeded`` where the message may not)."""
    body = getattr(exc, "body", None)
    return f"{detail} {body!r}" if body else detail


def classify(exc: BaseException) -> Failure:
    """Classify an exception raised by a chat model call.

    >>> classify(TimeoutError()).kind
    'timeout'
    """
    detail = _detail(exc)
    if isinstance(exc, openai.LengthFinishReasonError):
        return Failure("length", False, None, None, detail)
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return Failure("timeout", True, None, None, detail)
    if isinstance(exc, asyncio.TimeoutError):  # pragma: no cover - alias on 3.11
        return Failure("timeout", True, None, None, detail)
    if isinstance(
        exc, openai.APIConnectionError | httpx.TransportError | ConnectionError
    ):
        return Failure("connection", True, None, None, detail)
    status = _status(exc)
    if status is None:
        return Failure("other", False, None, None, detail)
    retry_after = retry_after_seconds(_headers(exc))
    if status == 429:
        return Failure("rate_limited", True, status, retry_after, detail)
    if status >= 500 or status in _TRANSIENT_STATUS:
        return Failure("server_error", True, status, retry_after, detail)
    if status in (401, 403):
        return Failure("auth", False, status, None, detail)
    if status == 404:
        return Failure("not_found", False, status, None, detail)
    if status in (400, 413, 422) and _CONTEXT_LENGTH.search(_body_text(exc, detail)):
        return Failure("context_length", False, status, None, detail)
    if status in (400, 422) and any(h in detail.lower() for h in _UNSUPPORTED_HINTS):
        return Failure("unsupported", False, status, None, detail)
    return Failure("bad_request", False, status, None, detail)


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    retry_after_max_s: float = 60.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The project's backoff (:func:`dialogllm.backoff.backoff_delay`, "equal
    jitter"), capped at ``max_s``; a server's ``Retry-After`` wins when longer
    (capped at ``retry_after_max_s``).

    >>> 0.5 <= backoff_delay(1, base_s=1.0, max_s=10.0) <= 1.0
    True
    >>> backoff_delay(1, base_s=0.1, max_s=1.0, retry_after_s=3.0) >= 3.0
    True
    """
    delay = exponential_delay(attempt, base_s=base_s, max_s=max_s, rng=rng)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, retry_after_max_s))
    return delay
