"""The ``dialogllm`` Typer app: which commands it has, in which order, and ``main``.

The commands themselves live in :mod:`dialogllm.cli.dialogue` (run, resume,
transcript, graphs) and :mod:`dialogllm.cli.operations` (queue, workers, fleet,
Redis); this module only puts them on one app, so it is the command's table of
contents.
"""

from __future__ import annotations

import typer

from dialogllm import __version__
from dialogllm.cli import dialogue, operations

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


for _command in (dialogue.run, dialogue.resume, dialogue.transcript, dialogue.graphs):
    app.command()(_command)
operations.register(app)


def main() -> None:
    """Entry point of the console script."""
    app()
