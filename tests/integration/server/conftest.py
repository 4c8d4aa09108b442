"""Fixtures of the server tests: real ``dialogllm serve`` processes on the real Redis,
each test module with a key prefix of its own, driven by the real ``langgraph-sdk``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, delete_prefix

APP = Path(__file__).with_name("app") / "langgraph.json"
DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Process:
    """A ``dialogllm`` process a test started, with its log."""

    process: subprocess.Popen[bytes]
    log: Path
    #: what stops it gracefully (``serve``: Ctrl-C; ``worker``: SIGTERM)
    stop_signal: signal.Signals = field(default=signal.SIGINT, kw_only=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """kill -9: no shutdown, no goodbye (a worker's leases stay until they
        expire)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Server(Process):
    """A ``dialogllm serve`` process."""

    url: str = field(kw_only=True)


def start_server(
    prefix: str,
    *args: str,
    env: dict[str, str] | None = None,
    config: Path = APP,
    url: str | None = REDIS_URL,
) -> Server:
    """Start ``dialogllm serve`` on a free port and wait until ``/ok`` answers."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="dialogllm-serve-", suffix=".log")[1])
    environment = {**os.environ, "DIALOGLLM_KEY_PREFIX": prefix, **(env or {})}
    if url is None:
        environment.pop("DIALOGLLM_REDIS_URL", None)
    else:
        environment["DIALOGLLM_REDIS_URL"] = url
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [DIALOGLLM, "serve", "--config", str(config), "--port", str(port), *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=config.parent,
        )
    server = Server(process, log, url=f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dialogllm serve exited: {server.output()}")
        try:
            if httpx.get(f"{server.url}/ok", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise AssertionError(f"dialogllm serve did not answer: {server.output()}")


@pytest.fixture(scope="module")
def module_prefix() -> Iterator[str]:
    """A key prefix for every server of one test module; deleted afterwards."""
    prefix = f"test-srv-{uuid.uuid4().hex[:10]}"
    yield prefix
    delete_prefix(REDIS_URL, prefix)


@pytest.fixture(scope="module")
def server(module_prefix: str) -> Iterator[Server]:
    """One API process with its in-process worker, for a whole module."""
    started = start_server(module_prefix)
    yield started
    started.stop()
