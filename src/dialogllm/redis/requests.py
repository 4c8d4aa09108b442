"""Typed Redis requests, and the one way to send them, with an async or a sync client.

The checkpointer's and the store's operations are written once, sans I/O: generators
that yield these requests (:class:`Eval` of a :class:`Script`, :class:`Command`,
:class:`Scan`, :class:`Batch`) and receive the replies. :class:`AsyncSender` and
:class:`SyncSender` are the only code that turns them into redis-py calls:

- a script goes as EVALSHA, and as EVAL once when the server answers NOSCRIPT;
- a batch is one pipeline (MULTI/EXEC with ``transaction=True``); when its scripts are
  not loaded, they are loaded and the batch is sent once more; on a Cluster a batch
  that is not a transaction is sent as separate calls (its keys may be on several
  nodes);
- every call goes through :func:`dialogllm.redis.errors.translate_redis_errors`, so a
  redis-py failure becomes the same project error in every layer.

>>> calls = Calls("a store call", StoreError, "store records are raw bytes")
>>> sender = AsyncSender(async_client(url, decode=False), calls)
>>> await sender.send(Command(("PING",)))                          # doctest: +SKIP
True
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from redis.exceptions import NoScriptError

from dialogllm.redis.clients import (
    AsyncClient,
    SyncClient,
    decodes_responses,
    describe,
    is_cluster,
)
from dialogllm.redis.errors import translate_redis_errors

__all__ = [
    "AsyncSender",
    "Batch",
    "Calls",
    "Command",
    "Eval",
    "RedisRequest",
    "Scan",
    "Script",
    "SyncSender",
]

ClientT = TypeVar("ClientT")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1 (for EVALSHA)."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


@dataclass(frozen=True, slots=True)
class Eval:
    """Run a Lua script on ``keys`` (all in one Cluster slot) with ``args``."""

    script: Script
    keys: Sequence[str]
    args: Sequence[bytes | str]


@dataclass(frozen=True, slots=True)
class Command:
    """One plain Redis command."""

    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Scan:
    """Every key matching ``pattern`` (SCAN; on a Cluster, every primary)."""

    pattern: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Several requests sent together (a pipeline; one round trip on one node).

    ``transaction=True`` wraps them in MULTI/EXEC (all keys in one slot)."""

    requests: Sequence[Eval | Command] = field(default_factory=list)
    transaction: bool = False


RedisRequest = Eval | Command | Scan | Batch
_REDIS_REQUESTS = (Eval, Command, Scan, Batch)


def _fill_pipeline(pipe: Any, batch: Batch) -> None:
    for request in batch.requests:
        if isinstance(request, Eval):
            keys = request.keys
            pipe.evalsha(request.script.sha, len(keys), *keys, *request.args)
        else:
            pipe.execute_command(*request.args)


def _pipeline_outcome(batch: Batch, results: list[Any], *, first_try: bool) -> bool:
    """Whether a pipeline's ``results`` are final: ``False`` when scripts must be
    loaded and the batch sent again; raises the first error a command met."""
    if first_try and any(isinstance(x, NoScriptError) for x in results):
        return False
    for result in results:
        if isinstance(result, Exception):
            raise result
    return True


def _scripts_of(batch: Batch) -> list[str]:
    return [r.script.source for r in batch.requests if isinstance(r, Eval)]


@dataclass(frozen=True, slots=True)
class Calls:
    """Whose calls a sender sends, for its errors.

    Args:
        action: what a failed call was (``"a store call"``).
        error: the project error raised for a decoding client or a failed batch.
        binary_because: why the client must not decode replies.
    """

    action: str
    error: type[Exception]
    binary_because: str


class _Sender(Generic[ClientT]):
    """What both senders hold: the client, whether it is a Cluster, its masked URL,
    and whose calls they are (:class:`Calls`)."""

    def __init__(self, client: ClientT, calls: Calls) -> None:
        if decodes_responses(client):
            raise calls.error(
                "the Redis client must be created with decode_responses=False: "
                + calls.binary_because
            )
        self.client = client
        self.is_cluster = is_cluster(client)
        self.url = describe(client)
        self.action = calls.action
        self.error = calls.error

    def _unsendable(self, request: object) -> Exception:
        return self.error(f"cannot send {type(request).__name__}")

    def _one_by_one(self, batch: Batch) -> bool:
        return self.is_cluster and not batch.transaction


