"""Crons: runs of a graph on a schedule, fired through the queue once per tick.

:class:`Crons` creates, reads, searches, updates and deletes a queue's crons;
:class:`CronScheduler` fires them. Every worker (``dialogllm worker``, the
in-process worker of ``dialogllm serve``) and every API process runs a scheduler;
each tick is fired exactly once however many race for it, because the claim of a
tick and the enqueue of its run are one Lua call
(:meth:`~dialogllm.queue.cron_store.CronStore.fire`). A scheduler that dies
mid-tick either fired it (the run is enqueued and the cron moved on) or did not
(another scheduler fires it): no tick is lost and none doubled.

Schedules are cron expressions as `croniter <https://pypi.org/project/croniter/>`_
reads them: five fields (minute precision), or six with seconds last
(``"* * * * * */5"``: every 5 s); in ``timezone`` (IANA name, default UTC), with
daylight-saving changes as the zone has them. After downtime a cron with
``catch_up`` fires every missed tick in order; without, it fires the latest missed
tick once and skips the older ones (counted as ``skipped``).

The rule a reader must not break: a tick's run is enqueued only by the script call
that moved the cron's due score past that tick.

>>> crons = Crons(queue)
>>> cron = await crons.create("app.graphs:digest", "0 9 * * *",
...                           input={"topic": "news"}, timezone="Europe/Paris")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from redis.exceptions import RedisError

from dialogllm.config import check_ids
from dialogllm.errors import (
    CronNotFoundError,
    InputValidationError,
)
from dialogllm.logging import get_logger
from dialogllm.queue.client import Queue, _location_independent, encode_bounded_input
from dialogllm.queue.cron_store import (
    CronFire,
    CronRecord,
    CronSpec,
    CronStats,
    CronStore,
    FiringFollowUp,
    OnRunCompleted,
)
from dialogllm.queue.models import MULTITASK_VALUES, RunOptions

if TYPE_CHECKING:
    from dialogllm.checkpoint import AsyncRedisSaver

__all__ = [
    "CronRecord",
    "CronScheduler",
    "CronSpec",
    "CronStats",
    "Crons",
    "next_tick",
    "validate_schedule",
]

_log = get_logger("dialogllm.queue.crons")

#: Most ticks a skipping cron counts through when it comes back from downtime.
_COUNT_LIMIT = 100_000
#: Sort keys :meth:`Crons.search` takes.
SORT_KEYS = ("cron_id", "assistant_id", "thread_id", "next_run_date", "end_time",
             "created_at", "updated_at")  # fmt: skip


def _zone(timezone: str | None) -> tzinfo:
    if not timezone:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputValidationError(
            f"unknown timezone {timezone!r}; use an IANA name such as "
            "'Europe/Paris' or 'America/New_York'"
        ) from None


def next_tick(schedule: str, timezone: str | None, after_ms: int) -> int:
    """The first tick of ``schedule`` strictly after ``after_ms`` (ms since the
    epoch), in ``timezone`` (default UTC).

    >>> next_tick("0 9 * * *", "UTC", 0)
    32400000
    """
    start = datetime.fromtimestamp(after_ms / 1000, _zone(timezone))
    try:
        found: float = croniter(schedule, start).get_next(float)
    except (CroniterError, ValueError, KeyError) as exc:
        raise InputValidationError(
            f"invalid cron schedule {schedule!r}: {exc}; write five fields "
            "(minute hour day month weekday) or six with seconds last"
        ) from None
    tick = round(found * 1000)
    return tick if tick > after_ms else tick + 1000


def validate_schedule(schedule: str, timezone: str | None = None) -> None:
    """Raise :class:`~dialogllm.errors.InputValidationError` unless ``schedule``
    is a cron expression of 5 or 6 fields that fires, and ``timezone`` a zone.

    >>> validate_schedule("*/5 * * * *", "Europe/Paris")
    """
    fields = schedule.split()
    if len(fields) not in (5, 6) or not croniter.is_valid(schedule):
        raise InputValidationError(
            f"invalid cron schedule {schedule!r}: write five fields (minute hour "
            "day month weekday) or six with seconds last, e.g. '*/5 * * * *'"
        )
    next_tick(schedule, timezone, 0)


def _end_ms(end_time: datetime | None) -> int | None:
    if end_time is None:
        return None
    if end_time.tzinfo is None:
        end_time = end_time.replace(tzinfo=UTC)
    return int(end_time.timestamp() * 1000)


class Crons:
    """A queue's crons: create, read, search, count, update, delete.

    Args:
        queue: the :class:`~dialogllm.queue.Queue` the crons' runs go to (its
            client, key prefix and name).

    >>> crons = Crons(queue)
    >>> cron = await crons.create("app.graphs:chat", "*/10 * * * *",
    ...                           thread_id="t-1", input={"messages": ["ping"]})
    >>> [c.cron_id for c in await crons.search(thread_id="t-1")]
    """

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.store = CronStore(queue.client, prefix=queue.prefix, queue=queue.name)

    async def create(
        self,
        graph: str,
        schedule: str,
        *,
        input: Any = None,
        thread_id: str | None = None,
        timezone: str | None = None,
        end_time: datetime | None = None,
        options: RunOptions | None = None,
        metadata: Mapping[str, Any] | None = None,
        on_run_completed: OnRunCompleted = "delete",
        catch_up: bool = False,
        enabled: bool = True,
        multitask: str = "enqueue",
        assistant_id: str | None = None,
        user_id: str | None = None,
        payload: Mapping[str, Any] | None = None,
        cron_id: str | None = None,
        followed: bool = False,
    ) -> CronRecord:
        """Create a cron that runs ``graph`` on ``schedule``: on ``thread_id``, or
        (``None``) on a new thread per firing, deleted after its run unless
        ``on_run_completed="keep"``. It fires until ``end_time`` (aware, or read
        as UTC), which must lie ahead. ``followed`` (the API's crons): each
        firing is announced for an API process to claim (:meth:`claim_firings`).
        Raises
        :class:`~dialogllm.errors.InputValidationError` for a bad schedule,
        timezone, input or end time.

        >>> await crons.create("digest", "0 9 * * 1-5", timezone="Europe/Paris",
        ...                    input={"topic": "tea"}, catch_up=True)
        """
        if not graph:
            raise InputValidationError("graph must name a graph")
        if multitask not in MULTITASK_VALUES:
            raise InputValidationError(f"multitask must be one of {MULTITASK_VALUES}")
        if on_run_completed not in ("delete", "keep"):
            raise InputValidationError("on_run_completed must be 'delete' or 'keep'")
        check_ids({"thread id": thread_id, "cron id": cron_id})
        payload_json = encode_bounded_input(
            input, what="cron input", untouched="no cron was created"
        )
        spec = CronSpec(
            graph=_location_independent(graph),
            schedule=schedule,
            timezone=timezone,
            thread_id=thread_id,
            input=payload_json,
            options=(options or RunOptions()).to_json(),
            metadata=dict(metadata or {}),
            end_ms=_end_ms(end_time),
            on_run_completed=on_run_completed,
            catch_up=catch_up,
            enabled=enabled,
            multitask=multitask,
            assistant_id=assistant_id,
            user_id=user_id,
            payload=dict(payload or {}),
            followed=followed,
        )
        cron_id = cron_id or str(uuid.uuid4())
        now = await self.queue._call("reading the clock", self.store.now_ms)
        nxt = self._next(spec, now)
        if spec.end_ms is not None and spec.end_ms <= now:
            raise InputValidationError(
                f"end_time {datetime.fromtimestamp(spec.end_ms / 1000, UTC)} is in "
                "the past; give a time ahead, or none to run without end"
            )
        created = await self.queue._call(
            "creating a cron", lambda: self.store.create(cron_id, spec, nxt)
        )
        if not created:
            raise InputValidationError(f"cron {cron_id!r} exists already")
        _log.info("cron created", cron_id=cron_id, graph=graph, schedule=schedule)
        return await self.get(cron_id)

    @staticmethod
    def _next(spec: CronSpec, now_ms: int) -> int | None:
        """The first tick after ``now_ms`` (validating the schedule); ``None``
        when the cron is disabled or that tick is past its end."""
        validate_schedule(spec.schedule, spec.timezone)
        tick = next_tick(spec.schedule, spec.timezone, now_ms)
        if not spec.enabled or (spec.end_ms is not None and tick > spec.end_ms):
            return None
        return tick

    async def get(self, cron_id: str) -> CronRecord:
        """The cron's record; :class:`~dialogllm.errors.CronNotFoundError` when
        there is none.

        >>> (await crons.get(cron_id)).next_ms
        1767261600000
        """
        record = await self.queue._call(
            "reading a cron", lambda: self.store.get(cron_id)
        )
        if record is None:
            raise CronNotFoundError(
                f"no cron {cron_id!r} in queue {self.queue.name!r} (never created, "
                "or deleted)"
            )
        return record

    async def all(self) -> list[CronRecord]:
        """Every cron of the queue, oldest first (reads every record)."""

        async def read() -> list[CronRecord]:
            return await self.store.records(await self.store.ids())

        return await self.queue._call("listing crons", read)

    async def search(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        graph: str | None = None,
        enabled: bool | None = None,
        metadata: Mapping[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[CronRecord]:
        """Crons matching every filter given (``metadata``: each pair equal),
        sorted (``sort_by`` one of ``cron_id``, ``assistant_id``, ``thread_id``,
        ``next_run_date``, ``end_time``, ``created_at``, ``updated_at``), paged.
        Cost: with ``thread_id`` or ``assistant_id``, the records of that thread's
        or assistant's crons (from an index); otherwise every cron's record.

        >>> await crons.search(thread_id="t-1", sort_by="next_run_date", limit=5)
        """
        if sort_by not in SORT_KEYS:
            raise InputValidationError(f"sort_by must be one of {', '.join(SORT_KEYS)}")
        if sort_order not in ("asc", "desc"):
            raise InputValidationError("sort_order must be 'asc' or 'desc'")
        found = [
            c
            for c in await self._candidates(assistant_id, thread_id)
            if matches(c, assistant_id, thread_id, graph, enabled, metadata)
        ]
        found.sort(key=lambda c: _sort_key(c, sort_by), reverse=sort_order == "desc")
        return found[offset : offset + limit]

    async def count(
        self,
        *,
        assistant_id: str | None = None,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        """How many crons match the filters (as :meth:`search`'s).

        >>> await crons.count(assistant_id="digest")
        2
        """
        found = await self._candidates(assistant_id, thread_id)
        return sum(
            1
            for c in found
            if matches(c, assistant_id, thread_id, None, None, metadata)
        )

    async def _candidates(
        self, assistant_id: str | None, thread_id: str | None
    ) -> list[CronRecord]:
        """The crons a search with these filters must look at: the thread's or the
        assistant's (their index), else all."""
        if not (assistant_id or thread_id):
            return await self.all()

        async def read() -> list[CronRecord]:
            ids = await self.store.ids_for(
                assistant_id=assistant_id, thread_id=thread_id
            )
            return await self.store.records(ids)

        return await self.queue._call("searching crons", read)

    async def update(self, cron_id: str, **changes: Any) -> CronRecord:
        """Change fields of a cron's :class:`CronSpec` (``schedule``,
        ``timezone``, ``end_ms``, ``input`` as a value, ``options`` as
        :class:`~dialogllm.queue.RunOptions`, ``metadata``, ``on_run_completed``,
        ``enabled``, ``catch_up``, ``payload``...); the next tick is computed
        again from now. Raises :class:`~dialogllm.errors.CronNotFoundError` and
        :class:`~dialogllm.errors.InputValidationError`.

        >>> await crons.update(cron_id, schedule="0 10 * * *", enabled=False)
        """
        known = {f.name for f in dataclasses.fields(CronSpec)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InputValidationError(f"crons have no field(s) {unknown}")
        if "input" in changes:
            changes["input"] = encode_bounded_input(
                changes["input"], what="cron input", untouched="the cron is unchanged"
            )
        if isinstance(changes.get("options"), RunOptions):
            changes["options"] = changes["options"].to_json()
        if changes.get("on_run_completed", "delete") not in ("delete", "keep"):
            raise InputValidationError("on_run_completed must be 'delete' or 'keep'")
        while True:
            record = await self.get(cron_id)
            spec = dataclasses.replace(record.spec, **changes)
            now = await self.queue._call("reading the clock", self.store.now_ms)
            nxt = self._next(spec, now)
            verdict = await self.queue._call(
                "updating a cron",
                functools.partial(
                    self.store.update, cron_id, spec, nxt, record.version
                ),
            )
            if verdict == "gone":
                raise CronNotFoundError(f"no cron {cron_id!r} (deleted meanwhile)")
            if verdict == "ok":
                return await self.get(cron_id)

    async def delete(self, cron_id: str) -> None:
        """Delete a cron (runs it enqueued already are left alone); raises
        :class:`~dialogllm.errors.CronNotFoundError` when there is none.

        >>> await crons.delete(cron_id)
        """
        if not await self.queue._call(
            "deleting a cron", lambda: self.store.delete(cron_id)
        ):
            raise CronNotFoundError(f"no cron {cron_id!r} in queue {self.queue.name!r}")

    async def claim_firings(
        self, *, claim_ms: int = 30_000, limit: int = 100
    ) -> list[str]:
        """Claim up to ``limit`` firings of followed crons that nobody holds, for
        ``claim_ms`` (then another caller may claim them again); their run ids.
        Call :meth:`firing_done` once what they ask for is done.

        >>> for run_id in await crons.claim_firings():
        ...     await follow(run_id); await crons.firing_done(run_id)
        """

        async def claim() -> list[str]:
            now = await self.store.now_ms()
            return await self.store.claim_fired(now, claim_ms, limit)

        return await self.queue._call("claiming cron firings", claim)

    async def follow_up(self, run_id: str) -> FiringFollowUp | None:
        """What a claimed firing of a followed cron asks the API for, as it was
        when the tick fired (the cron may be gone since); ``None`` for a firing
        announced without it.

        >>> (await crons.follow_up(run_id)).webhook
        'https://hooks.example.com/cron'
        """
        return await self.queue._call(
            "reading a cron firing", lambda: self.store.follow_up(run_id)
        )

    async def firing_done(self, run_id: str, *, took_cleanup: bool = False) -> None:
        """Forget a followed firing claimed with :meth:`claim_firings`;
        ``took_cleanup``: the caller deletes the firing's stateless thread itself
        (otherwise a scheduler does, once the run ended, if its cron said so)."""
        await self.queue._call(
            "forgetting a cron firing",
            lambda: self.store.fired_done(run_id, took_cleanup=took_cleanup),
        )

    async def stats(self) -> CronStats:
        """The queue's cron counters, for ``dialogllm status`` and metrics.

        >>> (await crons.stats()).fired
        120
        """

        async def read() -> CronStats:
            return await self.store.stats(await self.store.now_ms())

        return await self.queue._call("reading cron counters", read)


def matches(
    cron: CronRecord,
    assistant_id: str | None,
    thread_id: str | None,
    graph: str | None,
    enabled: bool | None,
    metadata: Mapping[str, Any] | None,
) -> bool:
    """Whether ``cron`` passes every filter that is not ``None``."""
    spec = cron.spec
    return (
        (assistant_id is None or spec.assistant_id == assistant_id)
        and (thread_id is None or spec.thread_id == thread_id)
        and (graph is None or spec.graph == graph)
        and (enabled is None or spec.enabled == enabled)
        and all(spec.metadata.get(k) == v for k, v in (metadata or {}).items())
    )


def _sort_key(cron: CronRecord, sort_by: str) -> tuple[bool, Any, str]:
    value: Any = {
        "cron_id": cron.cron_id,
        "assistant_id": cron.spec.assistant_id,
        "thread_id": cron.spec.thread_id,
        "next_run_date": cron.next_ms,
        "end_time": cron.spec.end_ms,
        "created_at": cron.created_ms,
        "updated_at": cron.updated_ms,
    }[sort_by]
    # The cron id breaks ties (two crons created in one millisecond), so a
    # search pages through the same order every time it is asked.
    return (value is not None, value if value is not None else 0, cron.cron_id)


class CronScheduler:
    """Fires a queue's due crons until stopped: one per worker and API process.

    Each pass reads the due crons (``ZRANGEBYSCORE`` on the server's clock), works
    out each one's tick and next tick, and claims the tick with
    :meth:`~dialogllm.queue.cron_store.CronStore.fire`; a lost race is no error.
    It sleeps until the next tick (at most ``poll`` seconds, so crons created
    elsewhere are seen), and deletes the threads of finished stateless firings
    whose cron said ``on_run_completed="delete"``.

    Args:
        queue: where the runs go (its client must stay open while this runs).
        saver: the checkpointer whose threads finished stateless firings leave.
        poll: longest sleep between passes (seconds).
        max_attempts / retention: of the runs it enqueues (default: the queue's).
        name: who this scheduler is, in logs.

    >>> scheduler = CronScheduler(queue, saver)
    >>> task = asyncio.create_task(scheduler.run())
    >>> scheduler.stop(); await task
    """

    def __init__(
        self,
        queue: Queue,
        saver: AsyncRedisSaver,
        *,
        poll: float = 1.0,
        max_attempts: int | None = None,
        retention: float | None = None,
        name: str = "",
    ) -> None:
        self.queue = queue
        self.saver = saver
        self.store = CronStore(queue.client, prefix=queue.prefix, queue=queue.name)
        self.poll = poll
        self.max_attempts = max_attempts or queue.max_attempts
        self.retention_ms = (
            int(retention * 1000) if retention is not None else queue.retention_ms
        )
        self.log = get_logger("dialogllm.queue.crons", scheduler=name)
        self._stopping = asyncio.Event()
        #: Ticks this scheduler fired (runs it enqueued), since it started.
        self.fired = 0

    def stop(self) -> None:
        """Stop after the current pass."""
        self._stopping.set()

    async def run(self) -> None:
        """Fire due crons until :meth:`stop`; Redis outages are waited out.

        >>> await CronScheduler(queue, saver).run()
        """
        while not self._stopping.is_set():
            try:
                pause = await self.tick()
            except (RedisError, OSError) as exc:
                self.log.warning("cron scheduler: redis unreachable", error=str(exc))
                pause = min(self.poll, 0.5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)

    async def tick(self) -> float:
        """One pass: fire every due cron (every missed tick of a catching-up
        one), clean up finished firings; return the seconds to sleep."""
        while True:
            now = await self.store.now_ms()
            due = await self.store.due(now, limit=100)
            if not due:
                break
            progressed = False
            for cron_id, due_ms in due:
                if await self._fire_one(cron_id, due_ms, now):
                    progressed = True
            if not progressed:
                break
        await self.clean_up()
        nxt = await self.store.next_due_ms()
        now = await self.store.now_ms()
        if nxt is None:
            return self.poll
        return max(0.005, min(self.poll, (nxt - now) / 1000))

    async def _fire_one(self, cron_id: str, due_ms: int, now_ms: int) -> bool:
        """Try to fire ``cron_id``'s tick ``due_ms``; whether its score moved (by
        this scheduler or another)."""
        record = await self.store.get(cron_id)
        if record is None:  # deleted meanwhile, or not a cron's record
            return False
        try:
            claim = self._claim(record, due_ms, now_ms)
        except InputValidationError as exc:  # a schedule stored by hand
            self.log.error("cron cannot be scheduled", cron_id=cron_id, error=str(exc))
            claim = dataclasses.replace(
                self._claim_end(record, due_ms), next_ms=None, fire=False
            )
        verdict, run_id = await self.store.fire(claim)
        if verdict in ("lost", "stale"):
            return verdict == "lost"
        if verdict == "ok":
            self.fired += 1
            self.log.info(
                "cron fired", cron_id=cron_id, run_id=run_id, tick_ms=claim.tick_ms
            )
        elif verdict == "busy":
            self.log.info("cron tick passed: thread busy", cron_id=cron_id)
        return True

    def _claim_end(self, record: CronRecord, due_ms: int) -> CronFire:
        spec = record.spec
        return CronFire(
            cron_id=record.cron_id,
            version=record.version,
            expected_ms=due_ms,
            tick_ms=due_ms,
            next_ms=None,
            run_id="",
            graph=spec.graph,
            thread_id=spec.thread_id or "",
            input=spec.input,
            options=spec.options,
            multitask=spec.multitask,
            max_attempts=self.max_attempts,
            retention_ms=self.retention_ms,
            fire=False,
        )

    def _claim(self, record: CronRecord, due_ms: int, now_ms: int) -> CronFire:
        """What to claim for the due tick ``due_ms``: that tick (catching up), or
        the latest tick up to now (skipping the older ones)."""
        spec = record.spec
        end = spec.end_ms
        tick, skipped = due_ms, 0
        nxt = next_tick(spec.schedule, spec.timezone, tick)
        if not spec.catch_up:
            # the latest tick up to now (and up to the cron's end) fires
            last = now_ms if end is None else min(now_ms, end)
            while nxt <= last and skipped < _COUNT_LIMIT:
                tick, skipped = nxt, skipped + 1
                nxt = next_tick(spec.schedule, spec.timezone, tick)
            if nxt <= now_ms:  # a very long downtime, or ended meanwhile: jump
                nxt = next_tick(spec.schedule, spec.timezone, now_ms)
        if end is not None and tick > end:
            return self._claim_end(record, due_ms)
        thread = spec.thread_id or str(uuid.uuid4())
        options = RunOptions.from_json(spec.options)
        run_meta = {
            **(options.metadata or {}),
            "cron_id": record.cron_id,
            "cron_tick": tick,
        }
        follow = FiringFollowUp.of(spec)  # cleanup: what its "delete" says
        return CronFire(
            cron_id=record.cron_id,
            version=record.version,
            expected_ms=due_ms,
            tick_ms=tick,
            next_ms=None if end is not None and nxt > end else nxt,
            run_id=str(uuid.uuid4()),
            graph=spec.graph,
            thread_id=thread,
            input=spec.input,
            options=dataclasses.replace(options, metadata=run_meta).to_json(),
            multitask=spec.multitask,
            max_attempts=self.max_attempts,
            retention_ms=self.retention_ms,
            skipped=skipped,
            cleanup=follow.delete,
            followed=spec.followed,
            follow=follow if spec.followed else None,
        )

    async def clean_up(self, count: int = 100) -> int:
        """Delete the threads of finished stateless firings (``on_run_completed=
        "delete"``); return how many."""
        done = 0
        for run_id, thread_id in (await self.store.cleanups(count)).items():
            record = await self.queue.store.record(run_id)
            if record is not None and not record.status.is_terminal:
                continue
            await self.saver.adelete_thread(thread_id)
            await self.store.cleaned(run_id)
            done += 1
        return done
