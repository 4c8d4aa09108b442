"""How the server is run: ``dialogllm serve`` with nothing configured (the graphs of
``./langgraph.json`` on the embedded Redis, a Unix socket in ``./.dialogllm``, which
outlives the server, so the dialogue survives it, until ``dialogllm redis stop``); a
busy port (one ``error:`` line naming ``--port``, exit 2, not a traceback); and the
ASGI app under uvicorn (``DIALOGLLM_SERVER_API_KEY`` required when set)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.conftest import REDIS_URL
from tests.integration.server.conftest import DIALOGLLM, free_port, start_server

pytestmark = pytest.mark.integration

GRAPH = """
from typing_extensions import TypedDict
from langgraph.graph import START, StateGraph


class Echo(TypedDict, total=False):
    text: str
    said: str


def _say(state: Echo) -> dict[str, str]:
    return {"said": state.get("text", "").upper()}


_echo = StateGraph(Echo)
_echo.add_node("say", _say)
_echo.add_edge(START, "say")
graph = _echo.compile()
"""


def _app(folder: Path) -> Path:
    (folder / "echo.py").write_text(GRAPH)
    config = folder / "langgraph.json"
    config.write_text('{"dependencies": ["."], "graphs": {"echo": "./echo.py:graph"}}')
    return config


def _redis_servers_in(folder: Path) -> list[psutil.Process]:
    """The redis-server processes whose command line names ``folder``."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "redis-server" in cmdline and str(folder) in cmdline:
            found.append(process)
    return found


async def test_serve_with_nothing_configured_runs_on_the_embedded_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DIALOGLLM_DATA_DIR", raising=False)
    config = _app(tmp_path)
    server = start_server("dialogllm", config=config, url=None)
    try:
        client = get_client(url=server.url)
        thread = await client.threads.create()
        values = await client.runs.wait(
            thread["thread_id"], "echo", input={"text": "hi"}
        )
        assert values == {"text": "hi", "said": "HI"}
    finally:
        server.stop()
    assert server.process.returncode in (0, 130), server.output()  # 130: Ctrl-C
    assert "Traceback" not in server.output()
    assert (tmp_path / ".dialogllm" / "redis.sock").is_socket()
    [embedded] = _redis_servers_in(tmp_path)  # outlives the server, by design

    # a new server on the same folder finds the dialogue where it was
    again = start_server("dialogllm", config=config, url=None)
    try:
        state = await get_client(url=again.url).threads.get_state(thread["thread_id"])
        assert state["values"] == {"text": "hi", "said": "HI"}
    finally:
        again.stop()
    assert _redis_servers_in(tmp_path) == [embedded]  # the same one, not another

    stopped = subprocess.run(
        [DIALOGLLM, "redis", "stop"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "DIALOGLLM_REDIS_URL"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stopped.returncode == 0, stopped.stderr
    embedded.wait(10)
    assert _redis_servers_in(tmp_path) == []


def test_a_busy_port_is_one_error_line_naming_port_and_exit_2(tmp_path: Path) -> None:
    config = _app(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [DIALOGLLM, "serve", "--config", str(config), "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert result.returncode == 2
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "--port" in errors[0] and str(port) in errors[0], result.stderr
    assert lines == errors, result.stderr  # nothing else: no traceback
    assert result.stdout == ""


def test_the_asgi_app_under_uvicorn_requires_the_api_key_when_set(
    tmp_path: Path, module_prefix: str
) -> None:
    config = _app(tmp_path)
    port = free_port()
    env = {
        **os.environ,
        "DIALOGLLM_SERVER_CONFIG": str(config),
        "DIALOGLLM_SERVER_API_KEY": "s3cret",
        "DIALOGLLM_REDIS_URL": REDIS_URL,
        "DIALOGLLM_KEY_PREFIX": module_prefix,
    }
    uvicorn = str(Path(DIALOGLLM).with_name("uvicorn"))
    # faulthandler: a server that does not stop is aborted and its log says where
    # each of its threads waits (it once outlived the 30 s below in a full run)
    log = (tmp_path / "uvicorn.log").open("w")
    process = subprocess.Popen(
        [uvicorn, "dialogllm.server:app", "--port", str(port)],
        cwd=tmp_path,
        env={**env, "PYTHONFAULTHANDLER": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not answer /ok"
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        refused = httpx.post(f"{url}/threads", json={}, timeout=10)
        client = get_sync_client(url=url, api_key="s3cret")
        thread = client.threads.create()
        values = client.runs.wait(thread["thread_id"], "echo", input={"text": "ok"})
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            process.wait(30)
            log.close()
            output = (tmp_path / "uvicorn.log").read_text()[-6000:]
            pytest.fail(f"uvicorn did not stop within 30 s of SIGTERM:\n{output}")
        log.close()

    assert refused.status_code == 401
    assert values == {"text": "ok", "said": "OK"}
