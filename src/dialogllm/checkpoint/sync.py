"""``RedisSaver``: the sync twin of :class:`~dialogllm.checkpoint.aio.AsyncRedisSaver`.

Same storage, same operations (:mod:`dialogllm.checkpoint.operations`), sent with a
blocking ``redis.Redis`` (or ``redis.cluster.RedisCluster``) client. Use it in sync
code (``graph.invoke``); use the async saver with ``ainvoke``/``astream``.

>>> with RedisSaver.from_conn_string("redis://127.0.0.1:6379/0") as saver:
...     graph = builder.compile(checkpointer=saver)             # doctest: +SKIP
...     graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from dialogllm.checkpoint.operations import (
    Batch,
    Command,
    Emit,
    Eval,
    Op,
    Request,
    Scan,
)
from dialogllm.checkpoint.saver_base import (
    RedisSaverBase,
    fill_pipeline,
    pipeline_outcome,
    scripts_of,
)
from dialogllm.errors import CheckpointError
from dialogllm.redis.clients import sync_client
from dialogllm.redis.errors import translate_redis_errors

__all__ = ["RedisSaver"]

SyncRedisClient = Redis | RedisCluster


class RedisSaver(RedisSaverBase[SyncRedisClient]):
    """Sync LangGraph checkpointer on plain Redis; options as ``AsyncRedisSaver``.

    >>> saver = RedisSaver(sync_client(url), key_prefix="app1")
    """

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, url: str, *, cluster: bool | None = None, **options: Any
    ) -> Iterator[RedisSaver]:
        """Connect to ``url``, yield a saver, close the pool on exit (options as
        ``AsyncRedisSaver.from_conn_string``).

        >>> with RedisSaver.from_conn_string(url, ttl=3600) as saver:
        ...     ...
        """
        client = sync_client(url, decode=False, cluster=cluster)
        try:
            yield cls(client, **options)
        finally:
            client.close()

    # --- driving operations -------------------------------------------------------

    def _send(self, request: Request) -> Any:
        if isinstance(request, Eval):
            n = len(request.keys)
            try:
                return self.client.evalsha(
                    request.script.sha, n, *request.keys, *request.args
                )
            except NoScriptError:
                return self.client.eval(
                    request.script.source, n, *request.keys, *request.args
                )
        if isinstance(request, Command):
            return self.client.execute_command(*request.args)  # type: ignore[no-untyped-call]
        if isinstance(request, Scan):
            return list(self.client.scan_iter(match=request.pattern, count=500))
        if isinstance(request, Batch):
            return self._batch(request)
        raise CheckpointError(
            f"cannot send {type(request).__name__}"
        )  # pragma: no cover

    def _batch(self, batch: Batch) -> list[Any]:
        if self.is_cluster and not batch.transaction:
            return [self._send(r) for r in batch.requests]
        for first_try in (True, False):
            pipe = self.client.pipeline(transaction=batch.transaction)
            fill_pipeline(pipe, batch)
            results = pipe.execute(raise_on_error=False)
            if pipeline_outcome(batch, results, first_try=first_try):
                return list(results)
            for source in scripts_of(batch):
                self.client.script_load(source)
        raise CheckpointError("scripts could not be loaded")  # pragma: no cover

    def _send_mapped(self, request: Request) -> Any:
        with translate_redis_errors(self.url, "a checkpointer call"):
            return self._send(request)

    def _drive(self, op: Op) -> Any:
        try:
            request = next(op)
            while True:
                request = op.send(self._send_mapped(request))
        except StopIteration as stop:
            return stop.value

    # --- BaseCheckpointSaver ---------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the latest when it has no id)."""
        result: CheckpointTuple | None = self._drive(self.ops.get_tuple(config))
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (see ``AsyncRedisSaver.alist``)."""
        op = self.ops.list_checkpoints(
            config, filter=filter, before=before, limit=limit
        )
        reply: Any = None
        try:
            request = next(op)
            while True:
                if isinstance(request, Emit):
                    yield from request.items
                    reply = None
                else:
                    reply = self._send_mapped(request)
                request = op.send(reply)
        except StopIteration:
            return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the blobs of ``new_versions`` in one atomic call."""
        result: RunnableConfig = self._drive(
            self.ops.put(config, checkpoint, metadata, new_versions)
        )
        return result

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes (special channels overwrite)."""
        self._drive(self.ops.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of the thread, all namespaces."""
        self._drive(self.ops.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete what the runs wrote, keeping what live delta channels still need."""
        self._drive(self.ops.delete_for_runs(list(run_ids)))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread (all namespaces, the whole parent chain) to another id."""
        self._drive(self.ops.copy_thread(source_thread_id, target_thread_id))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        """See ``AsyncRedisSaver.aprune``."""
        self._drive(self.ops.prune(list(thread_ids), strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The parent chain's writes and seeds of ``channels``, in one round trip."""
        result: Mapping[str, DeltaChannelHistory] = self._drive(
            self.ops.delta_history(config, channels)
        )
        return result

    def set_thread_ttl(self, thread_id: str, ttl: float | None) -> None:
        """Give one thread its own TTL in seconds (``None``: back to the default)."""
        self._drive(self.ops.set_thread_ttl(thread_id, ttl))

    def pin_thread(self, thread_id: str) -> None:
        """Keep a thread forever, whatever the TTL."""
        self._drive(self.ops.set_thread_ttl(thread_id, -1))

    def unpin_thread(self, thread_id: str) -> None:
        """Undo :meth:`pin_thread`."""
        self._drive(self.ops.set_thread_ttl(thread_id, None))

    def list_threads(self, *, limit: int | None = None) -> builtins.list[str]:
        """Ids of the threads that have checkpoints under this saver's key prefix,
        sorted; ``limit`` keeps the first ones (a SCAN: admin use; see
        ``AsyncRedisSaver.alist_threads``).

        >>> saver.list_threads(limit=2)
        ['t-1', 't-2']
        """
        ids: builtins.list[str] = self._drive(self.ops.scan_threads())
        return ids[:limit]
