"""The crons' storage boundary: every Redis command and script crons send.

A cron lives in its queue's slot (``P:q:{Q}:cron:C``, the ``crons`` and ``crondue``
sorted sets of :mod:`dialogllm.queue.keys`), so the claim of a tick and the enqueue of
its run are one Lua call (``CRON_FIRE``): the script fires the tick only while the
cron's score in the due set is still the tick the caller read, and moves the score to
the next tick in the same call. Any number of schedulers may race for a tick; one
wins, the others read ``lost``. :class:`CronStore` takes and returns typed records
(:class:`CronSpec`, :class:`CronRecord`, :class:`CronFire`), never script arguments.

The rule a reader must not break: a cron's due score changes only inside a script
call made here, and a tick is fired only by the call that moved its score.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from dialogllm.queue import keys, lua
from dialogllm.queue.models import dumps, loads
from dialogllm.redis.hashes import read_hashes

__all__ = [
    "OVERDUE_MS",
    "CronFire",
    "CronRecord",
    "CronSpec",
    "CronStats",
    "CronStore",
    "FiringFollowUp",
    "OnRunCompleted",
]

#: How late a due cron must be to count as overdue (a scheduler sleeps up to 1 s).
OVERDUE_MS = 10_000

#: What happens to the thread of a stateless firing once its run ends.
OnRunCompleted = Literal["delete", "keep"]


@dataclass(frozen=True, slots=True)
class CronSpec:
    """What a cron runs and when: stored as JSON in the cron's record.

    ``graph`` is the graph reference a worker loads; ``thread_id`` ``None`` makes
    every firing a run on a new thread (stateless), whose thread is deleted after
    the run when ``on_run_completed`` is ``"delete"``. ``input`` is the run input as
    JSON text; ``options`` the :class:`~dialogllm.queue.RunOptions` as JSON. Times
    are ms since the epoch. ``catch_up``: after downtime, fire every missed tick
    (``True``) or only the latest one (``False``). ``payload`` is what the API
    shows as the cron's run payload; ``assistant_id``/``user_id`` who the cron is
    for, as the API knows them. ``followed``: the cron was made through the API,
    which does more for each firing (the thread's record, the webhook, deleting a
    stateless thread): its firings are announced in the queue's fired set for an
    API process to claim (:meth:`CronStore.claim_fired`).
    """

    graph: str
    schedule: str
    timezone: str | None = None
    thread_id: str | None = None
    input: str = "null"
    options: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    end_ms: int | None = None
    on_run_completed: OnRunCompleted = "delete"
    catch_up: bool = False
    enabled: bool = True
    multitask: str = "enqueue"
    assistant_id: str | None = None
    user_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    followed: bool = False

    def to_json(self) -> str:
        """The spec as stored."""
        return dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> CronSpec | None:
        """A stored spec; ``None`` when it cannot be decoded (a field this version
        does not know is ignored)."""
        try:
            data = loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        known = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None


@dataclass(frozen=True, slots=True)
class CronRecord:
    """A cron as stored: its spec and firing state. ``next_ms`` is the next tick
    (``None``: disabled or ended); ``last_tick_ms`` the last tick fired (or passed
    over because the thread was busy); ``fired`` how many runs it enqueued;
    ``version`` grows with every update (a firing applies only at the version
    its scheduler read)."""

    cron_id: str
    spec: CronSpec
    created_ms: int
    updated_ms: int
    version: int
    next_ms: int | None = None
    last_tick_ms: int | None = None
    last_run: str | None = None
    fired: int = 0

    @classmethod
    def from_hash(cls, cron_id: str, raw: dict[str, str]) -> CronRecord | None:
        """The record of ``HGETALL``; ``None`` when it is no cron's."""
        spec = CronSpec.from_json(raw.get("spec"))
        if spec is None:
            return None

        def whole(name: str) -> int | None:
            try:
                return int(raw[name]) if raw.get(name) else None
            except ValueError:
                return None

        return cls(
            cron_id=cron_id,
            spec=spec,
            created_ms=whole("created") or 0,
            updated_ms=whole("updated") or 0,
            version=whole("version") or 0,
            next_ms=whole("next"),
            last_tick_ms=whole("last_tick"),
            last_run=raw.get("last_run") or None,
            fired=whole("fired") or 0,
        )


