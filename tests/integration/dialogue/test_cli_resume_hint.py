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


def test_hints_name_the_command_as_it_can_be_typed(env_prefix: str) -> None:
    """After the README's commands ``dialogllm`` is not on the PATH: hints print
    the path that works; with the virtual environment active, the bare name."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.integration.dialogue.conftest import ROOT

    venv_bin = Path(sys.executable).parent
    chat = [f"{SCRIPTED}:slow_chat", "--topic", "tea", "--input", '{"turns": 2}']
    bare_path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != venv_bin
    )
    by_path = subprocess.run(
        [str(venv_bin / "dialogllm"), "run", *chat],
        cwd=ROOT,
        env={**os.environ, "PATH": bare_path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert by_path.returncode == 0, by_path.stderr
    shown = os.path.relpath(venv_bin / "dialogllm", ROOT)
    assert f"transcript: {shown} transcript " in by_path.stdout
    active = subprocess.run(
        ["dialogllm", "run", *chat],
        cwd=ROOT,
        env={**os.environ, "PATH": f"{venv_bin}{os.pathsep}{bare_path}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert active.returncode == 0, active.stderr
    assert "transcript: dialogllm transcript " in active.stdout


def test_threads_list_shows_graph_and_topic(env_prefix: str) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli.app,
        ["run", f"{SCRIPTED}:slow_chat", "--topic", "tea", "--thread", "listed"],
    )
    assert made.exit_code == cli.EXIT_OK, made.output
    listed = runner.invoke(cli.app, ["threads", "list", "--json"])
    assert listed.exit_code == cli.EXIT_OK, listed.output
    import json

    (row,) = [r for r in json.loads(listed.output) if r["thread_id"] == "listed"]
    assert row["topic"] == "tea" and row["graph"] and row["step"] is not None
    text = runner.invoke(cli.app, ["threads", "list"])
    assert "listed" in text.output and "tea" in text.output


def test_every_input_field_is_an_option(env_prefix: str) -> None:
    runner = CliRunner()
    chat = f"{SCRIPTED}:slow_chat"
    three = runner.invoke(cli.app, ["run", chat, "--topic", "tea", "--turns", "3"])
    assert three.exit_code == cli.EXIT_OK, three.output
    assert "turn 3" in three.output and "turn 4" not in three.output
    equals = runner.invoke(cli.app, ["run", chat, "--topic", "tea", "--turns=1"])
    assert equals.exit_code == cli.EXIT_OK and "turn 2" not in equals.output

    unknown = runner.invoke(
        cli.app, ["run", "debate", "--topic", "Tabs?", "--nope", "1"]
    )
    assert unknown.exit_code == cli.EXIT_BAD_INPUT
    assert "no option '--nope' for graph 'debate'" in unknown.output
    assert "--rounds" in unknown.output
    both = ["--input", '{"rounds": 2}', "--rounds", "3"]
    clash = runner.invoke(cli.app, ["run", "debate", "--topic", "Tabs?", *both])
    assert clash.exit_code == cli.EXIT_BAD_INPUT and "give one of them" in clash.output
    bad = runner.invoke(
        cli.app, ["submit", "debate", "--topic", "Tabs or spaces?", "--rounds", "many"]
    )
    assert bad.exit_code == cli.EXIT_BAD_INPUT and "rounds" in bad.output
