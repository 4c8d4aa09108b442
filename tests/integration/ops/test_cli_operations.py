"""The operator's commands against a real Redis and a live fleet of two workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

GRAPH = str(Path(__file__).with_name("fleet_graph.py"))
DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


def _env(key_prefix: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DIALOGLLM_REDIS_URL": "redis://127.0.0.1:6379/0",
            "DIALOGLLM_KEY_PREFIX": key_prefix,
            "DIALOGLLM_LLM_METRICS_TO_REDIS": "false",
            **extra,
        }
    )
    return env


def cli(key_prefix: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIALOGLLM, *args],
        env=_env(key_prefix, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli_json(key_prefix: str, *args: str) -> object:
    result = cli(key_prefix, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def fleet(key_prefix: str) -> Iterator[list[subprocess.Popen[str]]]:
    workers = [
        subprocess.Popen(
            [
                DIALOGLLM,
                "worker",
                "--concurrency",
                "2",
                "--lease-ttl",
                "5",
                "--grace",
                "2",
            ],
            env=_env(key_prefix),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    yield workers
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        w.wait(timeout=30)


def _wait_for(predicate: object, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError("condition not reached in time")


def test_submit_wait_status_runs_threads_dlq_with_two_workers(
    key_prefix: str, fleet: list[subprocess.Popen[str]]
) -> None:
    done = cli(
        key_prefix, "submit", f"{GRAPH}:counting", "--input", '{"turns": 3}',
        "--thread", "t-ok", "--wait", "--timeout", "60",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout

    failed = cli(key_prefix, "submit", f"{GRAPH}:broken", "--thread", "t-bad", "--wait",
                 "--timeout", "90")  # fmt: skip
    assert failed.returncode == 1

    slow = cli_json(key_prefix, "submit", f"{GRAPH}:counting", "--input",
                    '{"turns": 400, "pause": 0.25}', "--thread", "t-slow")  # fmt: skip
    assert isinstance(slow, dict)

    def slow_running() -> bool:
        status = cli_json(key_prefix, "status")
        assert isinstance(status, dict)
        return status["runs_by_status"]["running"] == 1 and status["live_workers"] == 2

    _wait_for(slow_running)
    status = cli_json(key_prefix, "status")
    assert isinstance(status, dict)
    assert status["runs_by_status"]["success"] == 1
    assert status["runs_by_status"]["running"] == 1
    assert status["runs_by_status"]["dead"] + status["runs_by_status"]["error"] == 1
    assert [w["alive"] for w in status["workers"]] == [True, True]
    assert [w["ready"] for w in status["workers"]] == [True, True]
    assert status["errors"][0]["count"] == 1
    assert status["errors"][0]["kind"] == "RuntimeError"
    assert status["errors"][0]["node"] == "speak"  # the node that raised
    assert status["reclaims"] == 0 and status["recovery_max_s"] is None
    assert status["retries"] >= 2  # the broken run was retried before dying
    assert status["run_duration_p50_s"] is not None
    assert "BrokenNode" in status["errors"][0]["example_message"]
    assert cli(key_prefix, "status", "--check").returncode in (0, 6)

    runs = cli_json(key_prefix, "runs", "list")
    assert isinstance(runs, list) and len(runs) == 3
    shown = cli_json(key_prefix, "runs", "show", slow["run_id"])
    assert isinstance(shown, dict) and shown["run"]["thread_id"] == "t-slow"

    cancelled = cli_json(key_prefix, "cancel", slow["run_id"])
    assert isinstance(cancelled, dict)
    _wait_for(lambda: cli_json(key_prefix, "runs", "list", "--status", "cancelled"))

    threads = cli_json(key_prefix, "threads", "list")
    assert isinstance(threads, list)
    assert {"t-ok", "t-bad", "t-slow"} <= {t["thread_id"] for t in threads}
    ok = cli_json(key_prefix, "threads", "show", "t-ok")
    assert isinstance(ok, dict) and ok["checkpoints"] >= 4

    if status["runs_by_status"]["dead"]:
        letters = cli_json(key_prefix, "dlq", "list")
        assert isinstance(letters, list) and letters[0]["thread_id"] == "t-bad"
        purge = cli_json(key_prefix, "dlq", "purge", "--yes")
        assert purge == {"purged": len(letters)}
        assert cli_json(key_prefix, "dlq", "list") == []


def test_bad_arguments_and_unknown_things_exit_non_zero(key_prefix: str) -> None:
    bad_json = cli(key_prefix, "submit", f"{GRAPH}:counting", "--input", "{nope")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    unknown = cli(key_prefix, "submit", "no_such_graph_anywhere")
    assert unknown.returncode == 2
    missing = cli(key_prefix, "runs", "show", "no-such-run")
    assert missing.returncode == 3
    thread = cli(key_prefix, "threads", "show", "no-such-thread")
    assert thread.returncode == 3
    status = cli(key_prefix, "runs", "list", "--status", "sleeping")
    assert status.returncode == 2
    assert cli(key_prefix, "worker", "--concurrency", "0").returncode == 2


def test_markup_in_an_argument_is_printed_literally(key_prefix: str) -> None:
    status = cli(key_prefix, "runs", "list", "--status", "[/x]")
    assert status.returncode == 2
    assert "error: unknown --status '[/x]'" in status.stderr
    thread = cli(key_prefix, "threads", "show", "[/x]")
    assert thread.returncode == 3
    assert "error: no checkpoints for thread '[/x]'" in thread.stderr


def test_redis_unreachable_names_the_masked_url(key_prefix: str) -> None:
    result = cli(
        key_prefix, "status", DIALOGLLM_REDIS_URL="redis://ops:pa55w0rd@127.0.0.1:1/0"
    )
    assert result.returncode == 4
    assert "127.0.0.1:1" in result.stderr and "pa55w0rd" not in result.stderr


def test_doctor_json_reports_the_shared_redis(key_prefix: str) -> None:
    result = cli(key_prefix, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["redis.reachable"]["status"] == "ok"
    assert checks["redis.memory_policy"]["status"] in ("ok", "warn")
    assert "llm.local_model" in checks


def test_embedded_redis_commands(key_prefix: str, tmp_path: Path) -> None:
    env = {"DIALOGLLM_DATA_DIR": str(tmp_path)}
    started = cli(key_prefix, "redis", "start", "--json", **env)
    assert started.returncode == 0 and json.loads(started.stdout)["running"]
    status = cli(key_prefix, "redis", "status", "--json", **env)
    assert status.returncode == 0 and json.loads(status.stdout)["aof_enabled"]
    stopped = cli(key_prefix, "redis", "stop", "--json", **env)
    assert json.loads(stopped.stdout) == {"stopped": True}
    assert cli(key_prefix, "redis", "status", **env).returncode == 1


def test_graphs_lists_input_schemas(key_prefix: str) -> None:
    listed = cli_json(key_prefix, "graphs")
    assert isinstance(listed, list)
    by_name = {g["name"]: g for g in listed}
    assert {"directed_dialogue", "debate", "interview"} <= set(by_name)
    assert "topic" in by_name["directed_dialogue"]["input_schema"]["properties"]
    assert "motion" in by_name["debate"]["input_schema"]["required"]


def test_worker_exports_prometheus_metrics_and_stops_on_sigterm(
    key_prefix: str,
) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    worker = subprocess.Popen(
        [DIALOGLLM, "worker", "--metrics-port", str(port), "--queues", "default",
         "--grace", "1"],
        env=_env(key_prefix), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        queued = cli(key_prefix, "submit", f"{GRAPH}:counting", "--thread", "m-1",
                     "--wait", "--timeout", "60")  # fmt: skip
        assert queued.returncode == 0, queued.stderr

        def scraped() -> bool:
            try:
                url = f"http://127.0.0.1:{port}/metrics"
                with urllib.request.urlopen(url, timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                return False
            return (
                'dialogllm_runs{queue="default",status="success"} 1.0' in body
                and "dialogllm_live_workers" in body
                and "dialogllm_redis_rtt_seconds" in body
                and "dialogllm_worker_ready 1.0" in body
                and 'run_duration_seconds{quantile="0.5",queue="default"}' in body
            )

        _wait_for(scraped, timeout=60)
        assert cli(key_prefix, "status", "--check").returncode == 0
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    down = cli_json(key_prefix, "status")
    assert isinstance(down, dict) and down["workers"] == []


def test_options_out_of_range_are_one_error_line_and_exit_2(key_prefix: str) -> None:
    cases = [
        (["worker", "--lease-ttl", "0"], "--lease-ttl must be > 0"),
        (["worker", "--lease-ttl", "-1"], "--lease-ttl must be > 0"),
        (["worker", "--grace", "-1"], "--grace must be >= 0"),
        (["submit", GRAPH + ":counting", "--delay", "-5"], "--delay must be >= 0"),
        (["submit", GRAPH + ":counting", "--wait", "--timeout", "0"], "--timeout must"),
    ]
    for args, message in cases:
        result = cli(key_prefix, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith(f"error: {message}"), (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