@dataclass(frozen=True, slots=True)
class FiringFollowUp:
    """What the API does for one firing of a followed cron, fixed when the tick
    fired (so a cron deleted before an API process claims the firing changes
    nothing): give a ``stateless`` firing's new thread its record, POST
    ``webhook`` when the run ends, ``delete`` the stateless thread after."""

    stateless: bool
    delete: bool
    webhook: str | None = None

    @classmethod
    def of(cls, spec: CronSpec) -> FiringFollowUp:
        """What a firing of a cron of ``spec`` asks for."""
        stateless = spec.thread_id is None
        webhook = spec.payload.get("webhook")
        return cls(
            stateless=stateless,
            delete=stateless and spec.on_run_completed == "delete",
            webhook=webhook if isinstance(webhook, str) and webhook else None,
        )

    def to_json(self) -> str:
        """As stored with the announced firing."""
        return dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> FiringFollowUp | None:
        """The stored follow-up; ``None`` when absent or not one."""
        if not text:
            return None
        try:
            raw = loads(text)
            return cls(
                stateless=bool(raw["stateless"]),
                delete=bool(raw["delete"]),
                webhook=raw.get("webhook") or None,
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True, slots=True)
class CronFire:
    """One attempt to claim a tick of a cron read at ``version``: its due score
    ``expected_ms``, the tick it fires (``tick_ms``), the score it leaves
    (``next_ms``, ``None`` ends the cron), the ticks passed over (``skipped``), and
    the run to enqueue (``fire=False``: only advance, the cron has ended)."""

    cron_id: str
    version: int
    expected_ms: int
    tick_ms: int
    next_ms: int | None
    run_id: str
    graph: str
    thread_id: str
    input: str
    options: str
    multitask: str
    max_attempts: int
    retention_ms: int
    skipped: int = 0
    fire: bool = True
    cleanup: bool = False
    followed: bool = False
    follow: FiringFollowUp | None = None  # a followed cron's: kept with the firing


@dataclass(frozen=True, slots=True)
class CronStats:
    """Counters of one queue's crons: how many exist and are scheduled, how many
    are overdue by more than :data:`OVERDUE_MS` now (no scheduler fires them);
    ticks fired, passed over because the thread was busy (``multitask="reject"``),
    and skipped after downtime."""

    crons: int = 0
    scheduled: int = 0
    overdue: int = 0
    fired: int = 0
    busy: int = 0
    skipped: int = 0


