"""An asyncio Redis client per event loop, built lazily.

redis-py's asyncio connections belong to the loop that opened them; a process may run
several loops one after another (tests, ``asyncio.run`` per command). The rule: never
share one asyncio client across loops — ask this holder for the current loop's client.
Without a client or a factory, the client is built for the Redis that
:func:`dialogllm.redis.url.configured_target` names when it is first needed, so an
``LLMMetrics`` used inside a ``Worker`` given a URL writes to that URL, and nothing
starts the embedded Redis unless nothing else was configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dialogllm.redis.clients import async_client
from dialogllm.redis.url import configured_target

__all__ = ["ClientFactory", "LoopClient"]

ClientFactory = Callable[[], Any]


def _default_factory() -> Any:
    return async_client(decode=False)


class LoopClient:
    """Holds a given client, or builds one per running loop with ``factory``."""

    def __init__(self, client: Any = None, factory: ClientFactory | None = None):
        self._given = client
        self._factory = factory or _default_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._built_for: object = None
        self._client: Any = None

    def get(self) -> Any:
        """The client for the running loop."""
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        target = configured_target() if self._factory is _default_factory else None
        if self._client is None or self._loop is not loop or self._built_for != target:
            self._client = self._factory()
            self._loop = loop
            self._built_for = target
        return self._client
