"""A deployment at scale, as real processes: ``dialogllm serve --no-worker`` API
processes and separate ``dialogllm worker`` processes on one Redis and key prefix.

:func:`start_worker` starts a worker; :class:`Fleet` is what a test of several
processes holds, and stops (or kills) every one of them at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, delete_prefix
from tests.integration.server.conftest import (
    DIALOGLLM,
    Process,
    Server,
    start_server,
)

PROOF_APP = Path(__file__).with_name("proof_app") / "langgraph.json"


@dataclass
class WorkerProcess(Process):
    """A ``dialogllm worker`` process (stopped gracefully with SIGTERM)."""

    stop_signal: signal.Signals = field(default=signal.SIGTERM, kw_only=True)


def start_worker(prefix: str, *args: str, config: Path = PROOF_APP) -> WorkerProcess:
    """Start ``dialogllm worker`` on the test Redis under ``prefix`` (in the app's
    folder, as a deployment would run it next to its ``langgraph.json``)."""
    log = Path(tempfile.mkstemp(prefix="dialogllm-worker-", suffix=".log")[1])
    env = {
        **os.environ,
        "DIALOGLLM_KEY_PREFIX": prefix,
        "DIALOGLLM_REDIS_URL": REDIS_URL,
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [DIALOGLLM, "worker", *args],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )
    return WorkerProcess(process, log)


@dataclass
class Fleet:
    """API and worker processes of one test, on one key prefix."""

    prefix: str
    apis: list[Server] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def api(self, *args: str, env: dict[str, str] | None = None) -> Server:
        """One more ``dialogllm serve --no-worker``."""
        server = start_server(
            self.prefix, "--no-worker", *args, env=env, config=PROOF_APP
        )
        self.apis.append(server)
        return server

    def worker(self, *args: str) -> WorkerProcess:
        """One more ``dialogllm worker`` (short leases: a killed one's runs are
        taken over within seconds)."""
        worker = start_worker(self.prefix, "--lease-ttl", "2", *args)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        """Every process's output, for a failing assertion's message."""
        parts = [f"--- api {s.url}\n{s.output()}" for s in self.apis]
        parts += [f"--- worker {w.process.pid}\n{w.output()}" for w in self.workers]
        return "\n".join(parts)

    def stop(self) -> None:
        for process in [*self.apis, *self.workers]:
            process.stop()


@pytest.fixture
def fleet(key_prefix: str) -> Iterator[Fleet]:
    """A fleet of this test's own, to kill parts of (its keys are deleted
    afterwards)."""
    made = Fleet(key_prefix)
    try:
        yield made
    finally:
        made.stop()
        delete_prefix(REDIS_URL, key_prefix)


@pytest.fixture(scope="module")
def two_apis(module_prefix: str) -> Iterator[Fleet]:
    """Two API processes and one worker, shared by a module's tests that kill
    nothing."""
    made = Fleet(module_prefix)
    try:
        made.api()
        made.api()
        made.worker()
        yield made
    finally:
        made.stop()
