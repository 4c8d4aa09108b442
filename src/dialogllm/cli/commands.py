"""The ``dialogllm`` Typer app: which commands it has, in which order, and ``main``.

The commands live in :mod:`dialogllm.cli.dialogue` (run, resume, transcript, graphs,
threads), :mod:`dialogllm.cli.operations` (submit, worker, status, cancel, runs, dlq,
redis), :mod:`dialogllm.cli.crons` (cron) and :mod:`dialogllm.cli.doctor`; this
module only puts them on one app, so it is the command's table of contents
(``dialogllm --help`` lists them in this order).
"""

from __future__ import annotations

import typer

from dialogllm import __version__
from dialogllm.cli import crons, dialogue, doctor, help, operations, serve

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


# `run` and `submit` also take every field of the graph's input as an option
# (--max-turns 6): they get the options typer does not know, and their help given
# a graph lists its fields
app.command(cls=help.GraphCommand)(dialogue.run)
app.command(cls=help.GraphCommand)(operations.submit)
for _command in (
    dialogue.resume,
    dialogue.transcript,
    dialogue.graphs,
    operations.worker,
    serve.serve,
    operations.status,
    operations.cancel,
    doctor.doctor,
):
    app.command()(_command)
app.add_typer(operations.runs_app, name="runs")
app.add_typer(dialogue.threads_app, name="threads")
app.add_typer(operations.dlq_app, name="dlq")
app.add_typer(crons.cron_app, name="cron")
app.add_typer(operations.redis_app, name="redis")
help.use_plain_help(app)  # plain help, whole sentences; usage errors on one line


def main() -> None:
    """Entry point of the console script."""
    app()
