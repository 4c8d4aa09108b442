"""Fixtures of the queue tests: an own key prefix, a queue, workers in-process or as
subprocesses, all on the shared Redis (or on a Redis the test starts itself)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.queue import Queue, Worker
from dialogllm.redis.clients import async_client
from tests.conftest import REDIS_URL

GRAPHS = str(Path(__file__).with_name("graphs.py"))
SRC = str(Path(__file__).resolve().parents[3] / "src")

pytestmark = pytest.mark.integration


def ref(name: str) -> str:
    """Reference of a graph or function of ``graphs.py``."""
    return f"{GRAPHS}:{name}"


@pytest.fixture
async def saver(key_prefix: str) -> AsyncIterator[AsyncRedisSaver]:
    """A checkpointer on the test Redis under the test's key prefix."""
    saver = AsyncRedisSaver(
        async_client(REDIS_URL, decode=False), key_prefix=key_prefix
    )
    yield saver
    await saver.client.aclose()


@pytest.fixture
async def queue(key_prefix: str) -> AsyncIterator[Queue]:
    q = Queue.from_url(REDIS_URL, key_prefix=key_prefix, retention=600)
    yield q
    await q.aclose()


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def start_worker(key_prefix: str) -> AsyncIterator[WorkerFactory]:
    """Start in-process workers (``start_worker(concurrency=4, ...)``); all are
    stopped at the end of the test."""
    running: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(**options: Any) -> Worker:
        options.setdefault("key_prefix", key_prefix)
        options.setdefault("lease_ttl", 2.0)
        options.setdefault("grace", 2.0)
        options.setdefault("backoff_base", 0.05)
        url = options.pop("url", REDIS_URL)
        worker = Worker(url, **options)
        task = asyncio.create_task(worker.run(install_signal_handlers=False))
        running.append((worker, task))
        return worker

    yield start
    for worker, _ in running:
        worker.stop()
    for _, task in running:
        await asyncio.wait_for(task, 30)


def worker_process(
    prefix: str,
    *,
    url: str = REDIS_URL,
    concurrency: int = 4,
    lease_ttl: float = 2.0,
    grace: float = 2.0,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """A worker in a process of its own (``python -m dialogllm.queue``)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the process
        prefix="dialogllm-worker-", suffix=".log", delete=False
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dialogllm.queue",
            "--redis-url",
            url,
            "--key-prefix",
            prefix,
            "--concurrency",
            str(concurrency),
            "--lease-ttl",
            str(lease_ttl),
            "--grace",
            str(grace),
            "--backoff-base",
            "0.05",
            "--log-level",
            "info",
            *extra,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    proc.log_path = Path(log.name)  # type: ignore[attr-defined]
    log.close()
    return proc


def worker_log(proc: subprocess.Popen[bytes]) -> str:
    """What a worker process logged so far."""
    path: Path = proc.log_path  # type: ignore[attr-defined]
    return path.read_text()


def is_ready(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the worker process has started reading the queue."""
    return proc.poll() is None and "worker started" in worker_log(proc)


async def ready_workers(procs: list[subprocess.Popen[bytes]], n: int) -> None:
    """Wait until ``n`` of ``procs`` read the queue (a fresh process needs a few
    seconds to import LangGraph on a busy machine)."""
    for _ in range(400):
        if sum(is_ready(p) for p in procs) >= n:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("workers did not start")


def stop_processes(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM the worker processes; SIGKILL those still there after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
