"""The README's main-job command works from a clean checkout and a clean venv.

Copies the project's files to a temporary directory (no .venv, no .dialogllm), runs
``scripts/dialogue`` there with no DIALOGLLM_ variables (embedded Redis, local model),
then checks that a second invocation sees the first dialogue's thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


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


@pytest.mark.timeout(1500)
def test_readme_main_job_on_a_fresh_checkout(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _copy_project(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOGLLM_")}
    env["PYTHON"] = sys.executable  # the interpreter running the tests (3.11+)
    env.pop("VIRTUAL_ENV", None)
    try:
        first = subprocess.run(
            ["scripts/dialogue", "Should a small team adopt a four-day week?",
             "--thread", "readme-1", "--no-interactive"],
            cwd=project, env=env, capture_output=True, text=True, timeout=1400,
        )  # fmt: skip
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
        assert "thread readme-1" in first.stdout
        assert (project / ".venv" / "bin" / "dialogllm").exists()
        assert (project / ".dialogllm" / "redis" / "appendonlydir").exists() or any(
            (project / ".dialogllm" / "redis").glob("appendonly*")
        )

        second = subprocess.run(
            [".venv/bin/dialogllm", "threads", "list", "--json"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 0, second.stderr[-2000:]
        assert "readme-1" in {t["thread_id"] for t in json.loads(second.stdout)}
        transcript = subprocess.run(
            [".venv/bin/dialogllm", "transcript", "readme-1", "--format", "json"],
            cwd=project, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert transcript.returncode == 0, transcript.stderr[-2000:]
    finally:
        subprocess.run(
            [".venv/bin/dialogllm", "redis", "stop"],
            cwd=project, env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
