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
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple
from redis import Redis
from redis.cluster import RedisCluster
from redis.exceptions import NoScriptError

from dialogllm.checkpoint import operations as req
from dialogllm.checkpoint import saver_base
from dialogllm.checkpoint.saver_base import RedisSaverBase
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

    def _send(self, request: req.Request) -> Any:
        if isinstance(request, req.Eval):
            n = len(request.keys)
            try:
                return self.client.evalsha(
                    request.script.sha, n, *request.keys, *request.args
                )
            except NoScriptError:
                return self.client.eval(
                    request.script.source, n, *request.keys, *request.args
                )
        if isinstance(request, req.Command):
            return self.client.execute_command(*request.args)  # type: ignore[no-untyped-call]
        if isinstance(request, req.Scan):
            return list(self.client.scan_iter(match=request.pattern, count=500))
        if isinstance(request, req.Batch):
            return self._batch(request)
        raise CheckpointError(
            f"cannot send {type(request).__name__}"
        )  # pragma: no cover

    def _batch(self, batch: req.Batch) -> list[Any]:
        if self.is_cluster and not batch.transaction:
            return [self._send(r) for r in batch.requests]
        for first_try in (True, False):
            pipe = self.client.pipeline(transaction=batch.transaction)
            saver_base.fill_pipeline(pipe, batch)
            results = pipe.execute(raise_on_error=False)
            if saver_base.pipeline_outcome(batch, results, first_try=first_try):
                return list(results)
            for source in saver_base.scripts_of(batch):
                self.client.script_load(source)
        raise CheckpointError("scripts could not be loaded")  # pragma: no cover

    def _send_mapped(self, request: req.Request) -> Any:
        with translate_redis_errors(self.url, "a checkpointer call"):
            return self._send(request)

    def _drive(self, op: req.Op) -> Any:
        try:
            request = next(op)
            while True:
                request = op.send(self._send_mapped(request))
        except StopIteration as stop:
            return stop.value

    # --- the blocking API of RedisSaverBase ---------------------------------------

    def _run(self, op: req.Op) -> Any:
        return self._drive(op)

    def _iterate(self, op: req.Op) -> Iterator[CheckpointTuple]:
        reply: Any = None
        try:
            request = next(op)
            while True:
                if isinstance(request, req.Emit):
                    yield from request.items
                    reply = None
                else:
                    reply = self._send_mapped(request)
                request = op.send(reply)
        except StopIteration:
            return
