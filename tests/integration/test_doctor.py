"""``dialogllm doctor``'s Redis checks against real servers."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dialogllm.cli.doctor import Check, CheckStatus, llm_checks, redis_checks, worst
from dialogllm.llm import LLMSettings
from tests.redis_servers import RedisServer, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[str]:
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server")
    server = RedisServer(
        tmp_path,
        aof=False,
        password="s3cret",
        extra=["--maxmemory-policy", "allkeys-lru"],
    )
    with server:
        yield server.url


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
    url = f"redis://app:hunter2@127.0.0.1:{free_port()}/0"
    checks = await redis_checks(url, timeout=0.5)
    assert [c.status for c in checks] == [CheckStatus.FAIL]
    assert "hunter2" not in checks[0].detail and "app:***@" in checks[0].detail
    assert worst(checks) is CheckStatus.FAIL
    assert checks[0].as_dict()["status"] == "fail"


def test_worst_of_nothing_is_ok() -> None:
    assert worst([]) is CheckStatus.OK
    assert worst([Check("a", CheckStatus.OK, "")]) is CheckStatus.OK


class _ModelsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == "Bearer good-key"
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b'{"data": []}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def models_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModelsHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


async def test_endpoint_check_accepts_a_good_key_and_names_a_bad_one(
    models_server: str,
) -> None:
    good = LLMSettings(base_url=models_server, api_key="good-key", model="m")
    assert [c.status for c in await llm_checks(good)] == [CheckStatus.OK]
    bad = LLMSettings(base_url=models_server, api_key="wrong-key-123", model="m")
    (check,) = await llm_checks(bad)
    assert check.status is CheckStatus.FAIL and "API_KEY" in check.detail
    assert "wrong-key-123" not in check.detail


async def test_unreachable_endpoint_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    (check,) = await llm_checks(LLMSettings(base_url=url, model="m"), timeout=0.5)
    assert check.status is CheckStatus.FAIL and "unreachable" in check.detail


async def test_local_model_check_loads_the_model(tmp_path: Path) -> None:
    settings = LLMSettings(base_url=None, cache_dir=tmp_path / "models")
    (shallow,) = await llm_checks(settings)
    assert shallow.status is CheckStatus.OK and "first use" in shallow.detail
    (deep,) = await llm_checks(settings, deep=True)
    assert deep.status is CheckStatus.OK, deep.detail
