"""The progress line of ``dialogllm resume`` goes on counting from the turns the
thread already has (the real ``interview`` graph and the real local model)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.dialogue.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))


def _dialogllm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIALOGLLM, *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _turns(stderr: str) -> list[int]:
    return [int(n) for n in re.findall(r"^turn (\d+) · ", stderr, re.M)]


@pytest.mark.timeout(900)
def test_resume_counts_turns_from_those_already_in_the_thread(
    env_prefix: str,
) -> None:
    first = _dialogllm(
        "run", "interview", "--topic", "Redis streams", "--questions", "1",
        "--thread", "progress-1", "--no-interactive",
    )  # fmt: skip
    assert first.returncode == 10, first.stdout + first.stderr
    assert _turns(first.stderr) == [1]  # the interviewer's question

    resumed = _dialogllm(
        "resume", "progress-1", "--answer", "An append-only log.", "--no-interactive"
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Candidate: An append-only log." in resumed.stdout
    assert _turns(resumed.stderr) == [2]  # the answer is the thread's second turn
