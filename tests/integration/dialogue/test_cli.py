"""``dialogllm run / resume / transcript`` against the real Redis, with scripted
models (``file.py:attr`` test graphs): streaming, pauses for a person, bad input,
exit codes, and a run killed with SIGKILL that ``resume`` finishes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dialogllm import cli
from dialogllm.cli import dialogue, output
from tests.integration.dialogue.conftest import ROOT, SCRIPTED, prefix_keys

pytestmark = pytest.mark.integration

CHAT = f"{SCRIPTED}:slow_chat"
INTERVIEW = f"{SCRIPTED}:scripted_interview"
DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


def _cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(cli.app, list(args), input=input)


def test_run_streams_turns_and_transcript_exports_them(env_prefix: str) -> None:
    run = _cli(
        "run", CHAT, "--topic", "tea", "--thread", "c1", "--input", '{"turns": 4}'
    )
    assert run.exit_code == cli.EXIT_OK, run.output
    assert "Ada: turn 1\nBo: turn 2\nAda: turn 3\nBo: turn 4\n" in run.output
    assert "dialogllm transcript c1" in run.output

    md = _cli("transcript", "c1")
    assert md.exit_code == 0
    assert md.output.startswith("# tea\n") and "**Bo:** turn 4" in md.output
    data = json.loads(_cli("transcript", "c1", "--format", "json").output)
    assert [e["text"] for e in data["entries"]] == [f"turn {i}" for i in range(1, 5)]


def test_a_pause_for_a_person_prints_how_to_resume(env_prefix: str) -> None:
    first = _cli("run", INTERVIEW, "--topic", "Redis streams", "--thread", "iv")
    assert first.exit_code == cli.EXIT_WAITING, first.output
    assert "Interviewer: Question 1?" in first.output
    assert 'dialogllm resume iv --answer "..."' in first.output

    wrong = _cli("resume", "iv", "--value", "42")
    assert wrong.exit_code == cli.EXIT_THREAD
    assert "must be text, got int" in wrong.output

    second = _cli("resume", "iv", "--answer", "An append-only log.")
    assert second.exit_code == cli.EXIT_WAITING
    assert "Candidate: An append-only log.\nInterviewer: Question 2?" in second.output
    third = _cli("resume", "iv", "--value", '"Consumer groups."')
    assert third.exit_code == cli.EXIT_OK, third.output
    again = _cli("resume", "iv")
    assert again.exit_code == cli.EXIT_THREAD and "has finished" in again.output


def test_the_person_at_the_terminal_is_asked(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialogue, "_stdin_is_terminal", lambda: True)
    run = _cli(
        "run",
        INTERVIEW,
        "--topic",
        "Redis",
        "--input",
        '{"questions": 2}',
        input="Streams.\n\nGroups.\n",
    )
    assert run.exit_code == cli.EXIT_OK, run.output
    # a terminal echoes what the person typed after the prompt: the answer is not
    # printed a second time as a turn (CliRunner does not echo, so it shows once)
    assert run.output.count("Candidate:") == 3  # asked again after the blank answer
    assert "Streams." not in run.output and "Groups." not in run.output
    thread = re.search(r"thread (\w+)", run.output)
    assert thread is not None
    saved = _cli("transcript", thread.group(1))
    assert "**Candidate:** Streams." in saved.output
    assert "**Candidate:** Groups." in saved.output


def test_piped_answers_are_read_one_line_per_question(env_prefix: str) -> None:
    args = [DIALOGLLM, "run", INTERVIEW, "--topic", "Redis", "--input"]
    env = {**os.environ}
    both = subprocess.run(
        [*args, '{"questions": 2}'],
        input="Streams.\n\nGroups.\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert both.returncode == cli.EXIT_OK, both.stdout + both.stderr
    assert "Candidate: Streams." in both.stdout
    assert "Candidate: Groups." in both.stdout
    short = subprocess.run(
        [*args, '{"questions": 2}', "--thread", "piped-short"],
        input="Only one.\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert short.returncode == cli.EXIT_WAITING, short.stdout + short.stderr
    assert "Candidate: Only one." in short.stdout
    assert 'dialogllm resume piped-short --answer "..."' in short.stdout


def test_bad_input_is_refused_with_clear_errors_and_nothing_written(
    env_prefix: str, redis_url: str
) -> None:
    cases = [
        (["run", "no_such_graph"], cli.EXIT_BAD_INPUT, "unknown graph 'no_such_graph'"),
        (["run", f"{SCRIPTED}:nope"], cli.EXIT_BAD_INPUT, "has no attribute 'nope'"),
        (["run", CHAT, "--input", "{"], cli.EXIT_BAD_INPUT, "not valid JSON"),
        (["run", CHAT, "--input", "[1]"], cli.EXIT_BAD_INPUT, "must be a JSON object"),
        (
            ["run", CHAT, "--input", '{"topic": "x", "turns": 0}'],
            cli.EXIT_BAD_INPUT,
            "turns: Input should be greater than or equal to 1",
        ),
        (["resume", "ghost"], cli.EXIT_THREAD, "thread 'ghost' does not exist"),
        (
            ["resume", "ghost", "--answer", "a", "--value", "1"],
            cli.EXIT_BAD_INPUT,
            "not both",
        ),
        (["resume", "ghost", "--value", "{"], cli.EXIT_BAD_INPUT, "not valid JSON"),
        (["transcript", "ghost"], cli.EXIT_THREAD, "does not exist"),
    ]
    for args, code, message in cases:
        result = _cli(*args)
        assert result.exit_code == code, (args, result.output)
        assert message in " ".join(result.output.split()), (args, result.output)
    assert prefix_keys(redis_url, env_prefix) == []


def test_topic_fills_a_debates_motion(env_prefix: str) -> None:
    result = _cli("run", "debate", "--topic", "Ban cars", "--input", '{"rounds": 0}')
    assert result.exit_code == cli.EXIT_BAD_INPUT
    assert "rounds: Input should be greater than or equal to 1" in result.output
    assert "motion" not in result.output


def test_resume_refuses_a_value_for_a_thread_that_is_not_waiting(
    env_prefix: str,
) -> None:
    assert (
        _cli(
            "run", CHAT, "--topic", "t", "--thread", "x", "--input", '{"turns": 1}'
        ).exit_code
        == 0
    )
    result = _cli("resume", "x", "--answer", "hello")
    assert result.exit_code == cli.EXIT_THREAD
    assert "has finished" in result.output
    dup = _cli("run", CHAT, "--topic", "t", "--thread", "x")
    assert dup.exit_code == cli.EXIT_BAD_INPUT and "already exists" in dup.output


def test_redis_down_is_exit_code_4(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # env_prefix first: monkeypatch is undone before it restores the environment
    monkeypatch.setenv("DIALOGLLM_REDIS_URL", "redis://127.0.0.1:1/0")
    from dialogllm.config import get_settings

    get_settings(reload=True)
    result = _cli("transcript", "any")
    assert result.exit_code == cli.EXIT_REDIS, result.output


def test_graphs_lists_the_shipped_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = _cli("graphs")
    assert result.exit_code == 0
    for name in ("debate", "directed_dialogue", "interview"):
        assert name in result.output


def _spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DIALOGLLM, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.slow
def test_a_killed_run_is_finished_by_resume_with_no_turn_lost_or_repeated(
    env_prefix: str, redis_url: str
) -> None:
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": redis_url,
        "DIALOGLLM_KEY_PREFIX": env_prefix,
        "DIALOGLLM_TEST_DELAY": "0.3",
    }
    args = ["run", CHAT, "--thread", "k", "--input", '{"topic": "tea", "turns": 6}']
    proc = _spawn(*args, env=env)
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line.strip())
        if line.strip() == "Ada: turn 3":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, (
        seen,
        proc.stderr and proc.stderr.read(),
    )

    resumed = subprocess.run(
        [DIALOGLLM, "resume", "k"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert resumed.returncode == 0, (seen, resumed.stdout, resumed.stderr[-3000:])
    assert "Bo: turn 6" in resumed.stdout
    exported = subprocess.run(
        [DIALOGLLM, "transcript", "k", "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    entries = json.loads(exported.stdout)["entries"]
    assert [e["text"] for e in entries] == [f"turn {i}" for i in range(1, 7)]
    assert [e["index"] for e in entries] == list(range(6))
    assert [e["speaker"] for e in entries] == ["Ada", "Bo"] * 3


def test_an_llm_that_never_validates_is_exit_code_5(env_prefix: str) -> None:
    result = _cli("run", f"{SCRIPTED}:broken_chat", "--topic", "tea", "--thread", "b")
    assert result.exit_code == cli.EXIT_LLM, result.output
    assert "dialogllm resume b" in result.output


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_the_thread_resumes(
    env_prefix: str, redis_url: str
) -> None:
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": redis_url,
        "DIALOGLLM_KEY_PREFIX": env_prefix,
        "DIALOGLLM_TEST_DELAY": "0.3",
    }
    args = ["run", CHAT, "--thread", "c", "--input", '{"topic": "tea", "turns": 4}']
    proc = _spawn(*args, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    while proc.stdout.readline().strip() != "Bo: turn 2":
        pass
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode == cli.EXIT_INTERRUPTED
    assert "dialogllm resume c" in proc.stderr.read()
    resumed = subprocess.run(
        [DIALOGLLM, "resume", "c"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.rstrip().endswith("dialogllm transcript c --format md")
    assert "Bo: turn 4" in resumed.stdout


def test_a_terminal_gets_a_live_progress_line(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from rich.console import Console

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, highlight=False)
    monkeypatch.setattr(output, "err", terminal)
    run = _cli("run", CHAT, "--topic", "tea", "--input", '{"turns": 2}')
    assert run.exit_code == cli.EXIT_OK, run.output
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    assert "turn 2 · " in shown
    assert "Ada: turn 1\nBo: turn 2" in run.output


def test_resume_at_a_terminal_shows_the_question_and_asks(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _cli("run", INTERVIEW, "--topic", "Redis", "--thread", "r")
    assert first.exit_code == cli.EXIT_WAITING
    monkeypatch.setattr(dialogue, "_stdin_is_terminal", lambda: True)
    resumed = _cli("resume", "r", input="Streams.\nGroups.\n")
    assert resumed.exit_code == cli.EXIT_OK, resumed.output
    assert "Interviewer: Question 1?" in resumed.output
    assert "Interviewer: Question 2?" in resumed.output
    # typed answers are on a terminal's screen already: not printed again as turns
    assert "Streams." not in resumed.output and "Groups." not in resumed.output
    saved = _cli("transcript", "r")
    assert "**Candidate:** Streams." in saved.output
    assert "**Candidate:** Groups." in saved.output


def test_a_thread_a_worker_made_opens_with_transcript(
    env_prefix: str, redis_url: str
) -> None:
    from dialogllm.queue import Worker

    async def work() -> Any:
        worker = Worker(redis_url, key_prefix=env_prefix, lease_ttl=2.0, grace=2.0)
        task = asyncio.create_task(worker.run(install_signal_handlers=False))
        try:
            args = ["--input", '{"turns": 2}', "--thread", "w1", "--wait"]
            return await asyncio.to_thread(
                _cli, "submit", CHAT, "--topic", "tea", *args, "--timeout", "60"
            )
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)

    submitted = asyncio.run(work())
    assert submitted.exit_code == cli.EXIT_OK, submitted.output
    # the turns as `run` shows them, then where to read them again
    assert "Ada: turn 1\nBo: turn 2\n" in submitted.output
    assert "dialogllm transcript w1" in submitted.output
    result = _cli("transcript", "w1")
    assert result.exit_code == cli.EXIT_OK, result.output
    assert "**Ada:** turn 1" in result.output and "**Bo:** turn 2" in result.output


def test_bad_settings_are_one_error_line_and_exit_2(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALOGLLM_REDIS_URL", "notaurl")
    for args in (["transcript", "x"], ["run", CHAT, "--topic", "tea"]):
        done = subprocess.run(
            [DIALOGLLM, *args], capture_output=True, text=True, cwd=ROOT, timeout=60
        )
        assert done.returncode == cli.EXIT_BAD_INPUT, (args, done.stderr)
        assert done.stderr.startswith("error: invalid settings: DIALOGLLM_REDIS_URL")
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_submit_checks_the_input_as_run_does(env_prefix: str, redis_url: str) -> None:
    # The README's example: --topic fills a debate's motion, for submit as for run.
    cases = [
        (["--topic", ""], "motion: String should have at least 3 characters"),
        (["--input", '{"motion": "ab"}'], "motion: String should have at least 3"),
        (["--input", '{"rounds": "many"}'], "rounds: Input should be a valid integer"),
        (["--input", '{"topic": "Tabs or spaces?"}'], "motion: Field required"),
        (
            ["--topic", "Tabs or spaces?", "--input", '{"motion": "Cats win"}'],
            "--topic sets 'motion', which --input gives too",
        ),
    ]
    for command in ("run", "submit"):
        for args, message in cases:
            result = _cli(command, "debate", *args)
            assert result.exit_code == cli.EXIT_BAD_INPUT, (command, args, result)
            assert message in " ".join(result.output.split()), (command, args)
            assert result.output.count("error:") == 1, result.output
    assert prefix_keys(redis_url, env_prefix) == []

    queued = _cli("submit", "debate", "--topic", "Tabs or spaces?", "--json")
    assert queued.exit_code == cli.EXIT_OK, queued.output
    assert json.loads(queued.output)["input"] == {"motion": "Tabs or spaces?"}


def test_a_run_that_wrote_nothing_does_not_hint_at_resume(
    env_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIALOGLLM_REDIS_URL", "redis://127.0.0.1:1/0")
    from dialogllm.config import get_settings

    get_settings(reload=True)
    result = _cli("run", CHAT, "--topic", "tea", "--thread", "never")
    assert result.exit_code == cli.EXIT_REDIS, result.output
    assert "resume" not in result.output


def test_submit_tells_where_to_read_the_dialogue(env_prefix: str) -> None:
    queued = _cli("submit", CHAT, "--topic", "tea", "--thread", "s1")
    assert queued.exit_code == cli.EXIT_OK, queued.output
    assert "dialogllm transcript s1" in queued.output


def test_a_graph_of_a_plain_typeddict_runs_and_is_submitted(env_prefix: str) -> None:
    # pydantic cannot build a schema from typing.TypedDict on Python < 3.12: the
    # input goes unchecked, as LangGraph takes it, instead of a traceback.
    graph = f"{ROOT}/tests/integration/ops/fleet_graph.py:counting"
    run = _cli("run", graph, "--input", '{"turns": 2}', "--thread", "td")
    assert run.exit_code == cli.EXIT_OK, run.output
    queued = _cli("submit", graph, "--input", '{"turns": 2}')
    assert queued.exit_code == cli.EXIT_OK, queued.output


def test_ctrl_c_at_the_persons_prompt_stops_at_once(env_prefix: str) -> None:
    """In a real terminal (a pty): the first Ctrl-C at ``Candidate:`` ends the
    command with 130 and the resume hint, without waiting for Enter."""
    import pty
    import select

    pid, fd = pty.fork()
    if pid == 0:  # the child: the dialogllm command on the pty
        os.execv(DIALOGLLM, [DIALOGLLM, "run", INTERVIEW, "--topic", "Redis"])
    seen = b""

    def plain() -> bytes:
        return re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", seen)

    try:
        deadline = time.monotonic() + 60
        while b"Candidate:" not in plain() and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                seen += os.read(fd, 4096)
        assert b"Candidate:" in plain(), seen.decode(errors="replace")
        time.sleep(0.3)
        os.write(fd, b"\x03")  # Ctrl-C, once
        deadline = time.monotonic() + 15
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                with contextlib.suppress(OSError):
                    seen += os.read(fd, 4096)
        assert status is not None and os.WIFEXITED(status), "still waiting for Enter"
        assert os.WEXITSTATUS(status) == cli.EXIT_INTERRUPTED
        with contextlib.suppress(OSError):
            while select.select([fd], [], [], 0.2)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"resume" in plain(), seen.decode(errors="replace")
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
