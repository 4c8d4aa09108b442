"""``dialogllm``'s failure messages are plain text: rich markup in them (from a user's
argument, an id, an error) is printed as it is, and the exit code stays the one the
failure calls for."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dialogllm import cli


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["submit", "any_graph", "--multitask", "[/x]"], "unknown --multitask '[/x]'"),
        (
            ["submit", "any_graph", "--multitask", "[bold]b"],
            "unknown --multitask '[bold]b'",
        ),
    ],
)
def test_a_failure_message_is_printed_literally(args: list[str], shown: str) -> None:
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == cli.EXIT_BAD_INPUT, result.exception
    assert f"error: {shown}" in result.output
