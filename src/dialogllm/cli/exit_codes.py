"""Exit codes of the ``dialogllm`` command: what a script can rely on.

0 done; 1 failed (or a run ended in error/dead/cancelled); 2 bad input, unknown
graph or bad settings (a ``DIALOGLLM_*`` variable, an option out of range); 3
unknown thread, run or cron, or a resume that cannot happen; 4 Redis unavailable (or
refusing the credentials);
5 LLM failure; 6 ``status --check`` found an alert (or ``doctor`` a failed check);
10 paused waiting for a person; 130 stopped with Ctrl-C.
"""

from __future__ import annotations

from dialogllm.errors import (
    ConfigError,
    CronNotFoundError,
    GraphNotFoundError,
    InputValidationError,
    LLMError,
    PayloadTooLargeError,
    RedisAuthError,
    RedisUnavailableError,
    ResumeError,
    RunNotFoundError,
    ThreadBusyError,
    ThreadNotFoundError,
)

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
    "exit_code_for",
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


def exit_code_for(exc: BaseException) -> int:
    """The exit code a command ends with when ``exc`` stops it.

    >>> exit_code_for(GraphNotFoundError("no graph 'x'"))
    2
    """
    # Bad settings are a usage error as much as bad input: the user fixes a variable.
    bad_input = (
        GraphNotFoundError
        | InputValidationError
        | ThreadBusyError
        | PayloadTooLargeError
        | ConfigError
    )
    if isinstance(exc, bad_input):
        return EXIT_BAD_INPUT
    if isinstance(
        exc, ThreadNotFoundError | ResumeError | RunNotFoundError | CronNotFoundError
    ):
        return EXIT_THREAD
    if isinstance(exc, RedisUnavailableError | RedisAuthError):
        return EXIT_REDIS
    if isinstance(exc, LLMError):
        return EXIT_LLM
    return EXIT_FAILED
