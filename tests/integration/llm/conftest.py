"""Fixtures of the LLM integration tests: the real local model, once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dialogllm.llm import LLMSettings, LocalModelServer, local_server

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
