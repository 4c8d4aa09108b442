"""Exit codes of the ``dialogllm`` command: what a script can rely on.

0 done; 1 failed (or a run ended in error/dead/cancelled); 2 bad input or unknown
graph; 3 unknown thread or run, or a resume that cannot happen; 4 Redis unavailable;
5 LLM failure; 6 ``status --check`` found an alert (or ``doctor`` a failed check);
10 paused waiting for a person; 130 stopped with Ctrl-C.
"""

from __future__ import annotations

__all__ = [
    "EXIT_ALERT",
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LLM",
    "EXIT_OK",
    "EXIT_REDIS",
    "EXIT_THREAD",
    "EXIT_WAITING",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_THREAD = 3
EXIT_REDIS = 4
EXIT_LLM = 5
EXIT_ALERT = 6
EXIT_WAITING = 10
EXIT_INTERRUPTED = 130
