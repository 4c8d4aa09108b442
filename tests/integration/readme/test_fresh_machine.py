"""Every command README.md shows, run from a clean copy of the checkout as a new user
runs them, each checked against what the README says it does.

Copies the project's files to a temporary directory (no .venv, no .dialogllm) and,
with no DIALOGLLM_ variables (embedded Redis, local model): ``scripts/dialogue``,
then ``threads list`` and ``transcript THREAD --format md`` see that dialogue, and
``redis stop`` stops the embedded Redis. Then the "Running at scale" block, with
``DIALOGLLM_REDIS_URL`` exported to the tests' TCP Redis: a real ``worker`` process,
``submit debate --topic ... --wait`` served by it, ``status --watch`` and
``status --check``, and the worker stopped with SIGTERM. Last ``scripts/test`` on
one test file (every gate it runs, on a small selection: the full suite inside a
test of itself is not affordable). :data:`COVERS` lists what this test runs; a test
asserts it is every command the README shows.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, delete_prefix
from tests.integration.readme.documented import readme_commands, readme_excerpt

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
TOPIC = "Should a small team adopt a four-day work week?"
DEBATE = "Tabs or spaces?"

#: The README's commands this test runs (as the README writes them).
COVERS = {
    f'scripts/dialogue "{TOPIC}"',
    "scripts/test",
    "dialogllm threads list",
    "dialogllm transcript THREAD --format md",
    "dialogllm redis stop",
    "dialogllm serve",
    "export DIALOGLLM_REDIS_URL=rediss://app:secret@redis.internal:6380/0",
    "dialogllm worker --concurrency 8 --metrics-port 9100",
    f'dialogllm submit debate --topic "{DEBATE}" --wait',
    "dialogllm status --watch",
    "dialogllm status --check",
}


def _copy_project(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for name in files:
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def test_the_test_runs_every_command_the_readme_shows() -> None:
    assert set(readme_commands()) == COVERS


@pytest.mark.timeout(2400)
def test_readme_commands_on_a_fresh_checkout(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _copy_project(project)
    # a new user's machine: none of our settings, none of the test run's coverage
    # (its processes would report the copy's files as this checkout's)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DIALOGLLM_", "COVERAGE_"))
    }
    env["PYTHON"] = sys.executable  # the interpreter running the tests (3.11+)
    env.pop("VIRTUAL_ENV", None)
    dialogllm = ".venv/bin/dialogllm"

    def sh(
        *args: str, timeout: float = 120, **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args), cwd=project, env={**env, **extra},
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    try:
        # scripts/dialogue "…": installs, starts the embedded Redis, streams turns
        # (a short dialogue: the local model is slow on a CPU)
        first = sh("scripts/dialogue", TOPIC, "--thread", "readme-1",
                   "--max-turns", "2", "--no-interactive", timeout=1400)  # fmt: skip
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
        # ... and prints what the README's excerpt shows, its thread id aside
        lines = first.stdout.splitlines()
        excerpt = readme_excerpt()
        example = excerpt[0].removeprefix("thread ")
        assert re.fullmatch(r"[0-9a-f]{32}", example)  # the CLI's id format
        assert lines[0] == "thread readme-1"
        assert any(line.startswith("Director: ") for line in lines)
        shown = next(line for line in excerpt if line.startswith("Analyst: "))
        analyst = re.sub(r"\d+", r"\\d+", re.escape(shown))
        analyst = re.sub(r"(?<=\w)s\b", "s?", analyst)  # "1 claim to check"
        assert any(re.fullmatch(analyst, line) for line in lines), first.stdout
        assert lines[-1] == excerpt[-1].replace(example, "readme-1"), first.stdout
        assert (project / ".venv" / "bin" / "dialogllm").exists()
        redis_dir = project / ".dialogllm" / "redis"
        assert any(redis_dir.glob("appendonly*")), list(redis_dir.iterdir())

        # "Run it again and the first dialogue is still there"
        listed = sh(dialogllm, "threads", "list")
        assert listed.returncode == 0, listed.stderr[-2000:]
        row = next(line for line in listed.stdout.splitlines() if "readme-1" in line)
        assert "directed_dialogue" in row and "Should" in row
        md = sh(dialogllm, "transcript", "readme-1", "--format", "md")
        assert md.returncode == 0, md.stderr[-2000:]
        assert md.stdout.startswith(f"# {TOPIC}\n"), md.stdout[:300]
        assert "*Director (director):* " in md.stdout  # the scene, not a turn
        assert re.search(r"^\*\*[^*]+:\*\* \S", md.stdout, re.M), md.stdout

        # "dialogllm serve": the same graphs over LangGraph's HTTP API, on the same
        # embedded Redis, with nothing configured
        _serve(project, env, dialogllm)

        # "Stop the embedded Redis with .venv/bin/dialogllm redis stop"
        stopped = sh(dialogllm, "redis", "stop")
        assert stopped.returncode == 0, stopped.stderr[-2000:]
        assert sh(dialogllm, "redis", "status").returncode == 1

        _running_at_scale(project, env, dialogllm)

        # scripts/test: installs the dev extra, makes sure Redis answers, runs ruff,
        # ruff format --check, mypy --strict src and pytest (here: one test file)
        tested = sh("scripts/test", "tests/unit/test_exit_codes.py", "--no-cov",
                    "-q", "-p", "no:cacheprovider", timeout=900)  # fmt: skip
        assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]
        assert "All checks passed!" in tested.stdout
        assert "Success: no issues found" in tested.stdout
        assert " passed" in tested.stdout
    finally:
        sh(dialogllm, "redis", "stop", timeout=60)


def _serve(project: Path, env: dict[str, str], dialogllm: str) -> None:
    """``dialogllm serve`` on the fresh install: the shipped graphs' assistants, the
    first dialogue's thread on the same embedded Redis; Ctrl-C ends it with 0."""
    import httpx

    port = _free_port()  # 2024 may be taken on this machine
    # faulthandler: a server that does not stop is aborted and prints where each
    # of its threads waits, so a hang says why
    server = subprocess.Popen(
        [dialogllm, "serve", "--port", str(port)], cwd=project,
        env={**env, "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, ready = time.monotonic() + 120, False
        while not ready and time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{url}/ok", timeout=1).status_code == 200
            time.sleep(0 if ready else 0.3)
        assert ready, f"serve did not answer /ok within 120 s (exit {server.poll()})"
        found = httpx.post(f"{url}/assistants/search", json={}, timeout=30).json()
        assert {a["graph_id"] for a in found} == {
            "debate", "directed_dialogue", "interview"
        }, found  # fmt: skip
        made = httpx.post(f"{url}/threads", json={"metadata": {"by": "readme"}})
        assert made.status_code == 200, made.text
    finally:
        server.send_signal(signal.SIGINT)
        try:
            _, err = server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGABRT)
            _, err = server.communicate(timeout=60)
            pytest.fail(f"serve did not stop within 120 s of Ctrl-C:\n{err[-6000:]}")
    assert server.returncode == 0, err[-2000:]
    assert f"at {url}" in err


def _running_at_scale(project: Path, base: dict[str, str], dialogllm: str) -> None:
    """The README's "Running at scale" block on the tests' TCP Redis (own prefix)."""
    prefix = f"test-readme-{uuid.uuid4().hex[:8]}"
    # export DIALOGLLM_REDIS_URL=… (the tests' Redis instead of redis.internal)
    env = {**base, "DIALOGLLM_REDIS_URL": REDIS_URL, "DIALOGLLM_KEY_PREFIX": prefix}
    port = _free_port()  # instead of 9100, which another program may hold
    log = project / "worker.log"
    worker = subprocess.Popen(
        [dialogllm, "worker", "--concurrency", "8", "--metrics-port", str(port)],
        cwd=project, env=env, stdout=subprocess.DEVNULL,
        stderr=log.open("w"), text=True,
    )  # fmt: skip
    try:
        submitted = subprocess.run(
            [dialogllm, "submit", "debate", "--topic", DEBATE, "--wait",
             "--rounds", "1", "--timeout", "900"],
            cwd=project, env=env, capture_output=True, text=True, timeout=1000,
        )  # fmt: skip
        out = submitted.stdout
        assert submitted.returncode == 0, out[-2000:] + submitted.stderr[-2000:]
        assert ": success after " in out, out
        thread = out.rsplit("thread ", 1)[1].split(";", 1)[0]
        assert f"transcript: {dialogllm} transcript {thread} --format md" in out
        assert out.count(": ") >= 3, out  # the debate's turns were streamed
        state = subprocess.run(
            [dialogllm, "threads", "show", thread, "--json"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert "motion" in json.loads(state.stdout)["channels"]

        deadline = time.monotonic() + 60
        while "dialogllm_worker_ready 1.0" not in _scrape(port):
            assert time.monotonic() < deadline, "worker metrics never served"
            time.sleep(0.5)

        watch = subprocess.Popen(
            [dialogllm, "status", "--watch"], cwd=project, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        seen: list[str] = []

        def read_screens() -> None:
            assert watch.stdout is not None
            seen.extend(watch.stdout)

        reader = threading.Thread(target=read_screens, daemon=True)
        reader.start()
        deadline = time.monotonic() + 60  # a whole screen, however slow the start
        while not any(line.startswith("  alerts") for line in seen):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
        reader.join(timeout=10)
        screens = "".join(seen)
        assert "depth" in screens and "workers (1 alive)" in screens, screens[-2000:]
        checked = subprocess.run(
            [dialogllm, "status", "--check"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=120)
        delete_prefix(REDIS_URL, prefix)
    assert code == 0, log.read_text()[-2000:]
