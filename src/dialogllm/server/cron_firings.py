"""What the API does for each firing of a cron made through it, whichever process
fired it (a worker's scheduler or an API process's).

A cron created through ``/runs/crons`` or ``/threads/{thread_id}/runs/crons`` is
*followed* (:attr:`~dialogllm.queue.CronSpec.followed`): the one script call that
fires a tick also announces its run in the queue's fired set. Every API process
claims announced firings (:meth:`~dialogllm.queue.Crons.claim_firings`: a claim that
lapses, so a killed process's firings are taken over) and, for each:

- a stateless firing's new thread gets its server record (metadata: the cron's, its
  ``graph_id`` and ``assistant_id``, ``cron_id``), so ``threads.get``,
  ``threads.search``, ``runs.get`` and the web page see it while it runs;
- the thread's record names the run as its last run (its status);
- the cron's ``webhook``, and the deletion of a stateless thread
  (``on_run_completed="delete"``), become the run's follow-up
  (:mod:`dialogllm.server.followups`): done once the run ended, at least once, the
  deletion after the webhook read the thread's values. A cron scheduler leaves
  the thread of a firing no API process has followed yet alone, and never deletes
  one whose deletion an API process took over.

What a firing asks for is fixed when its tick fires (kept with it in the fired
set's follow-up hash), so a cron deleted or changed before an API process claims
the firing changes nothing for it. While no API process runs, followed firings wait
in the fired set, and their stateless threads with them, until one does.

The rule a reader must not break: a firing leaves the fired set only after its
follow-up is recorded, and only through :meth:`~dialogllm.queue.Crons.firing_done`.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.exceptions import RedisError

from dialogllm.errors import CronNotFoundError, DialogueLLMError, RunNotFoundError
from dialogllm.logging import get_logger
from dialogllm.queue import Crons, FiringFollowUp
from dialogllm.server.context import ServerContext
from dialogllm.server.followups import Followup

__all__ = ["CronFirings", "follow_firing"]

_log = get_logger("dialogllm.server.cron_firings")


async def follow_firing(ctx: ServerContext, crons: Crons, run_id: str) -> bool:
    """Do what the API does for the firing whose run is ``run_id`` (see above);
    ``crons`` are the crons of ``ctx``'s queue. Whether the follow-up deletes the
    firing's thread (then no cron scheduler does)."""
    try:
        record = await ctx.queue.get(run_id)
    except RunNotFoundError:
        return False  # past the queue's retention already: nothing left to follow
    follow = await crons.follow_up(run_id)
    if follow is None:  # announced by a version that kept none: ask the cron
        cron_id = str((record.options.metadata or {}).get("cron_id") or "")
        try:
            follow = FiringFollowUp.of((await crons.get(cron_id)).spec)
        except CronNotFoundError:
            return False
    thread_id = record.thread_id
    made = None
    if follow.stateless:
        metadata = dict(record.options.metadata or {})
        made = await ctx.store.create_thread(thread_id, metadata, last_run=run_id)
    if made is None:
        await ctx.store.update_thread(thread_id, last_run=run_id)
    if follow.webhook or follow.delete:
        await ctx.followups.add(
            Followup(run_id, thread_id, follow.webhook, follow.delete)
        )
    return follow.delete


class CronFirings:
    """This API process's share of the followed crons' firings: claims them every
    ``poll`` seconds and follows each (:func:`follow_firing`) until :meth:`stop`.
    A claim lasts ``claim_ms`` (default: the follow-ups', from
    ``DIALOGLLM_FOLLOWUP_CLAIM_SECONDS``).

    >>> firings = CronFirings(context)
    >>> firings.start(); ...; await firings.stop()
    """

    def __init__(
        self, ctx: ServerContext, *, poll: float = 0.5, claim_ms: int | None = None
    ) -> None:
        self.ctx = ctx
        self.crons = Crons(ctx.queue)
        self.poll = poll
        self.claim_ms = ctx.followups.claim_ms if claim_ms is None else claim_ms
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Follow firings in the background of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cron-firings")

    async def stop(self) -> None:
        """Stop (the claims held lapse and other API processes take them over)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except (DialogueLLMError, RedisError, OSError) as exc:
                _log.warning("cron_firings_round_failed", error=type(exc).__name__)
            await asyncio.sleep(self.poll)

    async def round(self) -> int:
        """Claim the firings nobody follows and follow each; how many were done."""
        done = 0
        for run_id in await self.crons.claim_firings(claim_ms=self.claim_ms):
            took = await follow_firing(self.ctx, self.crons, run_id)
            await self.crons.firing_done(run_id, took_cleanup=took)
            done += 1
        return done
