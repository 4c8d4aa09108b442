"""Exit codes: what a script can rely on (see dialogllm.cli.exit_codes)."""

from __future__ import annotations


def test_every_error_maps_to_the_documented_exit_code() -> None:
    from dialogllm.cli.exit_codes import exit_code_for
    from dialogllm.errors import (
        GraphNotFoundError,
        LLMError,
        RedisUnavailableError,
        ResumeError,
        RunNotFoundError,
        ThreadBusyError,
    )

    assert exit_code_for(GraphNotFoundError("x")) == 2
    assert exit_code_for(ThreadBusyError("x")) == 2
    assert exit_code_for(ResumeError("x")) == 3
    assert exit_code_for(RunNotFoundError("x")) == 3
    assert exit_code_for(RedisUnavailableError("x")) == 4
    assert exit_code_for(LLMError("x")) == 5
    assert exit_code_for(RuntimeError("x")) == 1
