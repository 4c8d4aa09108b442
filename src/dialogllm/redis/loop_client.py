"""An asyncio Redis client per event loop, built lazily (internal helper).

redis-py's asyncio connections belong to the loop that opened them; a process may run
several loops one after another (tests, ``asyncio.run`` per command). The rule: never
share one asyncio client across loops — ask this holder for the current loop's client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

__all__ = ["ClientFactory", "LoopClient"]

ClientFactory = Callable[[], Any]


def _default_factory() -> Any:
    from dialogllm.connect import async_client

    return async_client()


class LoopClient:
    """Holds a given client, or builds one per running loop with ``factory``."""

    def __init__(self, client: Any = None, factory: ClientFactory | None = None):
        self._given = client
        self._factory = factory or _default_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    def get(self) -> Any:
        """The client for the running loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = self._factory()
            self._loop = loop
        return self._client
