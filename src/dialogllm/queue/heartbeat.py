"""The heartbeat: renews a worker's thread leases from a thread of its own.

The heartbeat runs in an OS thread with its own (sync) Redis connection, so a run that
hogs the event loop (a CPU-bound node, a blocking call) cannot starve it. Every
``interval`` it renews each lease (only while the lease still holds that worker's id,
checked in Lua), marks the run alive in its record (``beat``, from which a reclaim
measures how long the run stood still), and reads the run's ``signal`` field, a
fallback for a missed pub/sub message, all in one call to its
:class:`~dialogllm.queue.store.HeartbeatStore`. It reports back to the event loop with
``call_soon_threadsafe``.

The rule a reader must not break: a lease that cannot be renewed (taken over, or Redis
unreachable for longer than the lease) is reported lost, and the worker stops the run's
writes; fencing refuses them anyway.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dialogllm.logging import get_logger
from dialogllm.queue.store import HeartbeatStore, HeldLease
from dialogllm.redis.clients import SyncClient
from dialogllm.redis.errors import REDIS_FAILURES

__all__ = ["Heartbeat"]

_log = get_logger("dialogllm.queue.heartbeat")


@dataclass
class _Held:
    thread_id: str
    lease_id: str
    renewed: float  # time.monotonic() of the last successful renewal


class Heartbeat(threading.Thread):
    """Renew leases every ``interval`` seconds; report lost leases and signals.

    >>> hb = Heartbeat(client, prefix="app", queue="default", ttl=30.0,
    ...                loop=asyncio.get_running_loop(), on_lost=..., on_signal=...)
    >>> hb.start(); hb.add("run-1", "thread-1", "lease-id")
    """

    def __init__(
        self,
        client: SyncClient,
        *,
        prefix: str,
        queue: str,
        ttl: float,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
        on_signal: Callable[[str, str], None],
        interval: float | None = None,
    ) -> None:
        super().__init__(name="dialogllm-heartbeat", daemon=True)
        self.client = client
        self.prefix = prefix
        self.queue = queue
        self.ttl = ttl
        self.interval = interval if interval is not None else ttl / 3
        self.loop = loop
        self.on_lost = on_lost
        self.on_signal = on_signal
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.store = HeartbeatStore(client, prefix=prefix, queue=queue)

    def add(self, run_id: str, thread_id: str, lease_id: str) -> None:
        """Start renewing the lease ``lease_id`` on ``thread_id`` for ``run_id``."""
        with self._lock:
            self._held[run_id] = _Held(thread_id, lease_id, time.monotonic())

    def remove(self, run_id: str) -> None:
        """Stop renewing the run's lease (it finished or was given up). The worker
        calls this before it releases the lease, so a renewal in flight that finds
        the lease released is not mistaken for a takeover (see :meth:`tick`)."""
        with self._lock:
            self._held.pop(run_id, None)

    def _drop(self, run_id: str, held: _Held) -> bool:
        """Stop renewing ``held`` if it is still the run's lease; whether it was.

        ``False`` means the worker removed the run (or added it again under a new
        lease) while the renewal was in flight: a failed renewal of a lease the
        worker already let go is no news, and must not touch the new one."""
        with self._lock:
            if self._held.get(run_id) is not held:
                return False
            del self._held[run_id]
            return True

    def stop(self) -> None:
        """End the thread after its current tick."""
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.tick()

    def _report(self, callback: Callable[..., None], *args: str) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the worker is gone
            self._halt.set()

    def tick(self) -> None:
        """Renew every held lease once (one pipelined round trip)."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return
        now = time.monotonic()
        try:
            beats = self.store.beat(
                [HeldLease(run_id, h.thread_id, h.lease_id) for run_id, h in held],
                ttl_ms=int(self.ttl * 1000),
            )
        except REDIS_FAILURES as exc:
            for run_id, h in held:
                if now - h.renewed >= self.ttl and self._drop(run_id, h):
                    _log.warning(
                        "lease lapsed while Redis was unreachable",
                        run_id=run_id,
                        thread_id=h.thread_id,
                        error=str(exc),
                    )
                    self._report(self.on_lost, run_id)
            return
        for (run_id, h), beat in zip(held, beats, strict=True):
            if beat.renewed:
                h.renewed = now
            else:
                # A lease released at a normal run end (removed here first) is not
                # a takeover: only a lease the worker still holds is reported lost.
                if self._drop(run_id, h):
                    _log.warning(
                        "lease taken over", run_id=run_id, thread_id=h.thread_id
                    )
                    self._report(self.on_lost, run_id)
                continue
            if beat.signal:
                self._report(self.on_signal, run_id, beat.signal)
