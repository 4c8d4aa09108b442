"""LangGraph's checkpointer conformance suite, at its full level, on a real Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks

from dialogllm.checkpoint import AsyncRedisSaver

pytestmark = pytest.mark.integration


async def test_conformance_full_level(redis_url: str, key_prefix: str) -> None:
    @checkpointer_test(name="dialogllm.AsyncRedisSaver")
    async def factory() -> AsyncIterator[AsyncRedisSaver]:
        client = aredis.Redis.from_url(redis_url, decode_responses=False)
        try:
            yield AsyncRedisSaver(
                client, key_prefix=f"{key_prefix}-{uuid.uuid4().hex[:6]}"
            )
        finally:
            await client.aclose()

    failures: list[str] = []

    def on_result(cap: str, name: str, ok: bool, tb: str | None) -> None:
        if not ok:
            failures.append(f"{cap}.{name}:\n{tb}")

    report = await validate(
        factory, progress=ProgressCallbacks(on_test_result=on_result)
    )
    assert not failures, "\n".join(failures)
    for capability, result in report.results.items():
        assert result.detected, f"capability {capability} not detected"
        assert result.passed, f"capability {capability} failed: {result.failures}"
    total = sum(r.tests_passed for r in report.results.values())
    assert total >= 81, f"only {total} conformance tests ran"
