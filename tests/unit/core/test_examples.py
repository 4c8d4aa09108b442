"""The examples run as written (here with a scripted model and memory saver; the
integration suite runs them unchanged against Redis and the local model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests.unit.core.conftest import said, scripted

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_two_personas_example_takes_turns(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = _load("two_personas")
    model = scripted(*(said(f"line {i}") for i in range(4)))
    await example.main(checkpointer=InMemorySaver(), chat_model=model)
    printed = capsys.readouterr().out.splitlines()
    assert [line for line in printed if line.startswith(("Ada:", "Bo:"))] == [
        "Ada: line 0",
        "Bo: line 1",
        "Ada: line 2",
        "Bo: line 3",
    ]


async def test_resume_interview_example_answers_each_question(
    capsys: pytest.CaptureFixture[str],
) -> None:
    example = _load("resume_interview")
    model = scripted(said("What do you monitor?"), said("And backups?"))
    await example.main(
        ("Memory.", "Nightly."), checkpointer=InMemorySaver(), chat_model=model
    )
    printed = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("Interviewer:", "Candidate:", "done:"))
    ]
    assert printed[:4] == [
        "Interviewer: What do you monitor?",
        "Candidate: Memory.",
        "Interviewer: And backups?",
        "Candidate: Nightly.",
    ]
    assert printed[4].startswith("done: 4 turns (")
