"""The worker: takes runs from the queue and runs their graphs, crash-safe.

One :class:`Worker` per process runs up to ``concurrency`` runs at once (asyncio). It
reads new runs with ``XREADGROUP BLOCK`` (no polling), takes the thread's lease before
a run starts (one run per thread at a time), renews leases from a heartbeat thread the
run cannot starve, and passes the lease as the fencing token on every checkpoint write.
Runs whose worker died are taken back with ``XAUTOCLAIM`` once their lease lapsed and
resume from their last checkpoint. Failures retry with exponential backoff up to the
run's ``max_attempts``, then go to the dead-letter stream with the reason; poison
(unknown graph, undecodable input) goes there at once.

This module keeps scheduling, concurrency and each run's life cycle; what a run reads
and writes in Redis goes through :class:`~dialogllm.queue.store.QueueStore`, and the
graph itself runs in :mod:`dialogllm.queue.execution`.

The rule a reader must not break: a worker that lost a run's lease stops working on it
and changes nothing about it; whoever holds the lease now finishes it.

>>> worker = Worker("redis://127.0.0.1:6379/0", concurrency=8, lease_ttl=30)
>>> await worker.run()            # until SIGTERM/SIGINT or worker.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from langgraph.store.base import BaseStore
from redis.exceptions import RedisError, ResponseError

from dialogllm.backoff import backoff_delay as shared_backoff
from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.config import get_settings
from dialogllm.errors import FencedWriteError, RedisUnavailableError
from dialogllm.leases import FencingToken
from dialogllm.loader import Resolver, import_resolver
from dialogllm.logging import get_logger
from dialogllm.queue.client import (
    DEFAULT_DEAD_RETENTION,
    DEFAULT_QUEUE,
    DEFAULT_RETENTION,
    Queue,
)
from dialogllm.queue.crons import CronScheduler
from dialogllm.queue.execution import (
    NON_RETRYABLE,
    POISON,
    GraphExecution,
    StopAtStep,
    failing_node,
)
from dialogllm.queue.heartbeat import Heartbeat
from dialogllm.queue.models import dumps
from dialogllm.queue.store import (
    ClaimedRun,
    Delivery,
    NotStarted,
    QueueStore,
    RunEnd,
    StartResult,
)
from dialogllm.redis.clients import async_client, sync_client
from dialogllm.redis.errors import OUTAGE_ERRORS, REDIS_FAILURES
from dialogllm.redis.url import resolve_url, using
from dialogllm.store import (
    AsyncRedisStore,
    configured_store_options,
    store_options,
)

__all__ = ["Worker", "backoff_delay"]

T = TypeVar("T")


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait before attempt ``attempt + 1`` of a run: the project's
    backoff (:func:`dialogllm.backoff.backoff_delay`) with 20 % jitter.

    >>> 0.8 <= backoff_delay(1, 1.0, 60.0) <= 1.0
    True
    """
    return shared_backoff(attempt, base_s=base, max_s=cap, jitter=0.2)


_UNREACHABLE: tuple[type[BaseException], ...] = (
    *OUTAGE_ERRORS,
    RedisUnavailableError,
)


