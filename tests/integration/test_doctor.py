"""``dialogllm doctor``'s Redis checks against real servers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import pytest
import redis

from dialogllm.doctor import Check, CheckStatus, redis_checks, worst

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def evicting_redis() -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server")
    port, tmp = _free_port(), tempfile.mkdtemp()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--maxmemory-policy", "allkeys-lru", "--dir", tmp,
         "--requirepass", "s3cret"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://:s3cret@127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    proc.kill()
    proc.wait()
    shutil.rmtree(tmp, ignore_errors=True)


async def test_evicting_unpersisted_redis_gets_warnings(evicting_redis: str) -> None:
    checks = {c.name: c for c in await redis_checks(evicting_redis)}
    assert checks["redis.reachable"].status is CheckStatus.OK
    assert checks["redis.version"].status is CheckStatus.OK
    assert checks["redis.persistence"].status is CheckStatus.WARN
    assert checks["redis.memory_policy"].status is CheckStatus.WARN
    assert "allkeys-lru" in checks["redis.memory_policy"].detail
    assert all("s3cret" not in c.detail for c in checks.values())
    assert worst(list(checks.values())) is CheckStatus.WARN


async def test_unreachable_redis_fails_with_masked_url() -> None:
    url = f"redis://app:hunter2@127.0.0.1:{_free_port()}/0"
    checks = await redis_checks(url, timeout=0.5)
    assert [c.status for c in checks] == [CheckStatus.FAIL]
    assert "hunter2" not in checks[0].detail and "app:***@" in checks[0].detail
    assert worst(checks) is CheckStatus.FAIL
    assert checks[0].as_dict()["status"] == "fail"


def test_worst_of_nothing_is_ok() -> None:
    assert worst([]) is CheckStatus.OK
    assert worst([Check("a", CheckStatus.OK, "")]) is CheckStatus.OK
