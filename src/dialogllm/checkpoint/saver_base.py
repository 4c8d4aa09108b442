"""What the async and the sync saver shells share: construction, options, fencing.

:class:`RedisSaverBase` holds the client, the options and the operations built on the
saver's serializer; :mod:`dialogllm.checkpoint.aio` and
:mod:`dialogllm.checkpoint.sync` add only how requests are sent (an
:class:`~dialogllm.redis.requests.AsyncSender` or a blocking
:class:`~dialogllm.redis.requests.SyncSender`). Clients made from a URL come from
:mod:`dialogllm.redis` (one retry policy for every layer).
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Generic, Self, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from dialogllm.checkpoint.base import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_PAYLOAD_BYTES,
    RecordCodec,
    SaverOptions,
    default_serde,
    next_version,
)
from dialogllm.checkpoint.operations import Op, Operations
from dialogllm.errors import InvalidCheckpointConfigError
from dialogllm.leases import FencingToken
from dialogllm.redis.requests import AsyncSender, Calls, SyncSender

__all__ = ["RedisSaverBase"]

ClientT = TypeVar("ClientT")
SenderT = TypeVar("SenderT", AsyncSender, SyncSender)
_CALLS = Calls(
    "a checkpointer call",
    InvalidCheckpointConfigError,
    "checkpoint values are stored as raw bytes",
)


class RedisSaverBase(BaseCheckpointSaver[str], Generic[ClientT, SenderT]):
    """The part of a Redis saver that does no I/O (see ``AsyncRedisSaver`` for the
    meaning of each option); a shell names its sender (async or blocking)."""

    _sender_type: Callable[..., SenderT]

    def __init__(
        self,
        client: ClientT,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        ttl: float | None = None,
        refresh_on_read: bool = False,
        serde: SerializerProtocol | None = None,
        max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
        fencing_token: FencingToken | None = None,
        compress_min_bytes: int | None = None,
    ) -> None:
        super().__init__(serde=serde or default_serde())
        self.sender: SenderT = self._sender_type(client, _CALLS)
        self.client = client
        self.is_cluster = self.sender.is_cluster
        self.url = self.sender.url
        self.options = SaverOptions(
            key_prefix=key_prefix,
            ttl_seconds=ttl,
            refresh_on_read=refresh_on_read,
            max_payload_bytes=max_payload_bytes,
            fencing_token=fencing_token,
            compress_min_bytes=compress_min_bytes,
        )
        self._created()

    def _created(self) -> None:
        """Hook for a shell to finish its own set-up (the async one notes its loop)."""

    @property
    def ops(self) -> Operations:
        """The shared operations, built on this saver's current serializer."""
        ops: Operations | None = self.__dict__.get("_ops")
        if (
            ops is None
            or ops.codec.serde is not self.serde
            or ops.options is not self.options
        ):
            ops = Operations(RecordCodec(self.serde, self.options), self.options)
            self.__dict__["_ops"] = ops
        return ops

    def with_fencing(self, token: FencingToken | None) -> Self:
        """A shallow copy whose every write carries ``token``."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        clone.__dict__.pop("_ops", None)
        clone.options = dataclasses.replace(self.options, fencing_token=token)
        return clone

    def get_next_version(self, current: Any, channel: None) -> str:
        """String versions that stay unique across forks (see ``next_version``)."""
        return next_version(current)

    # --- the blocking API (BaseCheckpointSaver's sync methods), once for both --------

    def _run(self, op: Op) -> Any:
        """Drive ``op`` to its result, blocking (each shell says how)."""
        raise NotImplementedError

    def _iterate(self, op: Op) -> Iterator[CheckpointTuple]:
        """Drive a listing ``op``, yielding its checkpoints, blocking."""
        raise NotImplementedError

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by ``config`` (the latest when it has no id)."""
        result: CheckpointTuple | None = self._run(self.ops.get_tuple(config))
        return result

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first; see ``AsyncRedisSaver.alist``. On the async saver
        the blocking methods serve other threads (e.g. a sync subgraph)."""
        yield from self._iterate(
            self.ops.list_checkpoints(config, filter=filter, before=before, limit=limit)
        )

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and the blobs of ``new_versions`` in one atomic call."""
        result: RunnableConfig = self._run(
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
        self._run(self.ops.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of the thread, all namespaces."""
        self._run(self.ops.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete what the runs wrote, keeping what live delta channels still need."""
        self._run(self.ops.delete_for_runs(list(run_ids)))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread (all namespaces, the whole parent chain) to another id."""
        self._run(self.ops.copy_thread(source_thread_id, target_thread_id))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest"
    ) -> None:
        """See ``AsyncRedisSaver.aprune``."""
        self._run(self.ops.prune(list(thread_ids), strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """The parent chain's writes and seeds of ``channels``, in one round trip."""
        result: Mapping[str, DeltaChannelHistory] = self._run(
            self.ops.delta_history(config, channels)
        )
        return result

    def set_thread_ttl(self, thread_id: str, ttl: float | None) -> None:
        """Give one thread its own TTL in seconds (``None``: back to the default)."""
        self._run(self.ops.set_thread_ttl(thread_id, ttl))

    def pin_thread(self, thread_id: str) -> None:
        """Keep a thread forever, whatever the TTL."""
        self._run(self.ops.set_thread_ttl(thread_id, -1))

    def unpin_thread(self, thread_id: str) -> None:
        """Undo :meth:`pin_thread`."""
        self._run(self.ops.set_thread_ttl(thread_id, None))

    def list_threads(self, *, limit: int | None = None) -> builtins.list[str]:
        """Ids of the threads that have checkpoints under this saver's key prefix,
        sorted; ``limit`` keeps the first ones (a SCAN: admin use; see
        ``AsyncRedisSaver.alist_threads``).

        >>> saver.list_threads(limit=2)
        ['t-1', 't-2']
        """
        ids: builtins.list[str] = self._run(self.ops.scan_threads())
        return ids[:limit]
