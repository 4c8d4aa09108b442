"""What must happen after a run ends, whichever API process is alive by then: the
run's webhook, and the deletion of a stateless run's thread (``on_completion``).

A follow-up is written to Redis when its run is created; the process that created
the run watches it and keeps a claim on it, renewed while it waits. Every API process
sweeps for follow-ups whose claim lapsed (their process died or was killed) and takes
them over in one script call, so a webhook is sent and a stateless thread deleted
even when the API process that created the run is gone. Delivery is at least once:
a process killed after the POST but before it recorded the follow-up done leaves it
to be sent again by the process that takes it over.

Key schema (``P`` is the key prefix, ``R`` a run id)::

    P:srv:followups   ZSET  run ids, scored by the ms at which their claim lapses
    P:srv:fu:{R}      HASH  thread (its id), webhook (the URL, when one was given),
                            delete ("1": delete the thread once the run ended)

The rule a reader must not break: a follow-up leaves the sorted set only after its
action ran (or its run is gone), and only through :meth:`Followups.done`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dialogllm.logging import get_logger
from dialogllm.queue.lua import CLAIM_LAPSED
from dialogllm.redis.clients import AsyncClient
from dialogllm.server.storage import now_ms

__all__ = ["CLAIM_MS", "Followup", "Followups"]

#: How long a claim on a follow-up lasts without renewal (ms): a follow-up whose
#: process died is taken over by another process this long after its last renewal.
CLAIM_MS = 30_000
_log = get_logger("dialogllm.server.followups")


@dataclass(frozen=True, slots=True)
class Followup:
    """What to do once the run ``run_id`` on ``thread_id`` ended."""

    run_id: str
    thread_id: str
    webhook: str | None = None
    delete_thread: bool = False


Action = Callable[[Followup], Awaitable[None]]


class Followups:
    """The follow-ups of runs, in Redis, and this process's share of them.

    ``act`` does a follow-up (waits for the run to end, then sends the webhook or
    deletes the thread); :meth:`start` runs the renewal and the sweep in this
    process until :meth:`stop`.

    >>> followups = Followups(client, prefix="dialogllm", act=follow_up)
    >>> await followups.add(Followup(run_id, thread_id, webhook="https://hooks/x"))
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        prefix: str,
        act: Action,
        claim_ms: int = CLAIM_MS,
    ) -> None:
        self.client: Any = client  # redis-py's reply types are too loose to use
        self.prefix = prefix
        self.act = act
        self.claim_ms = claim_ms
        self._watched: dict[str, asyncio.Task[None]] = {}
        # claimed here while a request does the follow-up itself (a run waited for
        # or streamed): renewed, not acted on, until the request says how it ended
        self._held: dict[str, Followup] = {}
        self._loop: asyncio.Task[None] | None = None
        # one script, so two sweeping processes never take the same follow-up
        self._claim = self.client.register_script(CLAIM_LAPSED)

    @property
    def _set(self) -> str:
        return f"{self.prefix}:srv:followups"

    def _key(self, run_id: str) -> str:
        return f"{self.prefix}:srv:fu:{run_id}"

    async def add(self, followup: Followup, *, held: bool = False) -> None:
        """Record ``followup`` (claimed by this process) and start watching it; or,
        ``held``, only keep the claim while the caller does it and then calls
        :meth:`release`."""
        fields = {"thread": followup.thread_id, "delete": int(followup.delete_thread)}
        if followup.webhook:
            fields["webhook"] = followup.webhook
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(self._key(followup.run_id), mapping=fields)
        pipe.zadd(self._set, {followup.run_id: now_ms() + self.claim_ms})
        await pipe.execute()
        if held:
            self._held[followup.run_id] = followup
        else:
            self._watch(followup)

    async def release(self, run_id: str, *, done: bool) -> None:
        """End the hold on ``run_id``'s follow-up: ``done``, the caller did it;
        otherwise (the request ended first) this process does it."""
        followup = self._held.pop(run_id, None)
        if done:
            await self.done(run_id)
        elif followup is not None:
            self._watch(followup)

    async def read(self, run_id: str) -> Followup | None:
        """The follow-up of ``run_id``, or ``None`` when it has none."""
        raw = await self.client.hgetall(self._key(run_id))
        if not raw or not raw.get("thread"):
            return None
        return Followup(
            run_id,
            raw["thread"],
            webhook=raw.get("webhook") or None,
            delete_thread=raw.get("delete") == "1",
        )

    async def done(self, run_id: str) -> None:
        """Forget the follow-up of ``run_id``: its action ran."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zrem(self._set, run_id)
        pipe.delete(self._key(run_id))
        await pipe.execute()

    async def pending(self) -> int:
        """How many follow-ups are waiting, in every process."""
        return int(await self.client.zcard(self._set))

    async def claim_lapsed(self, limit: int = 100) -> list[str]:
        """Take over up to ``limit`` follow-ups whose claim lapsed; their run ids."""
        ids = await self._claim(keys=[self._set], args=[now_ms(), self.claim_ms, limit])
        return [str(i) for i in ids]

    def start(self) -> None:
        """Renew this process's claims and sweep for lapsed ones, in the background."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop watching (the claims lapse and other processes take them over)."""
        tasks = [t for t in (self._loop, *self._watched.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop = None
        self._watched.clear()
        self._held.clear()

    def _watch(self, followup: Followup) -> None:
        if followup.run_id in self._watched:
            return
        task = asyncio.create_task(self._follow(followup))
        self._watched[followup.run_id] = task
        task.add_done_callback(lambda _: self._watched.pop(followup.run_id, None))

    async def _follow(self, followup: Followup) -> None:
        try:
            await self.act(followup)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # logged; the claim lapses and is tried again
            _log.warning(
                "followup_failed",
                run_id=followup.run_id,
                thread_id=followup.thread_id,
                error=type(exc).__name__,
            )
            return
        await self.done(followup.run_id)

    async def _run(self) -> None:
        """Every third of a claim: renew the watched claims, take over lapsed ones."""
        while True:
            await asyncio.sleep(self.claim_ms / 3000)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: try again next round
                _log.warning("followup_sweep_failed", error=type(exc).__name__)

    async def sweep(self) -> list[str]:
        """One round: renew this process's claims, then take over lapsed follow-ups
        and watch them; the run ids taken over."""
        mine = [*self._watched, *self._held]
        if mine:
            until = now_ms() + self.claim_ms
            await self.client.zadd(self._set, dict.fromkeys(mine, until), xx=True)
        taken = [
            r
            for r in await self.claim_lapsed()
            if r not in self._watched and r not in self._held
        ]
        for run_id in taken:
            followup = await self.read(run_id)
            if followup is None:  # its record is gone: nothing left to do
                await self.done(run_id)
                continue
            _log.info(
                "followup_taken_over", run_id=run_id, thread_id=followup.thread_id
            )
            self._watch(followup)
        return taken
