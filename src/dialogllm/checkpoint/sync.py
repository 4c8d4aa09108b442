"""``RedisSaver``: the sync twin of :class:`~dialogllm.checkpoint.aio.AsyncRedisSaver`.

Same storage, same operations (:mod:`dialogllm.checkpoint.operations`), sent with a
blocking ``redis.Redis`` (or ``redis.cluster.RedisCluster``) client. Use it in sync
code (``graph.invoke``); use the async saver with ``ainvoke``/``astream``.

>>> with RedisSaver.from_conn_string("redis://127.0.0.1:6379/0") as saver:
...     graph = builder.compile(checkpointer=saver)             # doctest: +SKIP
...     graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from langgraph.checkpoint.base import CheckpointTuple
from redis import Redis
from redis.cluster import RedisCluster

from dialogllm.checkpoint import operations as req
from dialogllm.checkpoint.saver_base import RedisSaverBase
from dialogllm.redis.clients import sync_client
from dialogllm.redis.requests import RedisRequest, SyncSender

__all__ = ["RedisSaver"]

SyncRedisClient = Redis | RedisCluster


class RedisSaver(RedisSaverBase[SyncRedisClient, SyncSender]):
    """Sync LangGraph checkpointer on plain Redis; options as ``AsyncRedisSaver``.

    >>> saver = RedisSaver(sync_client(url), key_prefix="app1")
    """

    _sender_type = SyncSender

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

    # --- the blocking API of RedisSaverBase ---------------------------------------

    def _run(self, op: req.Op) -> Any:
        return self.sender.drive(op)

    def _iterate(self, op: req.Op) -> Iterator[CheckpointTuple]:
        reply: Any = None
        try:
            request = next(op)
            while True:
                if isinstance(request, req.Emit):
                    yield from request.items
                    reply = None
                else:
                    reply = self.sender.send(cast(RedisRequest, request))
                request = op.send(reply)
        except StopIteration:
            return
