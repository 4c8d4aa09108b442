"""Every example docs/cli.md shows, run as a real ``dialogllm`` process against the
tests' Redis (a key prefix of this module's own) with a real worker and the real local
model, and checked against what the page says the command does.

Each documented command is written here as the page writes it and run through a
shell as it stands (``> dialogue.json`` included); placeholders (``RUN_ID``,
``4f1c...``) become a real run or thread made for the check, and a dialogue gets a
small length (``--max-turns 2``) because the local model is slow on a CPU. The
commands docs/cli.md shares with the README's "Running at scale" block are run by
the fresh-machine test (:data:`test_fresh_machine.COVERS`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REDIS_URL, delete_prefix
from tests.integration.readme.documented import ROOT, cli_doc_commands
from tests.integration.readme.test_fresh_machine import COVERS as FRESH_MACHINE

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))
FLEET = ROOT / "tests" / "integration" / "ops" / "fleet_graph.py"


@dataclass
class Docs:
    """Where the documented commands run: a directory with the shipped graphs
    (langgraph.json), the environment, and the runs and threads made for them."""

    cwd: Path
    env: dict[str, str]
    made: dict[str, Any] = field(default_factory=dict)

    def doc(
        self, command: str, *extra: str, **placeholders: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` as documented (placeholders filled in, ``extra``
        arguments appended before any redirection) through a shell."""
        for name, value in placeholders.items():
            command = command.replace(name, shlex.quote(value))
        line, redirect, target = command.partition(" > ")
        line = " ".join([line, *map(shlex.quote, extra)])
        assert line.startswith("dialogllm "), line
        line = shlex.quote(DIALOGLLM) + line[len("dialogllm") :]
        if redirect:
            line += f" > {target}"
        return subprocess.run(
            line, shell=True, cwd=self.cwd, env=self.env,
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A set-up command (not one under test)."""
        return subprocess.run(
            [DIALOGLLM, *args], cwd=self.cwd, env=self.env,
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip

    def json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    def dead_run(self) -> str:
        """A run of a graph that always fails, once it is dead-lettered."""
        thread = f"dead-{uuid.uuid4().hex[:8]}"
        done = self.cli("submit", f"{FLEET}:broken", "--thread", thread, "--wait",
                        "--timeout", "120")  # fmt: skip
        assert done.returncode == 1, done.stdout + done.stderr
        runs = self.json("runs", "list", "--thread", thread)
        assert runs[0]["status"] == "dead", runs
        return str(runs[0]["run_id"])

    def finished_run(self, thread: str) -> str:
        queued = self.json(
            "submit", f"{FLEET}:counting", "--thread", thread,
            "--input", '{"turns": 2}', "--wait", "--timeout", "120",
        )  # fmt: skip
        assert queued["status"] == "success", queued
        return str(queued["run_id"])

    def waiting_interview(self) -> str:
        """A thread of the real ``interview`` graph waiting for the candidate."""
        if "interview" not in self.made:
            thread = f"iv-{uuid.uuid4().hex[:8]}"
            first = self.cli("run", "interview", "--topic", "Testing legacy code",
                             "--questions", "1", "--thread", thread,
                             "--no-interactive")  # fmt: skip
            assert first.returncode == 10, first.stdout + first.stderr
            self.made["interview"] = thread
        return str(self.made["interview"])


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docs]:
    here = tmp_path_factory.mktemp("documented")
    shutil.copy2(ROOT / "langgraph.json", here / "langgraph.json")
    shutil.copytree(ROOT / "graphs", here / "graphs")
    prefix = f"test-docs-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOGLLM_")}
    env.update(
        DIALOGLLM_REDIS_URL=REDIS_URL,
        DIALOGLLM_KEY_PREFIX=prefix,
        DIALOGLLM_DATA_DIR=str(here / "data"),
        COLUMNS="120",
    )
    worker = subprocess.Popen(
        [DIALOGLLM, "worker", "--concurrency", "2", "--grace", "1"],
        cwd=here, env=env, stdout=subprocess.DEVNULL,
        stderr=(here / "worker.log").open("w"),
    )  # fmt: skip
    try:
        yield Docs(cwd=here, env=env)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        subprocess.run([DIALOGLLM, "redis", "stop"], cwd=here, env=env,
                       capture_output=True, timeout=60, check=False)  # fmt: skip
        delete_prefix(REDIS_URL, prefix)


def _cancel(docs: Docs, command: str) -> None:
    # "Cancel a pending or running run."
    queued = docs.json("submit", f"{FLEET}:counting", "--delay", "600")
    done = docs.doc(command, RUN_ID=queued["run_id"])
    assert done.returncode == 0, done.stderr
    shown = docs.json("runs", "show", queued["run_id"])
    assert shown["run"]["status"] == "cancelled", shown


def _cron_add(docs: Docs, command: str) -> None:
    # "Add a cron: a run of a graph at every tick of a schedule."
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    cron_id = done.stdout.split()[1].rstrip(":")
    [cron] = [c for c in docs.json("cron", "list") if c["cron_id"] == cron_id]
    assert (cron["spec"]["graph"], cron["spec"]["schedule"]) == ("debate", "0 9 * * *")
    assert cron["spec"]["input"] == '{"motion":"Tea?"}'
    assert docs.cli("cron", "delete", cron_id).returncode == 0


def _cron_list(docs: Docs, command: str) -> None:
    # "List the crons, newest first."
    added = docs.json("cron", "add", "debate", "30 8 * * 1", "--input",
                      '{"motion": "Tabs?"}')  # fmt: skip
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    assert added["cron_id"] in done.stdout and "30 8 * * 1" in done.stdout
    assert docs.cli("cron", "delete", added["cron_id"]).returncode == 0


def _cron_delete(docs: Docs, command: str) -> None:
    # "Delete a cron; runs it queued already go on."
    added = docs.json("cron", "add", "debate", "30 8 * * 1", "--input",
                      '{"motion": "Tabs?"}')  # fmt: skip
    done = docs.doc(command, CRON_ID=added["cron_id"])
    assert done.returncode == 0, done.stderr
    assert added["cron_id"] not in [c["cron_id"] for c in docs.json("cron", "list")]
    again = docs.doc(command, CRON_ID=added["cron_id"])
    assert again.returncode == 3, again.stderr


def _dlq_list(docs: Docs, command: str) -> None:
    # "Dead-lettered runs with their reason."
    run_id = docs.dead_run()
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    # the whole id on one line (it is copied into `dlq retry RUN_ID`), the reason
    row = next(line for line in done.stdout.splitlines() if run_id in line)
    assert "failed 3 times" in row, done.stdout
    assert "BrokenNode" in " ".join(done.stdout.split()), done.stdout


def _dlq_purge(docs: Docs, command: str) -> None:
    # "Empty the dead-letter stream (the runs' records expire on their own)."
    run_id = docs.dead_run()
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    assert docs.json("dlq", "list") == []
    assert docs.json("runs", "show", run_id)["run"]["status"] == "dead"


def _dlq_retry(docs: Docs, command: str) -> None:
    # "Queue a dead run again."
    run_id = docs.dead_run()
    before = docs.json("runs", "show", run_id)["run"]["started_at"]
    done = docs.doc(command, RUN_ID=run_id)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"run {run_id}: pending\n"
    # a worker takes it again (and, the graph being broken, it dies again)
    deadline = time.monotonic() + 60
    while docs.json("runs", "show", run_id)["run"]["started_at"] == before:
        assert time.monotonic() < deadline, docs.json("runs", "show", run_id)
        time.sleep(0.5)


def _doctor_deep(docs: Docs, command: str) -> None:
    # "Check Redis (version, persistence, eviction), the LLM endpoint, the local
    # model." --deep: "Also load the local model."
    done = docs.doc(command)
    assert done.returncode in (0, 6), done.stdout + done.stderr
    checks = {
        line.split()[1].rstrip(":"): line.split()[0]
        for line in done.stdout.splitlines()
    }
    assert checks["redis.reachable"] == "ok" and checks["redis.version"] == "ok"
    assert "redis.persistence" in checks and "redis.memory_policy" in checks
    loaded = [name for name in checks if name.startswith("llm.")]
    assert loaded and all(checks[name] == "ok" for name in loaded), done.stdout
    assert "loads and answers" in done.stdout  # --deep: the model was loaded


def _graphs_json(docs: Docs, command: str) -> None:
    # "List the graphs this directory knows (langgraph.json, registrations), each
    # with its input schema."
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    listed = {g["name"]: g for g in json.loads(done.stdout)}
    assert {"debate", "directed_dialogue", "interview"} <= set(listed)
    assert listed["debate"]["input_schema"]["required"] == ["motion"]
    assert listed["debate"]["ref"] == "./graphs/debate.py:graph"


def _redis(docs: Docs, command: str) -> None:
    # start: "Start the embedded Redis (data dir's)."; status: "Whether the
    # embedded Redis runs."; stop: "Stop the embedded Redis (AOF flushed)."
    action = command.split()[-1]
    if action != "start":
        assert docs.cli("redis", "start").returncode == 0
    done = docs.doc(command)
    assert done.returncode == 0, done.stdout + done.stderr
    data = Path(docs.env["DIALOGLLM_DATA_DIR"]) / "redis"
    status = docs.cli("redis", "status", "--json")
    if action == "stop":
        assert status.returncode == 1, status.stdout
        assert any(data.glob("appendonly*")), list(data.iterdir())
        return
    assert status.returncode == 0 and json.loads(status.stdout)["running"]
    assert "running" in done.stdout.lower(), done.stdout
    docs.cli("redis", "stop")


def _resume(docs: Docs, command: str) -> None:
    # "Continue a thread after a crash, Ctrl-C, or with a person's answer."
    thread = docs.waiting_interview()
    done = docs.doc(command, "--no-interactive", **{"4f1c...": thread})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Candidate: I would start with the tests." in done.stdout
    assert done.stdout.rstrip().endswith(f"transcript {thread} --format md")


def _run(docs: Docs, command: str) -> None:
    # "Run a dialogue graph, streaming each turn as it happens."
    done = docs.doc(command, "--max-turns", "2", "--no-interactive")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    thread = lines[0].removeprefix("thread ")
    assert re.fullmatch(r"[0-9a-f]{32}", thread), lines[0]
    assert any(re.match(r"^\w[\w ]*: \S", line) for line in lines[1:-1]), lines
    assert lines[-1].endswith(f"transcript {thread} --format md"), lines[-1]
    saved = docs.json("threads", "show", thread)
    assert saved["metadata"]["step"] >= 2 and "topic" in saved["channels"]


def _runs_list(docs: Docs, command: str) -> None:
    # "List runs, newest first." (--status dead: only the dead ones)
    run_id = docs.dead_run()
    ok = docs.finished_run(f"ok-{uuid.uuid4().hex[:8]}")
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    assert run_id in done.stdout and ok not in done.stdout
    assert "dead" in done.stdout


def _runs_show(docs: Docs, command: str) -> None:
    # "A run's record and its events."
    thread = f"show-{uuid.uuid4().hex[:8]}"
    run_id = docs.finished_run(thread)
    done = docs.doc(command, RUN_ID=run_id)
    assert done.returncode == 0, done.stderr
    assert run_id in done.stdout and thread in done.stdout
    assert "success" in done.stdout
    assert re.search(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d", done.stdout), done.stdout


def _serve(docs: Docs, command: str) -> None:
    # "Serve LangGraph's HTTP API (langgraph-sdk, RemoteGraph, agent UIs)." The page's
    # port may be taken on this machine: the same command on a free one.
    import httpx
    from langgraph_sdk import get_sync_client

    from tests.integration.server.conftest import free_port

    port = free_port()
    line = command.replace("--port 2024", f"--port {port}")
    assert line != command, command
    args = [DIALOGLLM, *shlex.split(line)[1:]]
    server = subprocess.Popen(
        args, cwd=docs.cwd, env=docs.env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        found = get_sync_client(url=url).assistants.search()
        assert {a["graph_id"] for a in found} == {
            "debate", "directed_dialogue", "interview"
        }  # fmt: skip
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert f"at {url}" in err and f"{url}/docs" in err


def _threads_show(docs: Docs, command: str) -> None:
    # "A thread's latest checkpoint, channels and history length."
    docs.finished_run("t-42")
    done = docs.doc(command)
    assert done.returncode == 0, done.stderr
    shown = {
        key.strip(): value.strip()
        for key, _, value in (line.partition(":") for line in done.stdout.splitlines())
    }
    assert shown["thread_id"] == "t-42"
    assert int(shown["checkpoints"]) >= 3 and "log" in shown["channels"]


def _transcript(docs: Docs, command: str) -> None:
    # "Print a thread's transcript as Markdown or JSON." (> dialogue.json)
    thread = docs.waiting_interview()
    (docs.cwd / "dialogue.json").unlink(missing_ok=True)
    done = docs.doc(command, **{"4f1c...": thread})
    assert done.returncode == 0, done.stderr
    saved = json.loads((docs.cwd / "dialogue.json").read_text())
    assert saved["thread_id"] == thread and saved["graph"] == "interview"
    assert saved["entries"][0]["speaker"] == "Interviewer"


def _version(docs: Docs, command: str) -> None:
    # "Print the installed version."
    from dialogllm import __version__

    done = docs.doc(command)
    assert (done.returncode, done.stdout) == (0, f"{__version__}\n")


CHECKS: dict[str, Callable[[Docs, str], None]] = {
    "dialogllm cancel RUN_ID": _cancel,
    'dialogllm cron add debate "0 9 * * *" --input \'{"motion": "Tea?"}\'': _cron_add,
    "dialogllm cron delete CRON_ID": _cron_delete,
    "dialogllm cron list": _cron_list,
    "dialogllm dlq list": _dlq_list,
    "dialogllm dlq purge --yes": _dlq_purge,
    "dialogllm dlq retry RUN_ID": _dlq_retry,
    "dialogllm doctor --deep": _doctor_deep,
    "dialogllm graphs --json": _graphs_json,
    "dialogllm redis start": _redis,
    "dialogllm redis status": _redis,
    "dialogllm redis stop": _redis,
    'dialogllm resume 4f1c... --answer "I would start with the tests."': _resume,
    'dialogllm run directed_dialogue --topic "Should we rewrite it in Rust?"': _run,
    "dialogllm runs list --status dead": _runs_list,
    "dialogllm runs show RUN_ID": _runs_show,
    "dialogllm serve --port 2024": _serve,
    "dialogllm threads show t-42": _threads_show,
    "dialogllm transcript 4f1c... --format json > dialogue.json": _transcript,
    "dialogllm version": _version,
}


def test_every_command_docs_cli_shows_has_a_check() -> None:
    documented = set(cli_doc_commands())
    assert documented - set(CHECKS) - FRESH_MACHINE == set(), "add a check here"
    assert set(CHECKS) - documented == set(), "a check for a command not documented"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("command", list(CHECKS))
def test_documented_command_does_what_the_page_says(docs: Docs, command: str) -> None:
    CHECKS[command](docs, command)
