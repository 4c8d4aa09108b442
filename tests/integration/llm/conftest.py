"""Fixtures of the LLM integration tests: the real local model, once per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialogllm.llm import LLMSettings, LocalModelServer, local_server
from tests.conftest import REDIS_URL

MODEL_CACHE = Path(
    os.environ.get(
        "DIALOGLLM_LLM_CACHE_DIR",
        str(Path(__file__).resolve().parents[3] / ".dialogllm" / "models"),
    )
)


@pytest.fixture(scope="session")
def local_settings() -> LLMSettings:
    """Settings serving the local default (no BASE_URL), metrics in process only."""
    return LLMSettings(
        base_url=None, cache_dir=MODEL_CACHE, metrics_to_redis=False, max_retries=1
    )


@pytest.fixture(scope="session")
def local_model_server(local_settings: LLMSettings) -> LocalModelServer:
    """The process's local model server (started once, reused by every test)."""
    return local_server(local_settings)


@pytest.fixture
def llm_prefix() -> Iterator[str]:
    """A key prefix of this test's own (``test-llm-...``); deleted afterwards."""
    prefix = f"test-llm-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
    finally:
        client.close()
