"""``RedisStore``: the sync twin of :class:`~dialogllm.store.aio.AsyncRedisStore`.

Same keys, same operations (:mod:`dialogllm.store.operations`), sent with a
blocking ``redis.Redis`` (or ``RedisCluster``) client. Use it in sync code
(``graph.invoke``); its ``abatch`` runs ``batch`` in a worker thread.

>>> with RedisStore.from_conn_string("redis://127.0.0.1:6379/0") as store:
...     store.put(("users", "ada"), "food", {"likes": "tea"})
...     store.get(("users", "ada"), "food").value
{'likes': 'tea'}
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.store.base import Op, Result
from redis import Redis
from redis.cluster import RedisCluster

from dialogllm.redis.clients import sync_client
from dialogllm.redis.requests import SyncSender
from dialogllm.store.base import RedisStoreBase, interval
from dialogllm.store.operations import Embed, StoreOp

__all__ = ["RedisStore"]

SyncRedisClient = Redis | RedisCluster


class RedisStore(RedisStoreBase[SyncRedisClient, SyncSender]):
    """Sync LangGraph store on plain Redis; options as ``AsyncRedisStore``.

    >>> store = RedisStore(sync_client(url), key_prefix="app1", ttl={"default_ttl": 60})
    """

    _sender_type = SyncSender
    _sweeper: threading.Thread | None = None
    _stop: threading.Event | None = None

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **options: Any
    ) -> Iterator[RedisStore]:
        """Connect to ``url``, yield a store, stop its sweeper and close the pool on
        exit (options as ``AsyncRedisStore.from_conn_string``).

        >>> with RedisStore.from_conn_string(url, index=index) as store:
        ...     ...
        """
        client = sync_client(url, decode=False, cluster=cluster)
        store = cls(client, **options)
        try:
            store.start_configured_ttl_sweeper()
            yield store
        finally:
            store.stop_ttl_sweeper()
            client.close()

    # --- driving operations -----------------------------------------------------------

    def _drive(self, op: StoreOp) -> Any:
        return self.sender.drive(op, local=self._embed_request)

    def _embed_request(self, request: Embed) -> list[list[float]]:
        return self._embed_sync(request.texts, request.query)

    # --- BaseStore --------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (gets, puts, searches, namespace listings); results in order.

        >>> store.batch([GetOp(("users", "ada"), "food")])
        [Item(...)]
        """
        results: list[Result] = self._drive(self.ops.batch(ops))
        return results

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """``batch`` in a worker thread (the client is blocking)."""
        return await asyncio.to_thread(self.batch, list(ops))

    # --- TTL --------------------------------------------------------------------------

    def sweep_ttl(self) -> int:
        """Delete every expired item now; how many were deleted.

        >>> store.sweep_ttl()
        3
        """
        deleted: int = self._drive(self.ops.sweep())
        return deleted

    async def asweep_ttl(self) -> int:
        """:meth:`sweep_ttl` in a worker thread."""
        return await asyncio.to_thread(self.sweep_ttl)

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> threading.Thread:
        """Sweep every ``sweep_interval_minutes`` (default: the ``ttl`` config's, else
        5) in a daemon thread, until :meth:`stop_ttl_sweeper`."""
        if self._sweeper is not None and self._sweeper.is_alive():
            return self._sweeper
        every = interval(sweep_interval_minutes, lambda: self.sweep_interval_s)
        stop = self._stop = threading.Event()

        def sweep_forever() -> None:
            while not stop.wait(every):
                try:
                    self.sweep_ttl()
                except Exception:  # a Redis outage: try again next interval
                    continue

        self._sweeper = threading.Thread(
            target=sweep_forever, name="dialogllm-store-sweeper", daemon=True
        )
        self._sweeper.start()
        return self._sweeper

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; ``True`` once it has stopped (or never ran)."""
        thread, self._sweeper = self._sweeper, None
        if thread is None:
            return True
        if self._stop is not None:
            self._stop.set()
        thread.join(timeout)
        return not thread.is_alive()
