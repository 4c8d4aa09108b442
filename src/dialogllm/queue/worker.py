"""The worker: takes runs from the queue and runs their graphs, crash-safe.

One :class:`Worker` per process runs up to ``concurrency`` runs at once (asyncio). It
reads new runs with ``XREADGROUP BLOCK`` (no polling), takes the thread's lease before
a run starts (one run per thread at a time), renews leases from a heartbeat thread the
run cannot starve, and passes the lease as the fencing token on every checkpoint write.
Runs whose worker died are taken back with ``XAUTOCLAIM`` once their lease lapsed and
resume from their last checkpoint. Failures retry with exponential backoff up to the
run's ``max_attempts``, then go to the dead-letter stream with the reason; poison
(unknown graph, undecodable input) goes there at once.

The rule a reader must not break: a worker that lost a run's lease stops working on it
and changes nothing about it; whoever holds the lease now finishes it.

>>> worker = Worker("redis://127.0.0.1:6379/0", concurrency=8, lease_ttl=30)
>>> await worker.run()            # until SIGTERM/SIGINT or worker.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import random
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError, InvalidUpdateError
from langgraph.pregel import Pregel
from redis.exceptions import RedisError, ResponseError

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.config import get_settings
from dialogllm.errors import (
    FencedWriteError,
    GraphNotFoundError,
    InputValidationError,
    RedisUnavailableError,
)
from dialogllm.leases import (
    FENCE_CONFIG_KEY,
    LEASE_ACQUIRE,
    LEASE_RELEASE,
    FencingToken,
    thread_fence_counter,
    thread_lease,
)
from dialogllm.logging import get_logger
from dialogllm.queue import keys, lua
from dialogllm.queue.client import (
    DEFAULT_DEAD_RETENTION,
    DEFAULT_QUEUE,
    DEFAULT_RETENTION,
    DLQ_MAXLEN,
    decode_input,
)
from dialogllm.queue.connection import (
    CONNECTION_ERRORS,
    REDIS_FAILURES,
    async_client,
    sync_client,
)
from dialogllm.queue.heartbeat import Heartbeat
from dialogllm.queue.models import dumps
from dialogllm.queue.resolve import Resolver, import_resolver

__all__ = ["NON_RETRYABLE", "Worker", "backoff_delay", "failing_node"]

T = TypeVar("T")

#: Errors a retry cannot fix: the run ends as ``error`` at once (no dead letter).
NON_RETRYABLE: tuple[type[BaseException], ...] = (
    GraphRecursionError,
    InvalidUpdateError,
)
#: Errors that mean the run itself is broken: dead letter at once.
POISON: tuple[type[BaseException], ...] = (
    GraphNotFoundError,
    InputValidationError,
    json.JSONDecodeError,
)


_TASK_NOTE = re.compile(r"^During task with name '(.+)' and id '[^']*'$")


def failing_node(exc: BaseException) -> str:
    """The graph node an exception came from, as LangGraph notes it; ``""`` if none.

    LangGraph adds the note ``During task with name 'NODE' and id '...'`` to an
    exception that escapes a node; the innermost (first) note names the failing node.

    >>> exc = RuntimeError("boom")
    >>> exc.add_note("During task with name 'judge' and id 'abc'")
    >>> failing_node(exc)
    'judge'
    """
    for note in getattr(exc, "__notes__", None) or ():
        match = _TASK_NOTE.match(str(note))
        if match:
            return match.group(1)
    return ""


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before attempt ``attempt + 1``: ``base * 2**(attempt-1)``,
    capped, with ±10 % jitter.

    >>> 0.9 <= backoff_delay(1, 1.0, 60.0) <= 1.1
    True
    """
    raw = min(cap, base * float(2 ** max(0, attempt - 1)))
    return raw * random.uniform(0.9, 1.1)


_UNREACHABLE: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    RedisUnavailableError,
)


class _StopAtStep(Exception):
    """Raised inside a run to stop it at a step boundary."""


@dataclass
class _Active:
    run_id: str
    thread_id: str
    lease_id: str
    graph: str = ""
    attempts: int = 0
    inner: asyncio.Task[Any] | None = None
    stop_reason: str | None = None  # cancel | rollback | interrupt | handback | lost
    stop_at_step: str | None = None  # interrupt | handback
    signal_by: str = ""  # the run whose enqueue interrupted or rolled back this one
    error_node: str = ""  # the graph node the last error came from, when known


