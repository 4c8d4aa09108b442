"""What the async and the sync saver shells share: construction, options, fencing.

:class:`RedisSaverBase` holds the client, the options and the operations built on the
saver's serializer; :mod:`dialogllm.checkpoint.aio` and
:mod:`dialogllm.checkpoint.sync` add only how requests are sent (``await`` or
blocking calls). Clients made from a URL come from :mod:`dialogllm.redis` (one retry
policy for every layer).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, Self, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.exceptions import NoScriptError

from dialogllm.checkpoint.base import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_MAX_PAYLOAD_BYTES,
    RecordCodec,
    SaverOptions,
    default_serde,
    next_version,
)
from dialogllm.checkpoint.operations import Batch, Eval, Operations
from dialogllm.errors import InvalidCheckpointConfigError
from dialogllm.leases import FencingToken
from dialogllm.redis.clients import decodes_responses, describe, is_cluster

__all__ = ["RedisSaverBase", "fill_pipeline", "pipeline_outcome", "scripts_of"]

ClientT = TypeVar("ClientT")


def fill_pipeline(pipe: Any, batch: Batch) -> None:
    """Queue ``batch``'s requests on a redis-py pipeline (sync or async)."""
    for request in batch.requests:
        if isinstance(request, Eval):
            keys = request.keys
            pipe.evalsha(request.script.sha, len(keys), *keys, *request.args)
        else:
            pipe.execute_command(*request.args)


def pipeline_outcome(batch: Batch, results: list[Any], *, first_try: bool) -> bool:
    """Whether a pipeline's ``results`` are final: ``False`` when scripts must be
    loaded and the batch sent again; raises the first error a command met."""
    if first_try and any(isinstance(x, NoScriptError) for x in results):
        return False
    for result in results:
        if isinstance(result, Exception):
            raise result
    return True


def scripts_of(batch: Batch) -> list[str]:
    """The source of every script in ``batch`` (to load them after NOSCRIPT)."""
    return [r.script.source for r in batch.requests if isinstance(r, Eval)]


class RedisSaverBase(BaseCheckpointSaver[str], Generic[ClientT]):
    """The part of a Redis saver that does no I/O (see ``AsyncRedisSaver`` for the
    meaning of each option)."""

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
        if decodes_responses(client):
            raise InvalidCheckpointConfigError(
                "the Redis client must be created with decode_responses=False: "
                "checkpoint values are stored as raw bytes"
            )
        self.client = client
        self.is_cluster = is_cluster(client)
        self.url = describe(client)
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
