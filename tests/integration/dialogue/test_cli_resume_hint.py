"""``dialogllm resume`` on a thread waiting for a person, with no answer and no
terminal, names the option that gives the answer."""

from __future__ import annotations

from typer.testing import CliRunner

from dialogllm import cli
from tests.integration.dialogue.conftest import SCRIPTED


def test_resume_without_an_answer_names_the_answer_option(env_prefix: str) -> None:
    runner = CliRunner()
    interview = f"{SCRIPTED}:scripted_interview"
    first = runner.invoke(
        cli.app, ["run", interview, "--topic", "Redis", "--thread", "h"]
    )
    assert first.exit_code == cli.EXIT_WAITING, first.output
    again = runner.invoke(cli.app, ["resume", "h"])
    assert again.exit_code == cli.EXIT_THREAD, again.output
    assert "waiting for an answer from Candidate" in again.output
    assert 'dialogllm resume h --answer "..."' in again.output
