"""Each shipped graph end to end against the real local model and the real Redis:
the transcript has the turns, the typed replies validate, termination fires. Kept
short (few turns, small max_tokens) so the suite stays fast on two cores."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.core import DialogueRunner, GraphRegistry
from dialogllm.models import Transcript
from tests.integration.dialogue.conftest import ROOT

# One event loop for the module: the LLM layer reuses one HTTP client per role.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.asyncio(loop_scope="module"),
]


def _graph_module(name: str) -> Any:
    """The shipped graph's module, loaded the way the registry loads it."""
    found = GraphRegistry().resolve(f"{ROOT / 'graphs' / name}.py:graph")
    for module in list(sys.modules.values()):
        if getattr(module, "graph", None) is found.graph:
            return module
    raise LookupError(f"module of graph {name!r} not loaded")


@pytest_asyncio.fixture(loop_scope="module")
async def runner(redis_url: str, env_prefix: str) -> AsyncIterator[DialogueRunner]:
    async with (
        AsyncRedisSaver.from_conn_string(redis_url, key_prefix=env_prefix) as saver,
        DialogueRunner(saver) as r,
    ):
        yield r


def _assert_readable(transcript: Transcript) -> None:
    for entry in transcript.entries:
        assert entry.text.strip(), entry
        assert entry.model or entry.kind == "human", entry
    for turn in transcript.turns:
        assert turn.completion_tokens > 0 or turn.kind == "human"


async def test_debate_with_the_local_model(runner: DialogueRunner) -> None:
    debate = _graph_module("debate")
    graph = debate.build_graph(max_tokens=48)
    result = await runner.run(graph, {"motion": "Cities should ban cars", "rounds": 1})
    assert result.status == "done"
    assert [e.speaker for e in result.transcript.turns] == ["Proposition", "Opposition"]
    verdict = debate.Verdict.model_validate(result.values["verdict"])
    assert verdict.winner in ("Proposition", "Opposition")
    assert result.values["stop_reason"] == "2 turns argued"
    _assert_readable(result.transcript)


async def test_interview_with_the_local_model(runner: DialogueRunner) -> None:
    interview = _graph_module("interview")
    graph = interview.build_graph(max_tokens=32)
    first = await runner.run(graph, {"topic": "Running Redis", "questions": 1})
    assert first.status == "interrupted" and first.request is not None
    assert first.request.prompt.strip()
    done = await runner.resume(first.thread_id, "I keep AOF on and watch memory.")
    assert done.status == "done"
    assert [e.kind for e in done.transcript.turns] == ["persona", "human"]
    _assert_readable(done.transcript)


async def test_directed_dialogue_with_the_local_model(runner: DialogueRunner) -> None:
    directed = _graph_module("directed_dialogue")
    graph = directed.build_graph(max_tokens=64)
    result = await runner.run(
        graph, {"topic": "Should towns keep libraries?", "max_turns": 2}
    )
    assert result.status == "done"
    values = result.values
    assert len(values["personas"]) == 2
    assert len(result.transcript.turns) == 2
    reason = values["stop_reason"]
    assert any(
        fired in reason
        for fired in ("reached 2 turns", "the judge decided", "ended the dialogue")
    ), reason
    assert values["conclusion"].strip()
    directed.Analysis.model_validate(values["analysis"])
    _assert_readable(result.transcript)


def _run_example(
    name: str, redis_url: str, prefix: str
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>.py`` as written, on the test's Redis and key prefix."""
    env = {
        **os.environ,
        "DIALOGLLM_REDIS_URL": redis_url,
        "DIALOGLLM_KEY_PREFIX": prefix,
    }
    done = subprocess.run(  # blocking on purpose: nothing else runs meanwhile
        [sys.executable, f"examples/{name}.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


async def test_the_two_personas_example_runs_as_written(
    redis_url: str, env_prefix: str
) -> None:
    done = _run_example("two_personas", redis_url, env_prefix)
    lines = [
        line for line in done.stdout.splitlines() if line.startswith(("Ada:", "Bo:"))
    ]
    assert [line.split(":", 1)[0] for line in lines] == ["Ada", "Bo", "Ada", "Bo"]
    assert all(line.split(":", 1)[1].strip() for line in lines)


async def test_the_resume_interview_example_runs_as_written(
    redis_url: str, env_prefix: str
) -> None:
    done = _run_example("resume_interview", redis_url, env_prefix)
    lines = [
        line
        for line in done.stdout.splitlines()
        if line.startswith(("Interviewer:", "Candidate:", "done:"))
    ]
    assert [line.split(":", 1)[0] for line in lines] == [
        "Interviewer",
        "Candidate",
        "Interviewer",
        "Candidate",
        "done",
    ]
