"""The ``dialogllm`` command.

Each sub-command is a thin layer over the Python API; this module owns argument
parsing, terminal output and exit codes, nothing else.
"""

from __future__ import annotations

import typer

from dialogllm import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="dialogllm",
    help="Dialogues between LLMs and people, persisted and queued on Redis.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the installed version.

    Example: dialogllm version
    """
    typer.echo(__version__)


def main() -> None:
    """Entry point of the console script."""
    app()