class CronStore:
    """One queue's crons in Redis, behind typed calls; ``client``, ``prefix`` and
    ``queue`` as for :class:`~dialogllm.queue.store.QueueStore` (the crons live in
    the queue's slot).

    >>> store = CronStore(client, prefix="app", queue="default")
    >>> await store.due(now_ms, limit=10)
    [('c-1', 1767225600000)]
    """

    def __init__(self, client: Any, *, prefix: str, queue: str) -> None:
        self.client = client
        self.prefix = prefix
        self.queue = queue
        self.base = keys.queue_base(prefix, queue)
        self._crons = keys.queue_key(prefix, queue, keys.QueueKey.CRONS)
        self._due = keys.queue_key(prefix, queue, keys.QueueKey.CRON_DUE)
        self._stats = keys.queue_key(prefix, queue, keys.QueueKey.CRON_STATS)
        self._cleanup = keys.queue_key(prefix, queue, keys.QueueKey.CRON_CLEANUP)
        self._fired = keys.queue_key(prefix, queue, keys.QueueKey.CRON_FIRED)
        self._follow = keys.queue_key(prefix, queue, keys.QueueKey.CRON_FOLLOW)
        self._indexed = keys.queue_key(prefix, queue, keys.QueueKey.CRON_INDEXED)
        register = client.register_script
        self._put = register(lua.CRON_PUT)
        self._delete = register(lua.CRON_DELETE)
        self._fire = register(lua.CRON_FIRE)
        self._claim_fired = register(lua.CLAIM_LAPSED)
        self._index = register(lua.CRON_INDEX)

    def _record_key(self, cron_id: str) -> str:
        return keys.cron_record(self.prefix, self.queue, cron_id)

    async def now_ms(self) -> int:
        """The Redis server's clock (what ticks are compared with), in ms."""
        seconds, micros = await self.client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def _index_keys(self, spec: CronSpec) -> list[str]:
        """The search indexes a cron of ``spec`` belongs in ('' for none)."""
        return [
            keys.cron_index(self.prefix, self.queue, by, value) if value else ""
            for by, value in (
                ("assistant", spec.assistant_id),
                ("thread", spec.thread_id),
            )
        ]

    async def _put_spec(
        self, cron_id: str, mode: str, spec: CronSpec, next_ms: int | None, version: str
    ) -> list[Any]:
        """One ``CRON_PUT`` call: the spec, its next tick and its indexes."""
        args = [self.base, cron_id, mode, spec.to_json(), _opt(next_ms), version]
        reply: list[Any] = await self._put(
            keys=[self._crons], args=[*args, *self._index_keys(spec)]
        )
        return reply

    async def create(self, cron_id: str, spec: CronSpec, next_ms: int | None) -> bool:
        """Store a new cron; ``False`` when ``cron_id`` exists already."""
        reply = await self._put_spec(cron_id, "create", spec, next_ms, "")
        return str(reply[0]) == "ok"

    async def update(
        self, cron_id: str, spec: CronSpec, next_ms: int | None, version: int
    ) -> str:
        """Replace a cron's spec and next tick while it is at ``version``:
        ``ok``, ``gone`` or ``stale`` (changed meanwhile: read it again)."""
        reply = await self._put_spec(cron_id, "update", spec, next_ms, str(version))
        return str(reply[0])

    async def delete(self, cron_id: str) -> bool:
        """Forget a cron; ``False`` when there was none."""
        reply = await self._delete(keys=[self._crons], args=[self.base, cron_id])
        return int(reply) == 1

    async def get(self, cron_id: str) -> CronRecord | None:
        """The cron's record; ``None`` when unknown."""
        raw = await self.client.hgetall(self._record_key(cron_id))
        return CronRecord.from_hash(cron_id, raw) if raw else None

    async def ids(self) -> list[str]:
        """Every cron id, oldest first."""
        found: list[str] = await self.client.zrange(self._crons, 0, -1)
        return found

    async def ids_for(
        self, *, assistant_id: str | None = None, thread_id: str | None = None
    ) -> list[str]:
        """The ids of the crons on ``thread_id`` (when given) or else for
        ``assistant_id``, oldest first, from their index: a search by either reads
        only those records. The first call on a queue whose crons predate the
        indexes adds them (:meth:`index_all`).

        >>> await store.ids_for(thread_id="t-1")
        ['c-1']
        """
        by, value = ("thread", thread_id) if thread_id else ("assistant", assistant_id)
        if not value:
            raise ValueError("ids_for needs an assistant_id or a thread_id")
        index = keys.cron_index(self.prefix, self.queue, by, value)
        pipe = self.client.pipeline(transaction=False)  # one slot: the queue's
        pipe.exists(self._indexed)
        pipe.zrange(index, 0, -1)
        indexed, found = await pipe.execute()
        if not indexed:  # read again once the older crons are in
            await self.index_all()
            found = await self.client.zrange(index, 0, -1)
        return [str(cron_id) for cron_id in found]

    async def index_all(self, chunk: int = 200) -> int:
        """Add every cron not in the search indexes yet (made before they
        existed) to them, then mark the queue indexed; how many were added."""
        added = 0
        ids = await self.ids()
        for start in range(0, len(ids), chunk):
            args: list[str] = [self.base]
            for record in await self.records(ids[start : start + chunk]):
                args += [record.cron_id, *self._index_keys(record.spec)]
            if len(args) > 1:
                added += int(await self._index(keys=[self._crons], args=args))
        await self.client.set(self._indexed, "1")
        return added

    async def records(self, cron_ids: list[str]) -> list[CronRecord]:
        """The records of ``cron_ids`` that exist, in order (one round trip)."""
        raws = await read_hashes(self.client, [self._record_key(c) for c in cron_ids])
        found = (
            CronRecord.from_hash(cron_id, raw) if raw else None
            for cron_id, raw in zip(cron_ids, raws, strict=True)
        )
        return [record for record in found if record is not None]

    async def due(self, now_ms: int, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` crons due at ``now_ms``: (cron id, due tick ms), earliest
        first."""
        pairs = await self.client.zrangebyscore(
            self._due, "-inf", now_ms, start=0, num=limit, withscores=True
        )
        return [(str(cron_id), int(score)) for cron_id, score in pairs]

    async def next_due_ms(self) -> int | None:
        """The earliest next tick of any cron of the queue; ``None`` when none."""
        pairs = await self.client.zrange(self._due, 0, 0, withscores=True)
        return int(pairs[0][1]) if pairs else None

    async def fire(self, claim: CronFire) -> tuple[str, str]:
        """Claim a tick and enqueue its run, in one call: (verdict, run id).
        ``lost``: another scheduler took the tick (or the cron was deleted or
        moved); ``stale``: the cron changed since it was read; ``ok`` (enqueued),
        ``busy`` (the thread's run refused it), ``exists``; ``ended``: advanced
        without a run."""
        reply = await self._fire(
            keys=[self._crons],
            args=[
                self.base,
                claim.cron_id,
                claim.version,
                claim.expected_ms,
                claim.tick_ms,
                _opt(claim.next_ms),
                claim.skipped,
                "1" if claim.fire else "0",
                claim.run_id,
                claim.graph,
                claim.thread_id,
                claim.input,
                claim.max_attempts,
                claim.multitask,
                claim.retention_ms,
                claim.options,
                "1" if claim.cleanup else "",
                "1" if claim.followed else "",
                claim.follow.to_json() if claim.follow is not None else "",
            ],
        )
        return str(reply[0]), str(reply[1]) if len(reply) > 1 else ""

    async def cleanups(self, count: int) -> dict[str, str]:
        """Up to about ``count`` stateless firings whose thread waits to be
        deleted: run id -> thread id. A followed cron's firing that an API process
        has not followed yet is left out: the API may take its deletion over (and
        delete the thread after the webhook read it)."""
        _, found = await self.client.hscan(self._cleanup, 0, count=count)
        if not found:
            return {}
        run_ids = list(found)
        pending = await self.client.zmscore(self._fired, run_ids)
        return {
            run_id: found[run_id]
            for run_id, score in zip(run_ids, pending, strict=True)
            if score is None
        }

    async def cleaned(self, run_id: str) -> None:
        """Forget a firing whose thread was deleted."""
        await self.client.hdel(self._cleanup, run_id)

    async def claim_fired(self, now_ms: int, claim_ms: int, limit: int) -> list[str]:
        """Claim up to ``limit`` firings of followed crons that no API process holds
        (for ``claim_ms``: then they are claimable again); their run ids."""
        ids = await self._claim_fired(
            keys=[self._fired], args=[now_ms, claim_ms, limit]
        )
        return [str(i) for i in ids]

    async def follow_up(self, run_id: str) -> FiringFollowUp | None:
        """What the announced firing ``run_id`` asks the API for; ``None`` when it
        was announced without it (by an older version) or is done."""
        return FiringFollowUp.from_json(await self.client.hget(self._follow, run_id))

    async def fired_done(self, run_id: str, *, took_cleanup: bool) -> None:
        """Forget a followed firing: an API process did what it asks for;
        ``took_cleanup``: and deletes its thread itself, so no scheduler does."""
        pipe = self.client.pipeline(transaction=True)  # one slot: the queue's
        pipe.zrem(self._fired, run_id)
        pipe.hdel(self._follow, run_id)
        if took_cleanup:
            pipe.hdel(self._cleanup, run_id)
        await pipe.execute()

    async def stats(self, now_ms: int) -> CronStats:
        """The queue's cron counters (one round trip)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self._crons)
        pipe.zcard(self._due)
        pipe.zcount(self._due, "-inf", now_ms - OVERDUE_MS)
        pipe.hgetall(self._stats)
        crons, scheduled, overdue, counters = await pipe.execute()

        def counter(name: str) -> int:
            try:
                return int(counters.get(name) or 0)
            except ValueError:
                return 0

        return CronStats(
            crons=int(crons),
            scheduled=int(scheduled),
            overdue=int(overdue),
            fired=counter("fired"),
            busy=counter("busy"),
            skipped=counter("skipped"),
        )


def _opt(value: int | None) -> str | int:
    return "" if value is None else value
