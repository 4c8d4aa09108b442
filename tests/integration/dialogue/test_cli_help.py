"""``dialogllm --help`` and every command's help, read from the real process as a new
user reads them: real metavars (``GRAPH``, ``--topic TEXT``), flags as
``--flag/--no-flag``, whole sentences in the command list, a graph's input fields
listed by ``run GRAPH --help``, and a usage error on one ``error:`` line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer._click.core import Command  # typer 0.29 vendors click

from dialogllm.cli import app
from dialogllm.cli.help import first_sentence
from tests.integration.dialogue.conftest import ROOT

pytestmark = pytest.mark.integration

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))
#: What typer's help machinery prints when nobody chose a metavar.
PLACEHOLDERS = re.compile(r"\{\w+\}|<(bool|str|int|float|text)>|\[default: no-")


def _dialogllm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DIALOGLLM, *args],
        cwd=ROOT,  # the shipped graphs are this directory's (langgraph.json)
        env={**os.environ, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _paths(command: Command, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _paths(sub, [*path, name])
    return found


def _commands_section(text: str) -> dict[str, str]:
    """The ``Commands:`` section of a group's help: name -> its text on one line."""
    listed: dict[str, str] = {}
    name = ""
    for line in text.split("Commands:\n", 1)[1].splitlines():
        if re.match(r"^  \S", line):
            name, _, rest = line.strip().partition(" ")
            listed[name] = rest.strip()
        elif line.strip() and name:
            listed[name] += " " + line.strip()
    return listed


def test_every_help_shows_real_metavars_and_flag_pairs() -> None:
    root = typer.main.get_command(app)
    for path in _paths(root, []):
        shown = _dialogllm(*path, "--help")
        assert shown.returncode == 0, (path, shown.stderr)
        assert shown.stdout.startswith(f"Usage: {' '.join(['dialogllm', *path])} ")
        assert not PLACEHOLDERS.search(shown.stdout), (path, shown.stdout)
        assert "Usage:" not in shown.stderr, (path, shown.stderr)
    run = _dialogllm("run", "--help").stdout
    assert "Usage: dialogllm run [OPTIONS] GRAPH [--FIELD VALUE]..." in run
    assert "--interactive/--no-interactive" in run
    assert re.search(r"^  --input JSON +Input as a JSON object\.$", run, re.M)
    status = _dialogllm("status", "--help").stdout
    assert re.search(r"^  --check/--no-check +Exit 6 when", status, re.M)
    assert "[default: --no-check]" in " ".join(status.split())
    # an example is printed as written, so that it can be copied whole
    example = "Example: dialogllm status --watch      (cron/probe: dialogllm status"
    assert f"\n  {example} --check)\n" in status
    transcript = _dialogllm("transcript", "--help").stdout
    assert "Usage: dialogllm transcript [OPTIONS] THREAD" in transcript
    assert "--format, -f [json|md]" in transcript and "[default: md]" in transcript


def test_the_command_list_shows_each_first_sentence_whole() -> None:
    shown = _dialogllm("--help")
    assert shown.returncode == 0
    listed = _commands_section(shown.stdout)
    root = typer.main.get_command(app)
    assert set(listed) == set(getattr(root, "commands", {}))
    for name, command in getattr(root, "commands", {}).items():
        assert listed[name] == first_sentence(command.help), name
    assert listed["graphs"] == (
        "List the graphs this directory knows (langgraph.json, registrations), "
        "each with its input schema."
    )
    assert listed["cancel"] == "Cancel a pending or running run."
    assert "..." not in shown.stdout.split("Commands:", 1)[1]


def test_run_graph_help_lists_the_graphs_input_fields() -> None:
    for args in (["run", "debate", "--help"], ["run", "--help", "debate"]):
        shown = _dialogllm(*args)
        assert shown.returncode == 0, shown.stderr
        fields = shown.stdout.split("Fields of graph 'debate':\n", 1)[1]
        assert re.search(r"--motion TEXT +.*--topic sets it +\[required\]", fields)
        assert re.search(r"--rounds INTEGER +1 to 10 +\[default: 1\]", fields)
    submit = _dialogllm("submit", "interview", "--help").stdout
    assert re.search(r"--questions INTEGER +1 to 20 +\[default: 2\]", submit)
    directed = _dialogllm("run", "directed_dialogue", "--help").stdout
    assert "--turn-taking [round_robin|director]" in directed
    assert re.search(r"--max-turns INTEGER +1 to 40 +\[default: 4\]", directed)
    # a field the help lists is an option `run` takes (refused here before any LLM)
    refused = _dialogllm("run", "debate", "--motion", "Tabs", "--rounds", "0")
    assert refused.returncode == 2
    assert "rounds: Input should be greater than or equal to 1" in refused.stderr
    bare = " ".join(_dialogllm("run", "--help").stdout.split())
    assert "Each graph's input fields are options too; 'dialogllm run GRAPH" in bare
    assert "GRAPH --help' lists them." in bare
    assert "Fields of graph" not in bare
    unknown = _dialogllm("run", "no_such_graph", "--help")
    assert unknown.returncode == 0
    assert "unknown graph 'no_such_graph'" in unknown.stdout


def test_a_usage_error_is_one_error_line_and_exit_2() -> None:
    cases = [
        (["run"], "error: missing argument 'GRAPH' (see: dialogllm run --help)"),
        (
            ["status", "--bogus"],
            "error: no such option: --bogus (see: dialogllm status --help)",
        ),
        (["worker", "--concurrency", "x"], "error: invalid value for '--concurrency'"),
        (["nope"], "error: no such command 'nope'"),
    ]
    for args, message in cases:
        shown = _dialogllm(*args)
        assert shown.returncode == 2, (args, shown.stderr)
        assert shown.stderr.startswith(message), (args, shown.stderr)
        assert shown.stderr.count("\n") == 1, (args, shown.stderr)
        assert shown.stdout == ""
