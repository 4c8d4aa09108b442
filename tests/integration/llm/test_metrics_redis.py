"""Fleet-wide metrics: handlers in several processes write, one reader sums."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aredis
from langchain_core.messages import HumanMessage

from dialogllm.errors import StructuredOutputError
from dialogllm.llm import LLMMetrics, ask, keys, read_llm_metrics
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import Turn

pytestmark = pytest.mark.integration


def scripted(metrics: LLMMetrics, replies: list[str]) -> ScriptedChatModel:
    return ScriptedChatModel(
        replies=list(replies), model_name="fleet-model", callbacks=[metrics]
    )


async def test_two_workers_figures_add_up_in_redis(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    worker_a = LLMMetrics(aredis_client, prefix=key_prefix)
    worker_b = LLMMetrics(aredis_client, prefix=key_prefix)
    ok = '{"message": "Hi."}'
    await ask(scripted(worker_a, ["bad", ok]), [HumanMessage("x")], schema=Turn)
    await ask(scripted(worker_b, [ok]), [HumanMessage("x")], schema=Turn)
    with pytest.raises(StructuredOutputError):
        await ask(
            scripted(worker_b, ["bad"]),
            [HumanMessage("x")],
            schema=Turn,
            structured_retries=0,
        )
    summary = await read_llm_metrics(aredis_client, prefix=key_prefix)
    fleet = summary["fleet-model"]
    assert fleet.calls == 4
    assert fleet.structured_retries == 1
    assert fleet.structured_failures == 1
    assert fleet.prompt_tokens > 0 and fleet.completion_tokens > 0
    assert fleet.latency_p50_s is not None and fleet.latency_p95_s is not None
    assert fleet.latency_p50_s <= fleet.latency_p95_s


async def test_windows_expire_and_old_minutes_are_not_read(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    metrics = LLMMetrics(aredis_client, prefix=key_prefix, window_s=300)
    metrics.record_structured_retry("m")
    assert await metrics.flush() == 1
    minute = int(time.time() // 60)
    key = keys.metrics_minute(key_prefix, "m", minute)
    assert 0 < await aredis_client.ttl(key) <= 300 + 120
    later = time.time() + 3600
    assert await read_llm_metrics(aredis_client, prefix=key_prefix, now=later) == {}
    now = await read_llm_metrics(aredis_client, prefix=key_prefix, window_s=300)
    assert now["m"].structured_retries == 1


async def test_flush_survives_an_unreachable_redis() -> None:
    dead = aredis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.2)
    metrics = LLMMetrics(dead, prefix="test-llm-dead")
    metrics.record_fallback("m", "n")
    assert await metrics.flush() == 0
    assert metrics.snapshot()["m"].fallbacks == 1
    metrics.record_fallback("m", "n")
    started = time.perf_counter()
    assert await metrics.flush() == 0  # paused: does not try the dead Redis again
    assert time.perf_counter() - started < 0.05
    await dead.aclose()
