"""Shared fixtures: the real Redis on 127.0.0.1:6379 with a per-test key prefix."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aredis

REDIS_URL = os.environ.get("DIALOGLLM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (only what a test wrote: its own prefix)."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def redis_url() -> str:
    """URL of the shared test Redis."""
    return REDIS_URL


@pytest.fixture
def key_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture
def env_prefix(key_prefix: str) -> Iterator[str]:
    """:func:`key_prefix`, with ``DIALOGLLM_REDIS_URL``/``DIALOGLLM_KEY_PREFIX`` set to
    the test Redis and that prefix for the test (the CLI and the runner read them)."""
    from dialogllm.config import get_settings

    saved = {
        k: os.environ.get(k) for k in ("DIALOGLLM_REDIS_URL", "DIALOGLLM_KEY_PREFIX")
    }
    os.environ["DIALOGLLM_REDIS_URL"] = REDIS_URL
    os.environ["DIALOGLLM_KEY_PREFIX"] = key_prefix
    get_settings(reload=True)
    try:
        yield key_prefix
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings(reload=True)


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


@pytest.fixture(scope="session", autouse=True)
def _no_embedded_redis_left_in_the_checkout() -> Iterator[None]:
    """Tests that exercise the default (no DIALOGLLM_REDIS_URL) may start the
    embedded Redis of the checkout's ``.dialogllm/``: stop it after the session
    unless it was already running before (the person's own)."""
    from pathlib import Path

    from dialogllm.redis import EmbeddedRedis

    embedded = EmbeddedRedis(Path(__file__).resolve().parents[1] / ".dialogllm")
    was_running = embedded.is_running()
    yield
    if not was_running:
        embedded.stop()
