"""What every ``dialogllm`` command shares: its two consoles, failing with an exit
code, the logging set-up, running a command's work so errors become exit codes, and
reading and printing JSON.

Results go to :data:`out` (stdout), messages and progress to :data:`err` (stderr).
Commands reach both through this module (``output.err.print(...)``), so there is one
pair and a test can swap either.

>>> from dialogllm.cli import output
>>> output.fail(2, "unknown --status '[/x]'")   # doctest: +SKIP
error: unknown --status '[/x]'
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dialogllm import event_loop
from dialogllm.cli.exit_codes import EXIT_BAD_INPUT, EXIT_INTERRUPTED, exit_code_for
from dialogllm.errors import DialogueLLMError

__all__ = [
    "JsonOpt",
    "err",
    "fail",
    "guard",
    "out",
    "parse_json_object",
    "print_json",
    "print_table",
    "run_async",
    "setup_logging",
    "stop",
]

T = TypeVar("T")

#: Results: what a script reads (``--json`` output, transcripts, tables).
out = Console(highlight=False, soft_wrap=True)
#: Errors, notices and the live progress line.
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def command() -> str:
    """How the person can call this command again, for hints: ``dialogllm`` when
    that name on the PATH is this program, else the path it was started by
    (``.venv/bin/dialogllm`` after the README's commands, before activating the
    virtual environment)."""
    invoked = Path(sys.argv[0])
    if invoked.name != "dialogllm":
        return "dialogllm"
    on_path = shutil.which("dialogllm")
    if on_path and Path(on_path).resolve() == invoked.resolve():
        return "dialogllm"
    shown = os.path.relpath(invoked.resolve())
    return shown if not shown.startswith("..") else str(invoked.resolve())


def fail(code: int, message: str) -> NoReturn:
    """Print ``error: message`` on stderr and end the command with ``code``.

    ``message`` is plain text, never markup: a ``[/x]`` in it (from a user's argument,
    a thread id, an error from Redis) is printed as it is.
    """
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
    raise typer.Exit(code)


def stop(notice: str | None = "stopped") -> NoReturn:
    """End the command after a Ctrl-C (exit 130), printing ``notice`` (markup) on
    stderr unless it is ``None``."""
    if notice is not None:
        err.print(notice)
    raise typer.Exit(EXIT_INTERRUPTED)


def setup_logging() -> None:
    """Logs go to stderr (stdout is for results and ``--json``), at ``warning``
    unless ``DIALOGLLM_LOG_LEVEL`` asks for more, so the output stays readable."""
    from dialogllm.config import get_settings
    from dialogllm.logging import configure_logging

    settings = get_settings()
    level = settings.log_level if "DIALOGLLM_LOG_LEVEL" in os.environ else "warning"
    configure_logging(fmt=settings.log_format, level=level, stream=sys.stderr)


def guard(call: Callable[[], T], *, stopped: str | None = "stopped") -> T:
    """``call()``, with a :class:`~dialogllm.errors.DialogueLLMError` ending the
    command with its exit code (:func:`~dialogllm.cli.exit_codes.exit_code_for`) and
    Ctrl-C with 130 (after ``stopped``, see :func:`stop`)."""
    try:
        return call()
    except DialogueLLMError as exc:
        fail(exit_code_for(exc), str(exc))
    except KeyboardInterrupt:
        stop(stopped)


def run_async(
    main: Callable[[], Coroutine[Any, Any, T]], *, stopped: str | None = None
) -> T:
    """Set up logging, then run ``main()`` to its end under :func:`guard` (a Ctrl-C
    ends the command with 130, quietly unless ``stopped`` is given)."""
    guard(setup_logging)
    return guard(lambda: event_loop.run(main()), stopped=stopped)


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; anything else ends the command with exit 2, the
    message naming the option ``what``."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        fail(EXIT_BAD_INPUT, f"{what} is not valid JSON: {exc}")
    if not isinstance(data, dict):
        fail(EXIT_BAD_INPUT, f"{what} must be a JSON object")
    return data


def print_json(data: object) -> None:
    """Print ``data`` as indented JSON on stdout (what ``--json`` prints)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def print_table(table: Table, rows: Iterable[Sequence[object]]) -> None:
    """Print ``rows`` in ``table`` on stdout. Every cell is data, never markup: each is
    escaped, and ``None`` shows as ``—``."""
    for row in rows:
        table.add_row(*(escape("—" if cell is None else str(cell)) for cell in row))
    out.print(table)
