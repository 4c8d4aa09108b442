"""The ``dialogllm`` command: argument parsing, terminal output and exit codes.

Each sub-command is a thin layer over the Python API. The app and its command list:
:mod:`dialogllm.cli.commands`; the dialogue commands: :mod:`dialogllm.cli.dialogue`; the
operator's commands: :mod:`dialogllm.cli.operations`; ``dialogllm doctor`` and its
health checks: :mod:`dialogllm.cli.doctor`; the consoles, ``fail()`` and logging
set-up every command shares: :mod:`dialogllm.cli.output`; what each exit code means:
:mod:`dialogllm.cli.exit_codes` (re-exported here: ``cli.EXIT_WAITING``).
"""

from __future__ import annotations

from dialogllm.cli import exit_codes
from dialogllm.cli.commands import app, main
from dialogllm.cli.exit_codes import *  # noqa: F403  (EXIT_* and exit_code_for)

__all__ = ["app", "main", *exit_codes.__all__]
