"""The Redis rate limiter: shared by processes, accurate, one Lua call an acquire."""

from __future__ import annotations

import multiprocessing as mp
import time

import pytest
import redis.asyncio as aredis

from dialogllm.errors import LLMRateLimitedError
from dialogllm.llm import LLMMetrics, RedisRateLimiter
from dialogllm.llm.ratelimit import pending_tokens
from tests.conftest import REDIS_URL
from tests.integration.llm import limiter_worker

pytestmark = pytest.mark.integration

PROCESSES = 4
SECONDS = 10.0  # the issue: several processes for 10 s, within 5%


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rpm", "tpm", "cost"),
    [(3000.0, None, 0), (None, 90_000.0, 50)],
    ids=["requests-per-minute", "tokens-per-minute"],
)
def test_processes_hammering_one_model_stay_within_5_percent_of_the_limit(
    key_prefix: str, rpm: float | None, tpm: float | None, cost: int
) -> None:
    ctx = mp.get_context("fork")  # spawn re-imports LangChain: ~15 s here
    start = ctx.Value("d", 0.0)
    barrier = ctx.Barrier(PROCESSES + 1)
    out = ctx.Queue()
    config = {
        "redis_url": REDIS_URL,
        "model": "hammered",
        "rpm": rpm,
        "tpm": tpm,
        "cost": cost,
        "prefix": key_prefix,
        "seconds": SECONDS,
    }
    procs = [
        ctx.Process(target=limiter_worker.main, args=(config, start, barrier, out))
        for _ in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=60)
    start.value = time.time() + 0.5
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    requests = sum(r for r, _ in results)
    tokens = sum(t for _, t in results)
    if rpm is not None:
        expected = rpm / 60 * SECONDS + 1  # rate x time + the burst of 1
        assert abs(requests - expected) <= 0.05 * expected, (requests, expected)
    else:
        assert tpm is not None
        expected = tpm / 60 * SECONDS + cost
        assert abs(tokens - expected) <= 0.05 * expected, (tokens, expected)
    assert all(r > 0 for r, _ in results)  # every process got a share


async def test_non_blocking_acquire_takes_nothing_when_the_bucket_is_empty(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(
        "m", requests_per_minute=60, redis=aredis_client, prefix=key_prefix
    )
    assert await limiter.aacquire(blocking=False) is True
    assert await limiter.aacquire(blocking=False) is False
    assert await limiter.reserve(blocking=False) == -1.0


async def test_wait_beyond_the_maximum_raises_rate_limited(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(
        "m",
        tokens_per_minute=600,
        redis=aredis_client,
        prefix=key_prefix,
        max_wait_s=0.5,
    )
    await limiter.reserve(tokens=10)  # the burst: 10 tokens
    with pytest.raises(LLMRateLimitedError, match="would make this call wait"):
        await limiter.reserve(tokens=100)  # 100 more tokens need 10 s
    assert await limiter.reserve(tokens=2, max_wait_s=1.0) > 0  # refused took none


async def test_waiting_is_metered_and_token_cost_comes_from_ask(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    metrics = LLMMetrics(to_redis=False)
    limiter = RedisRateLimiter(
        "metered",
        requests_per_minute=600,
        tokens_per_minute=6000,
        redis=aredis_client,
        prefix=key_prefix,
        metrics=metrics,
    )
    token = pending_tokens().set(100)  # what ask() sets before a request
    try:
        started = time.perf_counter()
        assert await limiter.aacquire() is True
        assert await limiter.aacquire() is True  # 100 more tokens at 100/s: ~1 s
        waited = time.perf_counter() - started
    finally:
        pending_tokens().reset(token)
    assert 0.8 <= waited < 2.0
    snap = metrics.snapshot()["metered"]
    assert snap.rate_limit_waits == 1
    assert snap.rate_limit_wait_s == pytest.approx(1.0, abs=0.15)


async def test_settle_refunds_unused_tokens(
    aredis_client: aredis.Redis, key_prefix: str
) -> None:
    limiter = RedisRateLimiter(
        "m", tokens_per_minute=60, redis=aredis_client, prefix=key_prefix
    )
    await limiter.reserve(tokens=1)  # the burst is 1 token (1 s worth)
    await limiter.settle(-1)  # the call used none after all
    assert await limiter.reserve(tokens=1, blocking=False) == 0.0


def test_sync_acquire_shares_the_bucket(key_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        limiter = RedisRateLimiter(
            "m", requests_per_minute=60, sync_redis=client, prefix=key_prefix
        )
        assert limiter.acquire(blocking=False) is True
        assert limiter.acquire(blocking=False) is False
        assert client.ttl(limiter.key) > 0  # an idle bucket expires
    finally:
        client.close()


@pytest.mark.parametrize(
    "bucket",
    [
        {"type": "string"},
        {"r": b"-1180591620717411303424", "t": b"-1e300", "ts": b"0"},
        {"r": b"nan", "t": b"inf", "ts": b"1e308"},  # ts: a time far in the future
        {"r": b"\xff\x00", "t": b"{", "ts": b"-5"},
    ],
    ids=["wrong-type", "huge-debt", "not-finite", "garbage"],
)
async def test_a_corrupt_bucket_never_refuses_the_model_for_good(
    aredis_client: aredis.Redis, key_prefix: str, bucket: dict[str, bytes | str]
) -> None:
    """Found by tests/integration/test_hostile_data.py: a bucket of another type
    failed every call with WRONGTYPE; a huge debt or a future time refused them."""
    limiter = RedisRateLimiter(
        "m",
        requests_per_minute=600,
        tokens_per_minute=60_000,
        redis=aredis_client,
        prefix=key_prefix,
    )
    if bucket.get("type") == "string":
        await aredis_client.set(limiter.key, b"not a bucket")
    else:
        await aredis_client.hset(limiter.key, mapping=bucket)
    assert await limiter.reserve(tokens=1, blocking=False) == 0.0
    assert await aredis_client.type(limiter.key) == b"hash"
