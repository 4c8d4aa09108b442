"""ask() against a real HTTP server on loopback with scripted failures."""

from __future__ import annotations

import io
import json
import logging
import time

import pytest
import redis.asyncio as aredis
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel

from dialogllm.errors import (
    LLMRateLimitedError,
    LLMRequestError,
    LLMUnavailableError,
    StructuredOutputError,
)
from dialogllm.llm import (
    FallbackChatModel,
    LLMMetrics,
    LLMSettings,
    ModelTarget,
    ask,
    build_chat_model,
    get_chat_model,
)
from dialogllm.logging import configure_logging
from tests.integration.llm.fake_openai import FakeOpenAI, Step

pytestmark = pytest.mark.integration

VALID = json.dumps({"text": "Hello.", "polite": True})
SECRET = "live-THISKEYMUSTNEVERLEAK-0123456789"  # no sk- shape to spot


class Reply(BaseModel):
    text: str
    polite: bool


FAST = LLMSettings(
    base_url="http://unused/v1",
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    metrics_to_redis=False,
)
MESSAGES = [SystemMessage("A polite exchange."), HumanMessage("Ada: Hi!\nBo:")]


def model_for(server: FakeOpenAI, **overrides: object) -> object:
    target = ModelTarget(
        model="fake-model",
        base_url=server.base_url,
        api_key=SECRET,
        timeout_s=2.0,
        **overrides,  # type: ignore[arg-type]
    )
    return build_chat_model(target, settings=FAST, metrics=LLMMetrics(to_redis=False))


async def test_429_with_retry_after_waits_then_succeeds() -> None:
    steps = [Step(429, headers={"retry-after": "0.6"}), Step(content=VALID)]
    with FakeOpenAI(steps) as server:
        reply = await ask(model_for(server), MESSAGES, schema=Reply, settings=FAST)
        gap = server.times[1] - server.times[0]
    assert reply.value == Reply(text="Hello.", polite=True)
    assert gap >= 0.55  # the backoff alone is at most 0.05 s


async def test_429_forever_raises_rate_limited_after_budget() -> None:
    with FakeOpenAI([Step(429, headers={"retry-after-ms": "10"})]) as server:
        with pytest.raises(LLMRateLimitedError, match="rate_limited"):
            await ask(
                model_for(server), MESSAGES, schema=Reply, settings=FAST, max_retries=2
            )
        assert len(server.requests) == 3


async def test_500_then_success_is_retried() -> None:
    metrics = LLMMetrics(to_redis=False)
    with FakeOpenAI([Step(500), Step(503), Step(content=VALID)]) as server:
        target = ModelTarget(model="fake-500", base_url=server.base_url, timeout_s=2)
        model = build_chat_model(target, settings=FAST, metrics=metrics)
        reply = await ask(model, MESSAGES, schema=Reply, settings=FAST)
    assert reply.value.polite is True
    assert len(server.requests) == 3
    snap = metrics.snapshot()["fake-500"]
    assert snap.errors == {"server_error": 2}
    assert snap.calls == 3


async def test_invalid_json_twice_then_valid_feeds_the_error_back() -> None:
    steps = [Step(content="not json"), Step(content='{"text": 1}'), Step(content=VALID)]
    metrics = LLMMetrics(to_redis=False)
    with FakeOpenAI(steps) as server:
        target = ModelTarget(model="fake-json", base_url=server.base_url)
        model = build_chat_model(target, settings=FAST, metrics=metrics)
        reply = await ask(model, MESSAGES, schema=Reply, settings=FAST)
    assert reply.attempts == 3
    assert reply.raw_outputs[:2] == ["not json", '{"text": 1}']
    last_messages = server.requests[2]["messages"]
    assert "not valid" in last_messages[-1]["content"]
    assert metrics.snapshot()["fake-json"].structured_retries == 2
    assert reply.usage.prompt_tokens == 33  # 3 attempts x 11


async def test_invalid_json_beyond_budget_raises_with_raw_outputs() -> None:
    with (
        FakeOpenAI([Step(content="nope")]) as server,
        pytest.raises(StructuredOutputError) as info,
    ):
        await ask(model_for(server), MESSAGES, schema=Reply, settings=FAST)
    assert info.value.raw_outputs == ["nope", "nope", "nope"]
    assert len(info.value.errors) == 3


async def test_server_that_never_answers_times_out() -> None:
    with FakeOpenAI([Step(hang_s=3.0)]) as server:
        target = ModelTarget(model="slow", base_url=server.base_url, timeout_s=0.3)
        model = build_chat_model(target, settings=FAST)
        started = time.monotonic()
        with pytest.raises(LLMUnavailableError, match="timeout"):
            await ask(model, MESSAGES, schema=Reply, settings=FAST, max_retries=1)
    assert time.monotonic() - started < 2.5
    assert len(server.requests) == 2