class _Slots:
    """The worker's ``concurrency`` as a hard limit: a slot is reserved before Redis
    is asked for a run (``XREADGROUP`` or ``XAUTOCLAIM`` for as many entries as
    slots were reserved), kept by the run's task until it ends, and given back at
    once when fewer entries came back than were reserved. Used on the event loop
    only."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._freed = asyncio.Event()

    async def reserve(self) -> int:
        """Wait for a free slot, then reserve every free slot; how many."""
        while self.used >= self.total:
            self._freed.clear()
            await self._freed.wait()
        n = self.total - self.used
        self.used += n
        return n

    def release(self, n: int = 1) -> None:
        """Give ``n`` reserved slots back."""
        self.used -= n
        if self.used < 0:  # pragma: no cover - a bug in the worker
            raise RuntimeError("more slots released than reserved")
        if n > 0:
            self._freed.set()


@dataclass
class _Reserved:
    """Slots reserved for the runs of one ask of Redis, not yet given to a run."""

    slots: int


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
            user in the URL); default: :func:`dialogllm.redis.resolve_url` (the
            ``DIALOGLLM_REDIS_URL`` setting, else the embedded Redis). Everything
            the runs do without an explicit URL (LLM metrics, rate limits) uses it.
        key_prefix: the prefix shared with the queue and the checkpointer.
        queue: the queue's name.
        concurrency: runs at once in this process.
        resolve: turns a run's graph reference into a graph (default:
            :func:`~dialogllm.loader.import_resolver`).
        lease_ttl: seconds a lease lives without renewal; the heartbeat renews it
            every third of that; a dead worker's runs are reclaimed after about
            ``1.5 * lease_ttl``.
        grace: seconds a stopping worker lets runs reach their next step before it
            hands them back.
        retention / dead_retention: seconds finished / dead runs stay readable.
        backoff_base / backoff_max: retry delays (seconds).
        checkpoint_ttl: expire threads' checkpoints (seconds after the last write).
        memory: the long-term memory store the graphs get (LangGraph's ``store``);
            default: an :class:`~dialogllm.store.AsyncRedisStore` on the worker's
            Redis and key prefix, with ``memory_config``; while the worker runs,
            it sweeps that store's expired items when its ``ttl`` has
            ``sweep_interval_minutes``.
        memory_config: a ``langgraph.json`` ``"store"`` section (``index``,
            ``ttl``) for the default store; references resolve from
            ``memory_base``. Default: the ``"store"`` of the nearest
            ``langgraph.json``, the file graph names resolve from
            (:func:`~dialogllm.store.configured_store_options`).
        name: this consumer's name (default: host-pid-random).
        crons: fire the queue's due crons too (a :class:`CronScheduler`; every
            worker may: each tick fires once however many race for it).
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
        memory: BaseStore | None = None,
        memory_config: Mapping[str, Any] | None = None,
        memory_base: Path | None = None,
        name: str | None = None,
        cluster: bool | None = None,
        crons: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if lease_ttl <= 0:
            raise ValueError("lease_ttl must be > 0")
        settings = get_settings()
        self.url = resolve_url(redis_url)
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
        self.log = get_logger("dialogllm.queue.worker", worker=self.name, queue=queue)
        # Clients connect on first use: building them here does no I/O.
        self.client: Any = async_client(self.url, decode=True, cluster=self.cluster)
        self.bclient: Any = async_client(self.url, decode=False, cluster=self.cluster)
        self.store = QueueStore(
            self.client, prefix=self.prefix, queue=queue, cluster=self.cluster
        )
        self.saver = AsyncRedisSaver(
            self.bclient, key_prefix=self.prefix, ttl=self.checkpoint_ttl
        )
        self._own_memory: AsyncRedisStore | None = None
        if memory is None:
            options = (
                configured_store_options()
                if memory_config is None
                else store_options(memory_config, base=memory_base)
            )
            memory = self._own_memory = AsyncRedisStore(
                self.bclient, key_prefix=self.prefix, **options
            )
        self.memory: BaseStore = memory
        self.execution = GraphExecution(
            self.resolve, self.saver, self.store, self.memory
        )
        self.crons: CronScheduler | None = None
        if crons:
            producer = Queue(
                self.client,
                key_prefix=self.prefix,
                queue=queue,
                retention=retention,
                dead_retention=dead_retention,
            )
            self.crons = CronScheduler(producer, self.saver, name=self.name)
        # The heartbeat's client and thread exist while run() runs: a Cluster client
        # connects when built, and the thread needs the running loop.
        self._hb_client: Any = None
        self._heartbeat: Heartbeat | None = None
        self._active: dict[str, _Active] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = _Slots(concurrency)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._reading = False
        self.processed = 0

    @property
    def ready(self) -> bool:
        """Whether the worker takes runs now: its last read of the queue succeeded
        and it is not shutting down (readiness, as opposed to liveness)."""
        return self._reading and not self._stopping.is_set()

    @property
    def heartbeat(self) -> Heartbeat:
        """The thread that renews this worker's leases (while :meth:`run` runs)."""
        if self._heartbeat is None:
            raise RuntimeError("the worker is not running")
        return self._heartbeat

    # --- life cycle -----------------------------------------------------------------

    def stop(self) -> None:
        """Stop taking runs; running ones get ``grace`` seconds, then are handed back.
        Safe to call from a signal handler."""
        self._stopping.set()

    async def run(self, *, install_signal_handlers: bool = True) -> None:
        """Work until :meth:`stop` (or SIGTERM/SIGINT), then shut down gracefully.

        >>> await Worker(url).run()
        """
        # everything the runs do without an explicit URL (LLM metrics and rate
        # limits included) goes to this worker's Redis
        with using(self.url, cluster=self.cluster):
            await self._work(install_signal_handlers)

    async def _work(self, install_signal_handlers: bool) -> None:
        loop = asyncio.get_running_loop()
        # a cluster client connects when built: off the loop, retried like any call
        self._hb_client = await self._retrying(
            "connecting the heartbeat",
            lambda: asyncio.to_thread(
                sync_client, self.url, decode=False, cluster=self.cluster
            ),
        )
        self._heartbeat = Heartbeat(
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
            asyncio.create_task(self._schedule_loop(), name="schedule"),
            asyncio.create_task(self._signal_loop(), name="signals"),
        ]
        if self.crons is not None:
            loops.append(asyncio.create_task(self.crons.run(), name="crons"))
        if self._own_memory is not None:
            self._own_memory.start_configured_ttl_sweeper()
        self.log.info("worker started", concurrency=self.concurrency)
        try:
            await self._stopping.wait()
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            if self._own_memory is not None:
                await self._own_memory.stop_ttl_sweeper()
            await self._shutdown()
            for sig in installed:
                loop.remove_signal_handler(sig)
            self.heartbeat.stop()
            with contextlib.suppress(RedisError, OSError):
                await self.store.forget_consumer(self.name)
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

    async def _pause(self, attempt: int) -> None:
        """Wait before reconnecting: the same shape as the clients' own retries."""
        await asyncio.sleep(shared_backoff(attempt + 1, base_s=0.05, max_s=2.0))

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

    def _spawn(
        self, run_id: str, thread_id: str, entry_id: str, reserved: _Reserved
    ) -> None:
        """Start a run's task in one of the ``reserved`` slots; the slot is the
        task's now, given back when the task ends."""
        reserved.slots -= 1
        task = asyncio.create_task(self._execute(run_id, thread_id, entry_id))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self._slots.release()

        task.add_done_callback(done)

    def _take(self, deliveries: list[Delivery], reserved: _Reserved) -> list[str]:
        """Start the runs of stream entries, each in a reserved slot; return the ids
        of malformed entries."""
        bad: list[str] = []
        for delivery in deliveries:
            if not delivery.run_id:
                bad.append(delivery.entry_id)
                continue
            if delivery.run_id in self._active:
                continue  # reclaimed our own live run: it is running here
            if reserved.slots <= 0:  # pragma: no cover - Redis sent more than asked
                self.log.error("more entries than slots; left for reclaim")
                continue
            self._spawn(
                delivery.run_id, delivery.thread_id, delivery.entry_id, reserved
            )
        return bad

    async def _read_loop(self) -> None:
        try:
            await self._read_entries()
        finally:
            self._reading = False  # not ready once this loop ends, however it ends

    async def _read_entries(self) -> None:
        """Take runs while the worker has free slots: reclaims every
        ``lease_ttl / 4``, new entries in between.

        One loop asks Redis for runs, and only for as many as it reserved slots
        for, so a reclaim and a blocking read can never both fill the same free
        slots (``concurrency`` is a hard limit). The read blocks no longer than the
        next reclaim is due, so reclaims keep their schedule."""
        interval = max(0.05, self.lease_ttl / 4)
        attempt = 0
        group_ready = False
        next_reclaim = time.monotonic() + interval
        while not self._stopping.is_set():
            reserved = _Reserved(await self._slots.reserve())
            try:
                if time.monotonic() >= next_reclaim:
                    next_reclaim = time.monotonic() + interval
                    await self._reclaim(reserved)
                    if reserved.slots == 0:
                        continue
                block_ms = int((next_reclaim - time.monotonic()) * 1000)
                try:
                    if not group_ready:
                        await self.store.ensure_group()
                        group_ready = True
                    deliveries = await self.store.read(
                        self.name,
                        count=reserved.slots,
                        block_ms=max(1, min(2000, block_ms)),
                    )
                except REDIS_FAILURES as exc:
                    # any error reply (READONLY in a failover, WRONGTYPE, OOM) or
                    # outage: not ready, back off, try again; never give up
                    self._reading = False
                    self._read_failed(exc, attempt)
                    await self._pause(min(attempt, 8))
                    attempt += 1
                    continue
                if deliveries is None:  # the consumer group is gone: make it again
                    group_ready = False
                    continue
                if attempt:
                    self.log.info("reading the queue again", failed_attempts=attempt)
                attempt = 0
                self._reading = True
                await self.store.drop(self._take(deliveries, reserved))
            finally:
                self._slots.release(reserved.slots)

    def _read_failed(self, exc: BaseException, attempt: int) -> None:
        """Log a failed read once per episode (its first attempt), quietly after."""
        log = self.log.warning if attempt == 0 else self.log.debug
        log(
            "queue unreadable, retrying",
            kind=type(exc).__name__,
            error=str(exc),
            attempt=attempt + 1,
        )

    async def _reclaim(self, reserved: _Reserved) -> None:
        """Take over up to ``reserved.slots`` entries whose worker died or stalled
        (``XAUTOCLAIM``), each started run in one of those slots."""
        try:
            reclaimed = await self.store.reclaim(
                self.name,
                min_idle_ms=max(1, int(self.lease_ttl * 500)),
                count=reserved.slots,
            )
            if reclaimed is not None:
                bad = self._take(reclaimed.deliveries, reserved)
                await self.store.drop(bad + reclaimed.deleted)
        except ResponseError as exc:
            self.log.error("reclaim failed", error=str(exc))
        except OUTAGE_ERRORS as exc:
            self.log.warning("reclaim: redis unreachable", error=str(exc))

    async def _housekeeping(self) -> None:
        """Forget expired runs; remove consumers of dead workers that hold nothing."""
        await self.store.housekeeping(
            self.name, idle_limit_ms=max(600_000, int(self.lease_ttl * 20_000))
        )

    async def _schedule_loop(self) -> None:
        """Move delayed runs to the stream when due; woken early by ``wake``."""
        # expired runs are forgotten at the latest half a retention after expiry
        housekeeping_every = max(1.0, min(30.0, self.retention_ms / 2000))
        next_housekeeping = time.monotonic() + housekeeping_every
        while not self._stopping.is_set():
            try:
                promoted = await self.store.promote(500)
                if time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + housekeeping_every
                    await self._housekeeping()
                # a lost ``wake`` costs at most a second
                due = promoted.next_due_ms
                timeout = 1.0 if due is None else min(1.0, due / 1000)
            except OUTAGE_ERRORS as exc:
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

        def subscribed() -> None:
            nonlocal attempt
            attempt = 0
            self._wake.set()  # runs made due while we were not listening

        while not self._stopping.is_set():
            try:
                async with contextlib.aclosing(
                    self.store.signals(on_subscribed=subscribed)
                ) as signals:
                    async for message in signals:
                        if message.kind == "wake":
                            self._wake.set()
                        else:
                            self._on_signal(message.run_id, message.kind, message.by)
            except REDIS_FAILURES as exc:
                log = self.log.warning if attempt == 0 else self.log.debug
                log("signals: redis failing", kind=type(exc).__name__, error=str(exc))
                await self._pause(min(attempt, 8))
                attempt += 1

    # --- signals --------------------------------------------------------------------

    def _stop_now(self, active: _Active, reason: str) -> None:
        if active.stop_reason is None:
            active.stop_reason = reason
        # LangGraph can absorb a task's cancellation while a sync node runs in its
        # executor (the node's future takes it); the run then still stops at its
        # next step
        if active.stop_at_step is None:
            active.stop_at_step = reason
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
    ) -> StartResult:
        """Take the thread's lease and claim the run, waiting out a holder that
        stopped renewing its lease."""
        for attempt in range(3):
            got = await self.store.start(
                run_id=run_id,
                thread_id=thread_id,
                entry_id=entry_id,
                consumer=self.name,
                lease_id=lease_id,
                lease_ttl_ms=int(self.lease_ttl * 1000),
                counter_ttl_ms=self.retention_ms,
                dead_retention_ms=self.dead_retention_ms,
            )
            if not isinstance(got, NotStarted) or got.verdict != "held":
                return got
            if got.holder != run_id:
                if not self.cluster or attempt == 2:
                    return got
                # On a Cluster a finished run releases its lease a round trip after
                # it handed the thread to this run: look again shortly.
                await asyncio.sleep(0.01 * 2**attempt)
                continue
            # A live holder renews every ttl/3, so its lease never runs this low; a
            # holder that stopped renewing is waited out once, then replaced.
            if got.pttl_ms > self.lease_ttl * 500:
                return got
            await asyncio.sleep(max(0, got.pttl_ms) / 1000 + 0.02)
        return got

    async def _execute(self, run_id: str, thread_id: str, entry_id: str) -> None:
        log = self.log.bind(run_id=run_id, thread_id=thread_id)
        lease_id = uuid.uuid4().hex
        try:
            claim = await self._start(run_id, thread_id, entry_id, lease_id)
        except REDIS_FAILURES as exc:
            log.warning("could not start run, left for reclaim", error=str(exc))
            return
        if not isinstance(claim, ClaimedRun):
            if claim.verdict == "held":
                log.debug("thread held by a live lease; left for later")
            elif claim.verdict == "poison":
                log.error("run record corrupt; dead-lettered", reason=claim.reason)
            return
        attempts, max_attempts = claim.attempts, claim.max_attempts
        log = log.bind(graph=claim.graph, attempt=attempts)
        active = _Active(
            run_id,
            thread_id,
            lease_id,
            claim.graph,
            attempts,
            signal_by=claim.signal_by,
        )
        self._active[run_id] = active
        self.heartbeat.add(run_id, thread_id, lease_id)
        token = FencingToken(lease_id, claim.fence)
        mode, result, error = "success", "", ""
        try:
            if claim.signal in ("cancel", "rollback", "interrupt"):
                active.stop_reason = claim.signal
                raise StopAtStep
            log.info("run started")
            active.inner = asyncio.create_task(
                self.execution.run(
                    run_id,
                    claim.graph,
                    thread_id,
                    claim.input,
                    token,
                    stop_requested=lambda: active.stop_at_step is not None,
                    options=claim.options,
                    fresh=claim.fresh,
                )
            )
            value, interrupted = await active.inner
            mode = "interrupted" if interrupted else "success"
            result = dumps(value)
        except (asyncio.CancelledError, StopAtStep) as exc:
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
            "rolling back", lambda: self.execution.rollback(active.run_id)
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
        end = RunEnd(
            run_id=active.run_id,
            thread_id=active.thread_id,
            lease_id=active.lease_id,
            entry_id=entry_id,
            mode=mode,
            retention_ms=(
                self.dead_retention_ms if mode == "dead" else self.retention_ms
            ),
            result=result,
            error=error,
            backoff_ms=backoff_ms,
            error_node=active.error_node,
        )
        try:
            finished = await self.store.end(end, retrying=self._retrying)
        except _UNREACHABLE as exc:
            log.error(
                "could not record the run's end; it will be reclaimed", error=str(exc)
            )
            return
        except ResponseError as exc:  # e.g. a key someone replaced with another type
            log.error(
                "redis refused to record the run's end; it will be reclaimed",
                error=str(exc),
            )
            return
        self.processed += 1
        if finished.superseded:
            log.warning("run was taken over; its new holder finishes it")
        elif mode in ("retry", "dead", "error"):
            log.warning(
                "run failed",
                outcome=finished.verdict,
                error=error,
                node=active.error_node or None,
                backoff_ms=backoff_ms,
            )
        else:
            log.info("run ended", outcome=finished.verdict)
