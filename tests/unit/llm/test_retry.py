"""Classification of failures and the backoff schedule."""

from __future__ import annotations

import email.utils
import random

import httpx
import openai
import pytest

from dialogllm.llm import backoff_delay, classify, retry_after_seconds

REQUEST = httpx.Request("POST", "http://x/v1/chat/completions")


def status_error(status: int, message: str = "boom", **headers: str) -> Exception:
    response = httpx.Response(status, headers=headers, request=REQUEST)
    return openai.APIStatusError(message, response=response, body=None)


@pytest.mark.parametrize(
    ("exc", "kind", "transient"),
    [
        (openai.APITimeoutError(request=REQUEST), "timeout", True),
        (TimeoutError(), "timeout", True),
        (openai.APIConnectionError(request=REQUEST), "connection", True),
        (ConnectionRefusedError(), "connection", True),
        (status_error(429), "rate_limited", True),
        (status_error(500), "server_error", True),
        (status_error(408), "server_error", True),
        (status_error(401), "auth", False),
        (status_error(403), "auth", False),
        (status_error(404), "not_found", False),
        (status_error(400, "context too long"), "context_length", False),
        (
            status_error(
                400,
                "This model's maximum context length is 4096 tokens. However, your "
                "messages resulted in 9120 tokens.",
            ),
            "context_length",
            False,
        ),
        (
            status_error(
                400, "the request exceeds the available context size, try increasing"
            ),
            "context_length",
            False,
        ),
        (status_error(400, "messages: field required"), "bad_request", False),
        (status_error(400, "response_format is not supported"), "unsupported", False),
        (RuntimeError("scripted model ran out"), "other", False),
    ],
)
def test_failures_are_classified(exc: Exception, kind: str, transient: bool) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.transient) == (kind, transient)


def test_a_context_length_code_in_the_body_is_enough() -> None:
    response = httpx.Response(400, request=REQUEST)
    exc = openai.BadRequestError(
        "Bad request",
        response=response,
        body={"code": "context_length_exceeded", "type": "invalid_request_error"},
    )
    assert classify(exc).kind == "context_length"


def test_retry_after_is_read_from_a_429() -> None:
    assert classify(status_error(429, **{"retry-after": "7"})).retry_after_s == 7.0


def test_retry_after_accepts_seconds_ms_and_dates() -> None:
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "3"}) == 3.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=1_000_000) == 30.0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None
    assert retry_after_seconds(None) is None


def test_detail_is_redacted() -> None:
    failure = classify(status_error(401, "bad key sk-abcdefghijklmnopqrstuvwxyz"))
    assert "abcdefghijklmnop" not in failure.detail


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base_s=1, max_s=8, rng=rng) for n in range(1, 7)]
    assert 0.5 <= delays[0] <= 1.0
    assert 2.0 <= delays[2] <= 4.0
    assert all(4.0 <= d <= 8.0 for d in delays[3:])
    assert backoff_delay(1, base_s=1, max_s=8, retry_after_s=30) == 30
    capped = backoff_delay(
        1, base_s=1, max_s=8, retry_after_s=500, retry_after_max_s=60
    )
    assert capped == 60
