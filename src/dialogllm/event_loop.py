"""The event loop DialogueLLM's own processes run on.

A worker's time per run is largely the event loop's (tasks, callbacks, socket
reads): on uvloop a one-node graph through the queue takes about a tenth less CPU
per run than on asyncio's loop (``benchmarks/queue_bench.py --graph-only``). uvloop
is a dependency on Linux and macOS; elsewhere, or with ``DIALOGLLM_EVENT_LOOP=asyncio``,
asyncio's loop runs. Library code never picks a loop: only the entry points
(``dialogllm`` commands, ``python -m dialogllm.queue``, serve's worker thread) call
:func:`run`.

>>> from dialogllm.event_loop import run
>>> run(worker.run())                                     # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from dialogllm.config import get_settings

__all__ = ["loop_name", "run"]

T = TypeVar("T")


def loop_name() -> str:
    """``"uvloop"`` or ``"asyncio"``: the loop :func:`run` uses here."""
    if get_settings().event_loop == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:  # Windows, or not installed
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end on a new loop of :func:`loop_name`'s kind (as
    ``asyncio.run`` does: the loop is closed after)."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
