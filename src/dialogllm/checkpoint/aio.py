"""``AsyncRedisSaver``: LangGraph's checkpointer on plain Redis, async first.

It stores blobs per (channel, version), answers ``aget_tuple``/``aput``/
``aput_writes``/``aget_delta_channel_history`` in one round trip each, keeps every key
of a thread in one Cluster slot, and refuses fenced writes (see
:mod:`dialogllm.leases`). The operations themselves live in
:mod:`dialogllm.checkpoint.operations`; this module only sends them.

>>> async with AsyncRedisSaver.from_conn_string("redis://127.0.0.1:6379/0") as saver:
...     graph = builder.compile(checkpointer=saver)           # doctest: +SKIP
...     await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}})
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from dialogllm.checkpoint import operations as req
from dialogllm.checkpoint.saver_base import RedisSaverBase
from dialogllm.errors import CheckpointError
from dialogllm.loop_bridge import LoopBridge
from dialogllm.redis.clients import async_client
from dialogllm.redis.requests import AsyncSender, RedisRequest

__all__ = ["AsyncRedisSaver"]

AsyncRedisClient = Redis | RedisCluster


class AsyncRedisSaver(RedisSaverBase[AsyncRedisClient, AsyncSender]):
    """A LangGraph checkpointer on plain Redis 6.2+ / Valkey (no modules needed).

    Args:
        client: a ``redis.asyncio.Redis`` or ``RedisCluster`` with
            ``decode_responses=False`` (values are binary; nothing is base64'd).
        key_prefix: prefix of every key, so several apps share one Redis.
        ttl: seconds after its last write at which a thread's keys expire
            (``None``: never). Per-thread overrides: :meth:`aset_thread_ttl`,
            :meth:`apin_thread`.
        refresh_on_read: reads refresh the TTL too.
        serde: serializer; default LangGraph's JSON+msgpack with no pickle fallback.
            Pass an ``EncryptedSerializer`` to encrypt values at rest.
        max_payload_bytes: refuse (``PayloadTooLargeError``) larger values.
        fencing_token: a lease token every write of this saver carries (a token in
            the config, key ``dialogllm_fence``, wins).
        compress_min_bytes: zlib-compress channel values at least this large (off by
            default: it trades CPU per step for memory; delta snapshots are always
            compressed).

    >>> saver = AsyncRedisSaver(async_client(url), key_prefix="app1", ttl=86400)
    """

    _sender_type = AsyncSender

    def _created(self) -> None:
        self.bridge = LoopBridge(self, "aget_tuple, alist, aput", CheckpointError)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **options: Any
    ) -> AsyncIterator[AsyncRedisSaver]:
        """Connect to ``url`` (``redis://``, ``rediss://``, ``unix://``), yield a saver,
        close the connection pool on exit. ``cluster=True`` uses Redis Cluster
        (default: ``DIALOGLLM_REDIS_CLUSTER``). The client retries broken connections
        with backoff (:mod:`dialogllm.redis.clients`).

        >>> async with AsyncRedisSaver.from_conn_string(url, ttl=3600) as saver:
        ...     ...
        """
        client = async_client(url, decode=False, cluster=cluster)
        try:
            yield cls(client, **options)
        finally:
            await client.aclose()

    # --- driving operations -------------------------------------------------------

    async def _drive(self, op: req.Op) -> Any:
        return await self.sender.drive(op)

    # --- BaseCheckpointSaver: async -----------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the latest when it has no id)."""
        result: CheckpointTuple | None = await self._drive(self.ops.get_tuple(config))
        return result

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first; ``before``/``limit`` use the sorted index.

        ``config=None`` lists every thread under the prefix (a SCAN: admin use).
        Without ``checkpoint_ns`` in the config, every namespace of the thread.
        """
        op = self.ops.list_checkpoints(
            config, filter=filter, before=before, limit=limit
        )
        async for tup in self._stream(op):
            yield tup

    async def _stream(self, op: req.Op) -> AsyncIterator[CheckpointTuple]:
        """Drive a listing operation, yielding its checkpoints page by page."""
        reply: Any = None
        try:
            request = next(op)
            while True:
                if isinstance(request, req.Emit):
                    for tup in request.items:
                        yield tup
                    reply = None
                else:
                    reply = await self.sender.send(cast(RedisRequest, request))
                request = op.send(reply)
        except StopIteration:
            return

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the blobs of ``new_versions`` in one atomic call."""
        result: RunnableConfig = await self._drive(
            self.ops.put(config, checkpoint, metadata, new_versions)
        )
        return result

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes (special channels overwrite)."""
        await self._drive(self.ops.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of the thread, all namespaces."""
        await self._drive(self.ops.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete what the runs wrote, keeping what live delta channels still need."""
        await self._drive(self.ops.delete_for_runs(list(run_ids)))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread (all namespaces, the whole parent chain) to another id."""
        await self._drive(self.ops.copy_thread(source_thread_id, target_thread_id))

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        """``keep_latest``: the newest checkpoint per namespace survives, with the
        ancestors its delta channels need; ``delete``: everything goes."""
        await self._drive(self.ops.prune(list(thread_ids), strategy))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The parent chain's writes and seeds of ``channels``, in one round trip."""
        result: Mapping[str, DeltaChannelHistory] = await self._drive(
            self.ops.delta_history(config, channels)
        )
        return result

    async def aset_thread_ttl(self, thread_id: str, ttl: float | None) -> None:
        """Give one thread its own TTL in seconds (``None``: back to the default)."""
        await self._drive(self.ops.set_thread_ttl(thread_id, ttl))

    async def apin_thread(self, thread_id: str) -> None:
        """Keep a thread forever, whatever the TTL."""
        await self._drive(self.ops.set_thread_ttl(thread_id, -1))

    async def aunpin_thread(self, thread_id: str) -> None:
        """Undo :meth:`apin_thread`: the saver's TTL applies again."""
        await self._drive(self.ops.set_thread_ttl(thread_id, None))

    async def alist_threads(self, *, limit: int | None = None) -> builtins.list[str]:
        """Ids of the threads that have checkpoints under this saver's key prefix,
        sorted; ``limit`` keeps the first ones.

        A SCAN of the whole keyspace: an admin tool (``dialogllm threads list``), not
        something to call per request.

        >>> await saver.alist_threads(limit=2)
        ['t-1', 't-2']
        """
        ids: builtins.list[str] = await self._drive(self.ops.scan_threads())
        return ids[:limit]

    # --- sync bridge -----------------------------------------------------------------

    def _run(self, op: req.Op) -> Any:
        return self.bridge.run(self._drive(op))

    def _iterate(self, op: req.Op) -> Iterator[CheckpointTuple]:
        async def collect() -> builtins.list[CheckpointTuple]:
            return [t async for t in self._stream(op)]

        yield from self.bridge.run(collect())