async def test_401_fails_at_once_without_leaking_the_key() -> None:
    stream = io.StringIO()
    configure_logging(fmt="json", level="debug", stream=stream)
    error = f"Incorrect API key provided: {SECRET}"
    try:
        with FakeOpenAI([Step(401, error=error)]) as server:
            model = model_for(server)
            with pytest.raises(LLMRequestError) as info:
                await ask(model, MESSAGES, schema=Reply, settings=FAST)
            assert len(server.requests) == 1
            assert {k.lower(): v for k, v in server.headers[0].items()}[
                "authorization"
            ] == f"Bearer {SECRET}"
    finally:
        configure_logging(fmt="console", level="info")
        logging.getLogger().handlers.clear()
    settings = LLMSettings(base_url=server.base_url, api_key=SECRET)
    texts = [
        str(info.value),
        repr(info.value),
        repr(model),
        repr(settings),
        str(settings.model_dump()),
        stream.getvalue(),
        repr(settings.targets()),
    ]
    assert "auth" in str(info.value)
    assert "llm_request_refused" in stream.getvalue()
    for text in texts:
        assert SECRET not in text
        assert "THISKEYMUSTNEVERLEAK" not in text
    assert info.value.__cause__ is None


async def test_404_unknown_model_fails_at_once() -> None:
    with FakeOpenAI([Step(404, error="model 'nope' not found")]) as server:
        with pytest.raises(LLMRequestError, match="not_found"):
            await ask(model_for(server), MESSAGES, schema=Reply, settings=FAST)
        assert len(server.requests) == 1


async def test_unsupported_json_schema_steps_down_to_function_calling() -> None:
    steps = [
        Step(400, error="response_format json_schema is not supported"),
        Step(tool_args={"text": "Hi.", "polite": False}),
    ]
    with FakeOpenAI(steps) as server:
        model = model_for(server)
        reply = await ask(model, MESSAGES, schema=Reply, settings=FAST)
        assert reply.mode == "function_calling"
        assert "response_format" in server.requests[0]
        assert server.requests[1]["tool_choice"]["function"]["name"] == "Reply"
        again = await ask(model, MESSAGES, schema=Reply, settings=FAST)
    assert again.mode == "function_calling"  # remembered for this model
    assert reply.value == Reply(text="Hi.", polite=False)


async def test_generation_length_is_bounded_in_ways_llama_cpp_honours() -> None:
    with FakeOpenAI([Step(content=VALID)]) as server:
        await ask(
            model_for(server), MESSAGES, schema=Reply, max_tokens=42, settings=FAST
        )
    body = server.requests[0]
    assert body["max_completion_tokens"] == 42
    assert body["max_tokens"] == 42
    assert body["n_predict"] == 42
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["required"] == ["text", "polite"]


async def test_role_falls_back_to_the_next_model_when_first_is_down() -> None:
    metrics = LLMMetrics(to_redis=False)
    with FakeOpenAI([Step(content=VALID)]) as server:
        settings = LLMSettings(
            base_url="http://127.0.0.1:9/v1",  # nothing listens on port 9
            model="down-model",
            max_retries=1,
            backoff_base_s=0.01,
            metrics_to_redis=False,
            roles={
                "director": {
                    "fallbacks": [{"base_url": server.base_url, "model": "backup"}]
                }
            },
        )
        model = get_chat_model("director", settings=settings, metrics=metrics)
        assert isinstance(model, FallbackChatModel)
        reply = await ask(model, MESSAGES, schema=Reply, settings=settings)
        direct = await model.ainvoke(MESSAGES)
    assert reply.model == "backup"
    assert json.loads(str(direct.content)) == json.loads(VALID)
    assert metrics.snapshot()["down-model"].fallbacks == 2
    assert metrics.snapshot()["down-model"].errors["connection"] >= 2


async def test_every_model_down_raises_the_last_error() -> None:
    settings = LLMSettings(
        base_url="http://127.0.0.1:9/v1",
        model="a",
        max_retries=0,
        metrics_to_redis=False,
        roles={"x": {"model": ["a", "b"]}},
    )
    model = get_chat_model("x", settings=settings, metrics=LLMMetrics(to_redis=False))
    with pytest.raises(LLMUnavailableError, match="'b'"):
        await ask(model, MESSAGES, schema=Reply, settings=settings)


async def test_configured_limits_charge_the_shared_bucket_with_real_usage(
    monkeypatch: pytest.MonkeyPatch, key_prefix: str
) -> None:
    from dialogllm.config import get_settings
    from dialogllm.llm import RedisRateLimiter
    from tests.conftest import REDIS_URL

    monkeypatch.setenv("DIALOGLLM_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("DIALOGLLM_KEY_PREFIX", key_prefix)
    get_settings(reload=True)
    try:
        with FakeOpenAI([Step(content=VALID)]) as server:
            target = ModelTarget(
                model="limited",
                base_url=server.base_url,
                requests_per_minute=60,
                tokens_per_minute=6000,  # 100 tokens/s, burst 100
            )
            model = build_chat_model(target, settings=FAST)
            limiter = model.rate_limiter
            assert isinstance(limiter, RedisRateLimiter)
            await ask(model, MESSAGES, schema=Reply, settings=FAST, max_tokens=60)
            client = aredis.Redis.from_url(REDIS_URL)
            bucket = await client.hgetall(limiter.key)
            await client.aclose()
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
    assert float(bucket[b"r"]) < 0.5  # the one request of the burst is taken
    # 68 tokens were reserved up front (prompt/4 + max_tokens); the call used 18 and
    # the other 50 came back (without the refund the bucket would hold ~32).
    assert 75 <= float(bucket[b"t"]) <= 100