class Worker:
    """Runs queued runs until stopped.

    Args:
        redis_url: where Redis is (``redis://``, ``rediss://``, ``unix://``; an ACL
            user in the URL); default: the ``DIALOGLLM_REDIS_URL`` setting.
        key_prefix: the prefix shared with the queue and the checkpointer.
        queue: the queue's name.
        concurrency: runs at once in this process.
        resolve: turns a run's graph reference into a graph (default:
            :func:`~dialogllm.queue.resolve.import_resolver`).
        lease_ttl: seconds a lease lives without renewal; the heartbeat renews it
            every third of that; a dead worker's runs are reclaimed after about
            ``1.5 * lease_ttl``.
        grace: seconds a stopping worker lets runs reach their next step before it
            hands them back.
        retention / dead_retention: seconds finished / dead runs stay readable.
        backoff_base / backoff_max: retry delays (seconds).
        checkpoint_ttl: expire threads' checkpoints (seconds after the last write).
        name: this consumer's name (default: host-pid-random).
        cluster: connect to a Redis Cluster (default: ``DIALOGLLM_REDIS_CLUSTER``).
            A queue lives in one slot and a thread's lease in the thread's slot, so
            on a Cluster the worker takes the lease and claims the run in two
            one-slot calls (likewise at the end) instead of one.

    >>> await Worker(url, resolve=registry.get, concurrency=16).run()
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str | None = None,
        queue: str = DEFAULT_QUEUE,
        concurrency: int = 10,
        resolve: Resolver | None = None,
        lease_ttl: float = 30.0,
        grace: float = 30.0,
        retention: float = DEFAULT_RETENTION,
        dead_retention: float = DEFAULT_DEAD_RETENTION,
        backoff_base: float = 1.0,
        backoff_max: float = 300.0,
        checkpoint_ttl: float | None = None,
        name: str | None = None,
        cluster: bool | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be > 0")
        settings = get_settings()
        self.url = redis_url or settings.effective_redis_url
        self.prefix = key_prefix or settings.key_prefix
        self.queue = queue
        self.concurrency = concurrency
        self.resolve = resolve or import_resolver()
        self.lease_ttl = lease_ttl
        self.grace = grace
        self.retention_ms = int(retention * 1000)
        self.dead_retention_ms = int(dead_retention * 1000)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.checkpoint_ttl = checkpoint_ttl
        self.cluster = settings.redis_cluster if cluster is None else cluster
        self.name = (
            name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.base = keys.queue_base(self.prefix, queue)
        self.stream = keys.stream(self.prefix, queue)
        self.log = get_logger("dialogllm.queue.worker", worker=self.name, queue=queue)
        self._active: dict[str, _Active] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._capacity = asyncio.Event()
        self._capacity.set()
        self._wake = asyncio.Event()
        self._reading = False
        self.processed = 0

    @property
    def ready(self) -> bool:
        """Whether the worker takes runs now: its last read of the queue succeeded
        and it is not shutting down (readiness, as opposed to liveness)."""
        return self._reading and not self._stopping.is_set()

    # --- life cycle -----------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking runs; running ones get ``grace`` seconds, then are handed back.
        Safe to call from a signal handler."""
        self._stopping.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Work until :meth:`stop` (or SIGTERM/SIGINT), then shut down gracefully.

        >>> await Worker(url).run()
        """
        loop = asyncio.get_running_loop()
        self.client: Any = async_client(self.url, cluster=self.cluster)
        self.bclient = async_client(self.url, decode=False, cluster=self.cluster)
        self.saver = AsyncRedisSaver(
            self.bclient, key_prefix=self.prefix, ttl=self.checkpoint_ttl
        )
        self._start_script = self.client.register_script(lua.START)
        self._end_script = self.client.register_script(lua.END)
        # one-slot halves of START and END, for Redis Cluster
        self._lease_acquire = self.client.register_script(LEASE_ACQUIRE)
        self._lease_release = self.client.register_script(LEASE_RELEASE)
        self._claim = self.client.register_script(lua.CLAIM)
        self._finish = self.client.register_script(lua.FINISH)
        self._promote = self.client.register_script(lua.PROMOTE)
        self._prune = self.client.register_script(lua.PRUNE)
        # a cluster client connects when built: off the loop, retried like any call
        self._hb_client = await self._retrying(
            "connecting the heartbeat",
            lambda: asyncio.to_thread(
                sync_client, self.url, decode=False, cluster=self.cluster
            ),
        )
        self.heartbeat = Heartbeat(
            self._hb_client,
            prefix=self.prefix,
            queue=self.queue,
            ttl=self.lease_ttl,
            loop=loop,
            on_lost=self._on_lost,
            on_signal=self._on_signal,
        )
        installed: list[signal.Signals] = []
        if (
            install_signal_handlers
            and threading.current_thread() is threading.main_thread()
        ):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
        self.heartbeat.start()
        loops = [
            asyncio.create_task(self._read_loop(), name="read"),
            asyncio.create_task(self._reclaim_loop(), name="reclaim"),
            asyncio.create_task(self._schedule_loop(), name="schedule"),
            asyncio.create_task(self._signal_loop(), name="signals"),
        ]
        self.log.info("worker started", concurrency=self.concurrency)
        try:
            await self._stopping.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._shutdown()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.heartbeat.stop()
            with contextlib.suppress(RedisError, OSError):
                await self._forget_consumer()
            await self.client.aclose()
            await self.bclient.aclose()
            self._hb_client.close()
            self.log.info("worker stopped", processed=self.processed)

    async def _shutdown(self) -> None:
        for active in self._active.values():
            active.stop_at_step = "handback"
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.grace)
            for active in list(self._active.values()):
                self._stop_now(active, "handback")
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _forget_consumer(self) -> None:
        info = await self.client.xinfo_consumers(self.stream, keys.CONSUMER_GROUP)
        for consumer in info:
            if consumer["name"] == self.name and int(consumer["pending"]) == 0:
                await self.client.xgroup_delconsumer(
                    self.stream, keys.CONSUMER_GROUP, self.name
                )

    async def _ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(
                self.stream, keys.CONSUMER_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _pause(self, attempt: int) -> None:
        await asyncio.sleep(min(2.0, 0.05 * (2**attempt)) * random.uniform(0.8, 1.2))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Call until Redis answers (reconnect with backoff); give up after ~60 s."""
        deadline = time.monotonic() + 60.0
        attempt = 0
        while True:
            try:
                return await call()
            except _UNREACHABLE as exc:
                if time.monotonic() > deadline:
                    raise
                self.log.warning(
                    "redis unreachable, retrying", what=what, error=str(exc)
                )
                await self._pause(attempt)
                attempt += 1

    # --- taking runs ----------------------------------------------------------------

    def _spawn(self, run_id: str, thread_id: str, entry_id: str) -> None:
        task = asyncio.create_task(self._execute(run_id, thread_id, entry_id))
        self._tasks.add(task)
        if len(self._tasks) >= self.concurrency:
            self._capacity.clear()

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if len(self._tasks) < self.concurrency:
                self._capacity.set()

        task.add_done_callback(done)

    def _take(self, entries: list[tuple[str, dict[str, str] | None]]) -> list[str]:
        """Start the runs of stream entries; return the ids of malformed entries."""
        bad: list[str] = []
        for entry_id, fields in entries:
            if not fields or not fields.get("run"):
                bad.append(entry_id)
                continue
            run_id = fields["run"]
            if run_id in self._active:
                continue  # reclaimed our own live run: it is running here
            self._spawn(run_id, fields.get("thread", ""), entry_id)
        return bad

    async def _drop(self, entry_ids: list[str]) -> None:
        if entry_ids:
            await self.client.xack(self.stream, keys.CONSUMER_GROUP, *entry_ids)
            await self.client.xdel(self.stream, *entry_ids)

    async def _read_loop(self) -> None:
        try:
            await self._read_entries()
        finally:
            self._reading = False  # not ready once this loop ends, however it ends

    async def _read_entries(self) -> None:
        attempt = 0
        await self._retrying("creating the consumer group", self._ensure_group)
        while not self._stopping.is_set():
            await self._capacity.wait()
            free = self.concurrency - len(self._tasks)
            try:
                reply = await self.client.xreadgroup(
                    keys.CONSUMER_GROUP,
                    self.name,
                    {self.stream: ">"},
                    count=max(1, free),
                    block=2000,
                )
                attempt = 0
                self._reading = True
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._retrying("creating the consumer group", self._ensure_group)
                continue
            except CONNECTION_ERRORS as exc:
                self._reading = False
                self.log.warning("redis unreachable, reconnecting", error=str(exc))
                await self._pause(attempt)
                attempt += 1
                continue
            for _stream, entries in reply or []:
                bad = self._take(entries)
                await self._drop(bad)

    async def _reclaim_loop(self) -> None:
        interval = max(0.05, self.lease_ttl / 4)
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            try:
                free = self.concurrency - len(self._tasks)
                if free > 0:
                    reply = await self.client.xautoclaim(
                        self.stream,
                        keys.CONSUMER_GROUP,
                        self.name,
                        min_idle_time=max(1, int(self.lease_ttl * 500)),
                        start_id="0-0",
                        count=free,
                    )
                    bad = self._take(reply[1])
                    deleted = list(reply[2]) if len(reply) > 2 else []
                    await self._drop(bad + deleted)
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    self.log.error("reclaim failed", error=str(exc))
            except CONNECTION_ERRORS as exc:
                self.log.warning("reclaim: redis unreachable", error=str(exc))

    async def _housekeeping(self) -> None:
        """Forget expired runs; remove consumers of dead workers that hold nothing."""
        await self._prune(keys=[self.stream], args=[self.base, 1000])
        idle_limit = max(600_000, int(self.lease_ttl * 20_000))
        for consumer in await self.client.xinfo_consumers(
            self.stream, keys.CONSUMER_GROUP
        ):
            if (
                consumer["name"] != self.name
                and int(consumer["pending"]) == 0
                and int(consumer["idle"]) > idle_limit
            ):
                await self.client.xgroup_delconsumer(
                    self.stream, keys.CONSUMER_GROUP, consumer["name"]
                )

    async def _schedule_loop(self) -> None:
        """Move delayed runs to the stream when due; woken early by ``wake``."""
        # expired runs are forgotten at the latest half a retention after expiry
        housekeeping_every = max(1.0, min(30.0, self.retention_ms / 2000))
        next_housekeeping = time.monotonic() + housekeeping_every
        while not self._stopping.is_set():
            try:
                _moved, wait_ms = await self._promote(
                    keys=[self.stream], args=[self.base, 500]
                )
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + housekeeping_every
                    await self._housekeeping()
                # a lost ``wake`` costs at most a second
                timeout = 1.0 if int(wait_ms) < 0 else min(1.0, int(wait_ms) / 1000)
            except CONNECTION_ERRORS as exc:
                self.log.warning("scheduler: redis unreachable", error=str(exc))
                timeout = 0.5
            except ResponseError as exc:  # e.g. NOGROUP before the first read
                self.log.debug("scheduler: redis refused", error=str(exc))
                timeout = 0.5
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def _signal_loop(self) -> None:
        attempt = 0
        channel = keys.signals(self.prefix, self.queue)
        while not self._stopping.is_set():
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(channel)
                attempt = 0
                self._wake.set()  # runs made due while we were not listening
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    kind, _, rest = str(message["data"]).partition(" ")
                    if kind == "wake":
                        self._wake.set()
                    else:
                        run_id, _, by = rest.partition(" ")
                        self._on_signal(run_id, kind, by)
            except CONNECTION_ERRORS as exc:
                self.log.warning("signals: redis unreachable", error=str(exc))
                await self._pause(attempt)
                attempt += 1
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # --- signals --------------------------------------------------------------------

    def _stop_now(self, active: _Active, reason: str) -> None:
        if active.stop_reason is None:
            active.stop_reason = reason
        if active.inner is not None and not active.inner.done():
            active.inner.cancel()

    def _on_signal(self, run_id: str, kind: str, by: str = "") -> None:
        active = self._active.get(run_id)
        if active is None:
            return
        active.signal_by = active.signal_by or by
        if kind == "interrupt":
            active.stop_at_step = "interrupt"
        elif kind in ("cancel", "rollback"):
            self._stop_now(active, kind)

    def _on_lost(self, run_id: str) -> None:
        active = self._active.get(run_id)
        if active is not None:
            active.stop_reason = "lost"
            self._stop_now(active, "lost")

    # --- one run --------------------------------------------------------------------

    async def _start(
        self, run_id: str, thread_id: str, entry_id: str, lease_id: str
    ) -> Any:
        """Take the thread's lease and claim the run: one round trip (``START``)."""
        keys_ = [
            self.stream,
            thread_lease(self.prefix, thread_id),
            thread_fence_counter(self.prefix, thread_id),
        ]
        args: list[str | int] = [
            self.base,
            run_id,
            entry_id,
            self.name,
            lease_id,
            int(self.lease_ttl * 1000),
            self.retention_ms,
        ]
        for attempt in range(3):
            if self.cluster:
                got = await self._start_in_two(run_id, thread_id, entry_id, lease_id)
            else:
                got = await self._start_script(keys=keys_, args=args)
            if got[0] != "held":
                return got
            holder, pttl = str(got[1]), int(got[2])
            if holder != run_id:
                if not self.cluster or attempt == 2:
                    return got
                # On a Cluster a finished run releases its lease a round trip after
                # it handed the thread to this run: look again shortly.
                await asyncio.sleep(0.01 * 2**attempt)
                continue
            # A live holder renews every ttl/3, so its lease never runs this low; a
            # holder that stopped renewing is waited out once, then replaced.
            if pttl > self.lease_ttl * 500:
                return got
            await asyncio.sleep(max(0, pttl) / 1000 + 0.02)
        return got

    async def _start_in_two(
        self, run_id: str, thread_id: str, entry_id: str, lease_id: str
    ) -> list[Any]:
        """``START`` as two one-slot calls (Redis Cluster): take the thread's lease,
        then claim the run; give the lease back when the run is not to be run."""
        lease = thread_lease(self.prefix, thread_id)
        got = await self._lease_acquire(
            keys=[lease, thread_fence_counter(self.prefix, thread_id)],
            args=[lease_id, run_id, int(self.lease_ttl * 1000), self.retention_ms],
        )
        if int(got[0]) == 0:
            return ["held", got[1], got[2]]
        try:
            claim = await self._claim(
                keys=[self.stream],
                args=[self.base, run_id, entry_id, self.name, lease_id],
            )
        except BaseException:
            # the run was not claimed: give the thread back now, not after lease_ttl
            with contextlib.suppress(Exception):
                await self._lease_release(keys=[lease], args=[lease_id])
            raise
        if claim[0] != "run":
            await self._lease_release(keys=[lease], args=[lease_id])
            return list(claim)
        return [claim[0], got[1], *claim[1:]]

    async def _execute(self, run_id: str, thread_id: str, entry_id: str) -> None:
        log = self.log.bind(run_id=run_id, thread_id=thread_id)
        lease_id = uuid.uuid4().hex
        try:
            claim = await self._start(run_id, thread_id, entry_id, lease_id)
        except REDIS_FAILURES as exc:
            log.warning("could not start run, left for reclaim", error=str(exc))
            return
        if claim[0] != "run":
            if claim[0] == "held":
                log.debug("thread held by a live lease; left for later")
            return
        fence = int(claim[1])
        graph, _thread, input_text, attempts, max_attempts, sig, sig_by = claim[2:9]
        attempts, max_attempts = int(attempts), int(max_attempts)
        log = log.bind(graph=graph, attempt=attempts)
        active = _Active(run_id, thread_id, lease_id, graph, attempts, signal_by=sig_by)
        self._active[run_id] = active
        self.heartbeat.add(run_id, thread_id, lease_id)
        token = FencingToken(lease_id, fence)
        mode, result, error = "success", "", ""
        try:
            if sig in ("cancel", "rollback", "interrupt"):
                active.stop_reason = sig
                raise _StopAtStep
            log.info("run started")
            active.inner = asyncio.create_task(
                self._invoke(active, graph, thread_id, input_text, token)
            )
            value, interrupted = await active.inner
            mode = "interrupted" if interrupted else "success"
            result = dumps(value)
        except (asyncio.CancelledError, _StopAtStep) as exc:
            reason = active.stop_reason or active.stop_at_step
            if reason is None:  # not our doing: the worker task itself is cancelled
                reason = "handback"
                if isinstance(exc, asyncio.CancelledError):
                    self._stop_now(active, "handback")
            mode, error = await self._stopped(active, reason, active.signal_by, log)
        except FencedWriteError as exc:
            mode, error = "lost", str(exc)
        except POISON as exc:
            mode, error = "dead", f"poison: {type(exc).__name__}: {exc}"
        except NON_RETRYABLE as exc:
            mode, error = "error", f"{type(exc).__name__}: {exc}"
            active.error_node = failing_node(exc)
        except _UNREACHABLE as exc:
            mode, error = "handback", f"redis unreachable: {exc}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            active.error_node = failing_node(exc)
            mode = "retry" if attempts < max_attempts else "dead"
            if mode == "dead":
                error = f"failed {attempts} times; last error: {error}"
        finally:
            self.heartbeat.remove(run_id)
            self._active.pop(run_id, None)
        await self._end(active, entry_id, mode, result, error, log)

    async def _stopped(
        self, active: _Active, reason: str, by: str, log: Any
    ) -> tuple[str, str]:
        if reason == "lost":
            return "lost", "lease lost"
        if reason == "handback":
            return "handback", ""
        if reason == "cancel":
            return "cancelled", "cancelled"
        if reason == "interrupt":
            return "interrupted", f"interrupted by run {by}" if by else "interrupted"
        # rollback: delete what this run wrote, while the lease is still ours
        await self._retrying(
            "rolling back", lambda: self.saver.adelete_for_runs([active.run_id])
        )
        log.info("run rolled back")
        return "cancelled", f"rolled back by run {by}" if by else "rolled back"

    async def _end(
        self,
        active: _Active,
        entry_id: str,
        mode: str,
        result: str,
        error: str,
        log: Any,
    ) -> None:
        if mode == "lost":
            log.warning("lease lost; giving the run up to its new holder", error=error)
            return
        backoff_ms = 0
        if mode == "retry":
            backoff_ms = int(
                backoff_delay(active.attempts, self.backoff_base, self.backoff_max)
                * 1000
            )
        retention = self.dead_retention_ms if mode == "dead" else self.retention_ms
        args: list[str | int] = [
            self.base,
            active.run_id,
            active.lease_id,
            mode,
            entry_id,
            result,
            error,
            retention,
            backoff_ms,
            DLQ_MAXLEN,
            active.error_node,
        ]
        try:
            lease = thread_lease(self.prefix, active.thread_id)
            if self.cluster:
                # END as two one-slot calls. Record the end first: until then the
                # lease keeps other workers off a run that is not over yet.
                verdict = await self._retrying(
                    "finishing a run",
                    lambda: self._finish(keys=[self.stream], args=args),
                )
                await self._retrying(
                    "releasing a lease",
                    lambda: self._lease_release(keys=[lease], args=[active.lease_id]),
                )
            else:
                verdict = await self._retrying(
                    "finishing a run",
                    lambda: self._end_script(keys=[self.stream, lease], args=args),
                )
        except _UNREACHABLE as exc:
            log.error(
                "could not record the run's end; it will be reclaimed", error=str(exc)
            )
            return
        self.processed += 1
        if verdict == "superseded":
            log.warning("run was taken over; its new holder finishes it")
        elif mode in ("retry", "dead", "error"):
            log.warning(
                "run failed",
                outcome=verdict,
                error=error,
                node=active.error_node or None,
                backoff_ms=backoff_ms,
            )
        else:
            log.info("run ended", outcome=verdict)

    async def _event(self, run_id: str, kind: str, data: Any) -> None:
        await self.client.xadd(
            keys.run_events(self.prefix, self.queue, run_id),
            {"kind": kind, "data": dumps(data)},
            maxlen=10_000,
            approximate=True,
        )

    async def _invoke(
        self,
        active: _Active,
        graph_ref: str,
        thread_id: str,
        input_text: str,
        token: FencingToken,
    ) -> tuple[Any, bool]:
        target = self.resolve(graph_ref)
        payload = decode_input(input_text)
        if not isinstance(target, Pregel):
            value = target(payload)
            if inspect.isawaitable(value):
                value = await value
            return value, False
        graph = target.copy(update={"checkpointer": self.saver})
        config = cast(
            RunnableConfig,
            {
                "configurable": {"thread_id": thread_id, FENCE_CONFIG_KEY: token},
                "run_id": uuid.UUID(active.run_id),
                "metadata": {"run_id": active.run_id, "graph": graph_ref},
            },
        )
        plain = cast(RunnableConfig, {"configurable": {"thread_id": thread_id}})
        state = await graph.aget_state(plain)
        if state.metadata and state.metadata.get("run_id") == active.run_id:
            # A redelivery: continue from the last checkpoint. Its committed
            # pending writes are applied, not executed again; a finished run
            # streams nothing. (``state.next`` cannot tell: it omits tasks whose
            # writes are stored but not yet folded into a checkpoint.)
            payload = None
        interrupted = False
        stream: Any = graph.astream(
            payload, config, stream_mode=["updates", "custom"], durability="sync"
        )
        async with contextlib.aclosing(stream):
            async for mode, chunk in stream:
                if mode == "updates" and isinstance(chunk, dict):
                    interrupted = interrupted or "__interrupt__" in chunk
                await self._event(active.run_id, str(mode), chunk)
                if active.stop_at_step is not None:
                    raise _StopAtStep
        state = await graph.aget_state(plain)
        return state.values, interrupted or bool(state.interrupts)
