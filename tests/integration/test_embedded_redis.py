"""The embedded Redis: started once per data directory, persistent, stoppable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from dialogllm.config import Settings
from dialogllm.redis import EmbeddedRedis, async_client, resolve_url, sync_client

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> EmbeddedRedis:
    srv = EmbeddedRedis(tmp_path / "data")
    yield srv
    srv.stop()


def test_starts_once_persists_with_aof_and_stops(server: EmbeddedRedis) -> None:
    url = server.ensure_running()
    assert url.startswith("unix://") and server.is_running()
    assert server.ensure_running() == url  # second call reuses it
    client = redis.Redis.from_url(url)
    client.set("k", "v")
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
    client.close()
    status = server.status()
    assert status.running and status.aof_enabled and status.pid

    assert server.stop() is True
    assert not server.is_running() and not server.status().running
    assert server.stop() is False
    # data survives a restart (AOF)
    client = redis.Redis.from_url(server.ensure_running())
    assert client.get("k") == b"v"
    client.close()


def test_other_processes_share_the_same_server(server: EmbeddedRedis) -> None:
    url = server.ensure_running()
    code = (
        "from pathlib import Path; from dialogllm.redis import EmbeddedRedis;"
        f"print(EmbeddedRedis(Path({str(server.data_dir)!r})).ensure_running())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == url


def test_long_data_dir_uses_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    srv = EmbeddedRedis(deep)
    assert len(str(srv.socket_path)) <= 100
    try:
        assert redis.Redis.from_url(srv.ensure_running()).ping()
    finally:
        srv.stop()


async def test_unset_url_means_the_embedded_server(tmp_path: Path) -> None:
    settings = Settings(redis_url=None, data_dir=tmp_path / "d")
    try:
        url = resolve_url(settings=settings)
        assert url.startswith("unix://")
        # the embedded server's unix socket takes no TCP keepalive options
        client = async_client(url, decode=True)
        assert await client.ping()
        await client.aclose()
        sync = sync_client(url)
        assert sync.ping()
        sync.close()
    finally:
        EmbeddedRedis(tmp_path / "d").stop()


def test_configured_url_wins(tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:6379/0", data_dir=tmp_path)
    assert resolve_url(settings=settings) == "redis://127.0.0.1:6379/0"
    assert not (tmp_path / "redis").exists()
