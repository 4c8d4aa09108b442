"""Shared fixtures: the real Redis on 127.0.0.1:6379 with a per-test key prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aredis

REDIS_URL = os.environ.get("DIALOGLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _delete_prefix(client: redis.Redis, prefix: str) -> None:
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)


@pytest.fixture
def redis_url() -> str:
    """URL of the shared test Redis."""
    return REDIS_URL


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        _delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
async def aredis_client() -> AsyncIterator[aredis.Redis]:
    """An async binary-safe client to the shared test Redis."""
    client = aredis.Redis.from_url(REDIS_URL, decode_responses=False)
    yield client
    await client.aclose()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A sync binary-safe client to the shared test Redis."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=False)
    yield client
    client.close()
