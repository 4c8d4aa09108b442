"""Where Redis is: a component given a URL uses it for everything (LLM metrics
included) and never starts the embedded Redis; with nothing configured, the queue and
the saver work on the embedded default (a unix socket, no TCP options)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis

from dialogllm.redis import EmbeddedRedis

pytestmark = pytest.mark.integration

GIVEN_A_URL = textwrap.dedent(
    """
    import asyncio, sys
    from dialogllm.checkpoint import AsyncRedisSaver, RedisSaver
    from dialogllm.llm import LLMMetrics
    from dialogllm.queue import Queue, Worker
    from dialogllm.redis import using

    URL, PREFIX = sys.argv[1], sys.argv[2]

    async def main() -> None:
        async with Queue.from_url(URL, key_prefix=PREFIX) as queue:
            run = await queue.enqueue("noop:graph", {"topic": "x"})
            assert (await queue.get(run)).graph == "noop:graph"
        async with AsyncRedisSaver.from_conn_string(URL, key_prefix=PREFIX) as saver:
            assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is None
        with RedisSaver.from_conn_string(URL, key_prefix=PREFIX) as sync_saver:
            assert sync_saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
        worker = Worker(URL, key_prefix=PREFIX, queue="other", lease_ttl=5)
        task = asyncio.create_task(worker.run(install_signal_handlers=False))
        while not worker.ready:
            await asyncio.sleep(0.05)
        worker.stop()
        await task
        with using(URL):  # what a Worker does around the runs it executes
            metrics = LLMMetrics(prefix=PREFIX)
            metrics.record_rate_limit_wait("m", 0.5)
            assert await metrics.flush() == 1

    asyncio.run(main())
    print("ok")
    """
)


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOGLLM_")}
    env["DIALOGLLM_LOG_LEVEL"] = "warning"
    return env


def test_components_given_a_url_never_start_the_embedded_redis(
    tmp_path: Path, redis_url: str, key_prefix: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", GIVEN_A_URL, redis_url, key_prefix],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "ok"
    assert list(tmp_path.iterdir()) == []  # no ./.dialogllm/, no socket, no AOF
    client = redis.Redis.from_url(redis_url)
    try:
        metric_keys = list(client.scan_iter(match=f"{key_prefix}:*metrics*"))
    finally:
        client.close()
    assert metric_keys, "the LLM metrics went to the given Redis"


EMBEDDED_DEFAULT = textwrap.dedent(
    """
    import asyncio
    from dialogllm.checkpoint import AsyncRedisSaver
    from dialogllm.queue import Queue
    from dialogllm.redis import async_client

    async def main() -> None:
        async with Queue.from_url() as queue:
            assert queue.url.startswith("unix://")
            run = await queue.enqueue("noop:graph", {"topic": "x"})
            assert (await queue.get(run)).graph == "noop:graph"
        client = async_client()
        saver = AsyncRedisSaver(client)
        assert await saver.aget_tuple({"configurable": {"thread_id": "t"}}) is None
        await client.aclose()

    asyncio.run(main())
    print("ok")
    """
)


def test_the_queue_and_saver_work_on_the_embedded_default(tmp_path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", EMBEDDED_DEFAULT],
            cwd=tmp_path,
            env=_clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "ok"
        assert (tmp_path / ".dialogllm" / "redis").is_dir()
    finally:
        EmbeddedRedis(tmp_path / ".dialogllm").stop()


DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://nobody:wrong@127.0.0.1:6379/0", "authentication failed for user"),
        ("redis://127.0.0.1:1/0", "is unreachable or not serving"),
    ],
    ids=["wrong-password", "unreachable"],
)
@pytest.mark.parametrize(
    "command", [["status"], ["threads", "list"], ["runs", "list"]], ids=" ".join
)
def test_the_cli_maps_redis_failures_to_one_exit_code(
    tmp_path: Path, url: str, says: str, command: list[str]
) -> None:
    env = {**_clean_env(), "DIALOGLLM_REDIS_URL": url}
    done = subprocess.run(
        [DIALOGLLM, *command],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 4, (done.stdout, done.stderr)
    assert says in done.stderr
    assert "wrong" not in done.stderr and "Traceback" not in done.stderr
