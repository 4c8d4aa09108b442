"""The blocking methods of an async-first object, run on the event loop it was made on.

LangGraph calls a checkpointer's or a store's sync methods (``get_tuple``, ``batch``)
from sync nodes, which run in worker threads while the graph's event loop runs
elsewhere. :class:`LoopBridge` notes the loop an object was created on and runs a
coroutine there from any other thread; called on that loop's own thread (where it
would deadlock) or with no loop, it raises the caller's error type, saying what to
use instead.

>>> bridge = LoopBridge(store, "aget, aput, asearch", StoreError)  # in AsyncRedisStore
>>> bridge.run(store.aget(("users",), "ada"))                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopBridge"]

T = TypeVar("T")


class LoopBridge:
    """Runs coroutines on the event loop running when it was made (if any).

    Args:
        owner: the async object (``AsyncRedisSaver``), named in error messages with
            its sync twin (the class name without ``Async``).
        async_methods: the async methods to use on the loop's own thread.
        error: the exception type raised when a coroutine cannot be run.
    """

    def __init__(
        self, owner: object, async_methods: str, error: type[Exception]
    ) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.owner = type(owner).__name__
        self.twin = self.owner.removeprefix("Async")
        self.async_methods = async_methods
        self.error = error

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it is done."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coro.close()
            raise self.error(
                f"{self.owner}'s sync methods run on the event loop it was created "
                f"in, and it has none; use {self.twin} in sync code"
            )
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise self.error(
                f"a sync method of {self.owner} was called on its own event loop "
                f"thread; use the async method ({self.async_methods}, ...) instead"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
