"""Fixtures of the dialogue integration tests: the real Redis under a key prefix of
the test's own (``test-dlg-<random>``), deleted afterwards."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import structlog

ROOT = Path(__file__).resolve().parents[3]
SCRIPTED = ROOT / "tests" / "integration" / "dialogue" / "scripted_graphs.py"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto the stream of the moment (a test runner's
    capture, closed afterwards): put the process-wide set-up back after each test."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**config)
    root.handlers = handlers
    root.setLevel(level)


def prefix_keys(redis_url: str, prefix: str) -> list[bytes]:
    """Every key under ``prefix`` (to show that nothing was written)."""
    client = redis.Redis.from_url(redis_url)
    try:
        return list(client.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        client.close()
