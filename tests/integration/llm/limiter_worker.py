"""A process that hammers one rate-limit bucket (started by test_ratelimit)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aredis

from dialogllm.llm import RedisRateLimiter


async def _run(config: dict[str, Any], start: Any, tasks: int) -> tuple[int, int]:
    client = aredis.Redis.from_url(config["redis_url"])
    limiter = RedisRateLimiter(
        config["model"],
        requests_per_minute=config["rpm"],
        tokens_per_minute=config["tpm"],
        burst_requests=1,
        burst_tokens=config["cost"] or 1,
        redis=client,
        prefix=config["prefix"],
    )
    await client.ping()
    while start.value == 0.0:
        await asyncio.sleep(0.001)
    t0 = start.value
    end = t0 + config["seconds"]
    await asyncio.sleep(max(0.0, t0 - time.time()))
    granted = [0, 0]

    async def hammer() -> None:
        while time.time() < end:
            await limiter.reserve(1, config["cost"])
            if time.time() <= end:
                granted[0] += 1
                granted[1] += config["cost"]

    await asyncio.gather(*(hammer() for _ in range(tasks)))
    await client.aclose()
    return granted[0], granted[1]


def main(config: dict[str, Any], start: Any, barrier: Any, out: Any) -> None:
    """Wait for the common start, acquire until the end, report (requests, tokens)."""
    barrier.wait()
    out.put(asyncio.run(_run(config, start, 4)))
