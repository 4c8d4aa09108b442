"""``AsyncRedisStore``: LangGraph's long-term memory store on plain Redis, async first.

A ``BaseStore`` (``aput``/``aget``/``asearch``/``adelete``/``alist_namespaces`` and
``abatch``) for graphs compiled with ``store=``: namespaces of any depth, TTLs in
minutes with refresh on read and a sweeper, filters, and semantic search when an
embeddings index is configured (exact, or RediSearch's KNN where the server has
it). It works on any Redis 6.2+ (the embedded one included) and on Redis Cluster:
the keys of one top-level namespace share a slot (:mod:`dialogllm.store.keys`).
The operations live in :mod:`dialogllm.store.operations`; this module only sends
them.

>>> async with AsyncRedisStore.from_conn_string("redis://127.0.0.1:6379/0") as store:
...     await store.aput(("users", "ada"), "food", {"likes": "tea"})
...     (await store.aget(("users", "ada"), "food")).value
{'likes': 'tea'}
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from langgraph.store.base import Op, Result
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from dialogllm.errors import StoreError
from dialogllm.loop_bridge import LoopBridge
from dialogllm.redis.clients import async_client
from dialogllm.redis.requests import AsyncSender
from dialogllm.store.base import RedisStoreBase, interval
from dialogllm.store.operations import Embed, StoreOp

__all__ = ["AsyncRedisStore"]

AsyncRedisClient = Redis | RedisCluster


class AsyncRedisStore(RedisStoreBase[AsyncRedisClient, AsyncSender]):
    """LangGraph's ``BaseStore`` on plain Redis 6.2+ / Valkey / Redis Cluster.

    Args:
        client: a ``redis.asyncio.Redis`` or ``RedisCluster`` with
            ``decode_responses=False`` (e.g. ``dialogllm.redis.async_client(url)``).
        key_prefix: prefix of every key, so several apps share one Redis.
        index: LangGraph's ``IndexConfig`` (``dims``, ``embed``, ``fields``):
            enables ``search(query=...)``: cosine similarity (see ``vector_index``).
            ``embed`` may also be a ``"pkg.mod:attr"`` or ``"file.py:attr"``
            reference.
        ttl: LangGraph's ``TTLConfig``: ``default_ttl`` (minutes),
            ``refresh_on_read`` (default ``True``), ``sweep_interval_minutes``.
            Expired items are never returned, even before a sweep deletes them.
        max_search_candidates: the most items one search reads (the candidate set
            of filtering and exact vector ranking); more raises
            ``StoreSearchTooLargeError``.
        max_payload_bytes: refuse larger values (``StoreValueError``).
        vector_index: how a query is ranked (:mod:`dialogllm.store.vector_index`):
            ``"auto"`` (default) by RediSearch's exact ``FLAT`` KNN where the
            server has RediSearch (Redis Stack, Redis 8) and this is no Cluster,
            else exactly in the client; ``"exact"`` always in the client;
            ``"flat"`` / ``"hnsw"`` (approximate) RediSearch required.

    >>> store = AsyncRedisStore(async_client(url), index={"dims": 3, "embed": embed})
    >>> await store.asearch(("users", "ada"), query="drinks", limit=3)
    [SearchItem(...)]
    """

    _sender_type = AsyncSender
    _sweeper: asyncio.Task[None] | None = None

    def _created(self) -> None:
        self.bridge = LoopBridge(self, "aget, aput, asearch", StoreError)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **options: Any
    ) -> AsyncIterator[AsyncRedisStore]:
        """Connect to ``url``, yield a store, stop its sweeper and close the pool
        on exit (the sweeper starts when ``ttl`` has ``sweep_interval_minutes``).

        >>> async with AsyncRedisStore.from_conn_string(url, ttl={"default_ttl": 60}):
        ...     ...
        """
        client = async_client(url, decode=False, cluster=cluster)
        store = cls(client, **options)
        try:
            store.start_configured_ttl_sweeper()
            yield store
        finally:
            await store.stop_ttl_sweeper()
            await client.aclose()

    # --- driving operations -----------------------------------------------------------

    async def _drive(self, op: StoreOp) -> Any:
        return await self.sender.drive(op, local=self._embed_request)

    async def _embed_request(self, request: Embed) -> list[list[float]]:
        return await self._embed_async(request.texts, request.query)

    # --- BaseStore --------------------------------------------------------------------

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (gets, puts, searches, namespace listings); results in order.

        >>> await store.abatch([GetOp(("users", "ada"), "food")])
        [Item(...)]
        """
        results: list[Result] = await self._drive(self.ops.batch(ops))
        return results

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """The blocking ``abatch``, for sync nodes running in another thread (it
        runs on the store's event loop)."""
        return self.bridge.run(self.abatch(list(ops)))

    # --- TTL --------------------------------------------------------------------------

    async def asweep_ttl(self) -> int:
        """Delete every expired item now; how many were deleted.

        >>> await store.asweep_ttl()
        3
        """
        deleted: int = await self._drive(self.ops.sweep())
        return deleted

    def sweep_ttl(self) -> int:
        """The blocking :meth:`asweep_ttl` (from another thread than the loop's)."""
        return self.bridge.run(self.asweep_ttl())

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> asyncio.Task[None]:
        """Sweep every ``sweep_interval_minutes`` (default: the ``ttl`` config's, else
        5) in a task of the running loop, until :meth:`stop_ttl_sweeper`.

        >>> task = store.start_ttl_sweeper(1)
        """
        if self._sweeper is not None and not self._sweeper.done():
            return self._sweeper
        every = interval(sweep_interval_minutes, lambda: self.sweep_interval_s)

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(every)
                try:
                    await self.asweep_ttl()
                except Exception:  # a Redis outage: try again next interval
                    continue

        self._sweeper = asyncio.get_running_loop().create_task(sweep_forever())
        return self._sweeper

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper task; ``True`` once it has stopped (or never ran)."""
        task, self._sweeper = self._sweeper, None
        if task is None:
            return True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout)
        return task.done()