class AsyncSender(_Sender[AsyncClient]):
    """Sends requests with a ``redis.asyncio`` client (see the module docstring).

    Args:
        client: a ``Redis`` or ``RedisCluster`` with ``decode_responses=False``.
        calls: whose calls these are, for error messages.
    """

    async def send(self, request: RedisRequest) -> Any:
        """Send ``request``; a redis-py failure becomes the project's error."""
        with translate_redis_errors(self.url, self.action):
            return await self._send(request)

    async def drive(
        self,
        op: Generator[Any, Any, T],
        local: Callable[[Any], Awaitable[Any]] | None = None,
    ) -> T:
        """Run an operation to its end: each Redis request it yields is sent, any
        other is answered by ``local`` (e.g. the store's embedding requests)."""
        try:
            request = next(op)
            while True:
                if local is not None and not isinstance(request, _REDIS_REQUESTS):
                    reply = await local(request)
                else:
                    reply = await self.send(request)
                request = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _send(self, request: RedisRequest) -> Any:
        client = self.client
        if isinstance(request, Eval):
            nkeys = len(request.keys)
            try:
                return await client.evalsha(
                    request.script.sha, nkeys, *request.keys, *request.args
                )
            except NoScriptError:
                return await client.eval(
                    request.script.source, nkeys, *request.keys, *request.args
                )
        if isinstance(request, Command):
            return await client.execute_command(*request.args)
        if isinstance(request, Scan):
            return [k async for k in client.scan_iter(match=request.pattern, count=500)]
        if isinstance(request, Batch):
            return await self._batch(request)
        raise self._unsendable(request)

    async def _batch(self, batch: Batch) -> list[Any]:
        if self._one_by_one(batch):
            return list(await asyncio.gather(*(self._send(r) for r in batch.requests)))
        for first_try in (True, False):
            pipe = self.client.pipeline(transaction=batch.transaction)
            _fill_pipeline(pipe, batch)
            results = await pipe.execute(raise_on_error=False)
            if _pipeline_outcome(batch, results, first_try=first_try):
                return list(results)
            for source in _scripts_of(batch):
                await self.client.script_load(source)
        raise self.error("scripts could not be loaded")  # pragma: no cover


class SyncSender(_Sender[SyncClient]):
    """Sends requests with a blocking ``redis`` client; as :class:`AsyncSender`."""

    def send(self, request: RedisRequest) -> Any:
        """Send ``request``; a redis-py failure becomes the project's error."""
        with translate_redis_errors(self.url, self.action):
            return self._send(request)

    def drive(
        self, op: Generator[Any, Any, T], local: Callable[[Any], Any] | None = None
    ) -> T:
        """Run an operation to its end (see :meth:`AsyncSender.drive`)."""
        try:
            request = next(op)
            while True:
                if local is not None and not isinstance(request, _REDIS_REQUESTS):
                    reply = local(request)
                else:
                    reply = self.send(request)
                request = op.send(reply)
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _send(self, request: RedisRequest) -> Any:
        client = self.client
        if isinstance(request, Eval):
            nkeys = len(request.keys)
            try:
                return client.evalsha(
                    request.script.sha, nkeys, *request.keys, *request.args
                )
            except NoScriptError:
                return client.eval(
                    request.script.source, nkeys, *request.keys, *request.args
                )
        if isinstance(request, Command):
            return client.execute_command(*request.args)  # type: ignore[no-untyped-call]
        if isinstance(request, Scan):
            return list(client.scan_iter(match=request.pattern, count=500))
        if isinstance(request, Batch):
            return self._batch(request)
        raise self._unsendable(request)

    def _batch(self, batch: Batch) -> list[Any]:
        if self._one_by_one(batch):
            return [self._send(r) for r in batch.requests]
        for first_try in (True, False):
            pipe = self.client.pipeline(transaction=batch.transaction)
            _fill_pipeline(pipe, batch)
            results = pipe.execute(raise_on_error=False)
            if _pipeline_outcome(batch, results, first_try=first_try):
                return list(results)
            for source in _scripts_of(batch):
                self.client.script_load(source)
        raise self.error("scripts could not be loaded")  # pragma: no cover
