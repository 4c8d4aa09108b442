"""Write docs/cli.md from the ``dialogllm`` command's own help (the single source).

``python scripts/gen_cli_docs.py`` rewrites the page; the suite fails when it is stale
(``tests/unit/test_generated_docs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer._click.core import Command, Context  # typer 0.29 vendors click

from dialogllm.cli import app
from dialogllm.cli.exit_codes import __doc__ as EXIT_CODES

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _walk(command: Command, path: list[str]) -> list[tuple[list[str], Command]]:
    out = [(path, command)]
    if hasattr(command, "commands"):
        for name in sorted(command.commands):
            out += _walk(command.commands[name], [*path, name])
    return out


def _usage(command: Command, path: list[str]) -> str:
    ctx = Context(command, info_name=" ".join(path))
    pieces = [" ".join(path)]
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            pieces.append(str(param.name).upper())
    if any(p.param_type_name == "option" for p in command.get_params(ctx)):
        pieces.append("[OPTIONS]")
    return " ".join(pieces)


def render() -> str:
    """The page's full text."""
    root = typer.main.get_command(app)
    lines = [
        "# CLI reference",
        "",
        "Generated from the command's help by `scripts/gen_cli_docs.py`. Every",
        "command takes `--help`; most take `--json` for scripts.",
        "",
        "## Exit codes",
        "",
        (EXIT_CODES or "").strip(),
    ]
    for path, command in _walk(root, ["dialogllm"]):
        if len(path) == 1:
            continue
        ctx = Context(command, info_name=" ".join(path))
        lines += ["", f"## `{' '.join(path)}`", "", (command.help or "").strip(), ""]
        lines += ["```", _usage(command, path), "```"]
        options = [
            p
            for p in command.get_params(ctx)
            if p.param_type_name == "option" and getattr(p, "help", None)
        ]
        if options:
            lines += ["", "| option | meaning |", "| --- | --- |"]
            for option in options:
                opts = list(option.opts) + list(getattr(option, "secondary_opts", []))
                names = ", ".join(f"`{o}`" for o in opts)
                lines.append(f"| {names} | {getattr(option, 'help', '')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
