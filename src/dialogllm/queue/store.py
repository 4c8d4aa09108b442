"""The queue's storage boundary: every Redis command and script the queue sends.

:class:`QueueStore` is the one place that knows how a queue lies in Redis. It registers
and calls every script of :mod:`dialogllm.queue.lua` and the lease scripts of
:mod:`dialogllm.leases` (``START`` and ``END`` where one Redis node holds the queue and
the thread, their one-slot halves on a Redis Cluster), reads the stream with the
consumer group (``XREADGROUP``), takes back runs of dead workers (``XAUTOCLAIM``),
keeps house (prune, ``XINFO`` and forgetting idle consumers), listens to the queue's
pub/sub channel, and reads records, events, dead letters and counters.
:class:`HeartbeatStore` is its counterpart for the heartbeat thread's sync client:
lease renewals and liveness marks. It takes and
returns small typed records (:class:`Delivery`, :class:`ClaimedRun`,
:class:`RunEnd`, ...), never positional script arguments or replies.

:class:`~dialogllm.queue.Queue` (the producer) and :class:`~dialogllm.queue.Worker`
(scheduling, concurrency, a run's life cycle) both work through it. It raises redis-py's
errors as they come; mapping them to DialogueLLM's errors, retrying and backing off is
its callers' business.

The rule a reader must not break: a run's status changes only inside a script call
made here, and a worker's end of a run applies only while the record still names that
worker's lease.

>>> store = QueueStore(async_client(url), prefix="app", queue="default")
>>> deliveries = await store.read("worker-1", count=8, block_ms=2000)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from redis.client import NEVER_DECODE
from redis.exceptions import ResponseError

from dialogllm.leases import (
    LEASE_ACQUIRE,
    LEASE_RELEASE,
    LEASE_RENEW,
    thread_fence_counter,
    thread_lease,
)
from dialogllm.queue import keys, lua
from dialogllm.queue.models import (
    DeadLetter,
    Reclaim,
    Recovery,
    RunEvent,
    RunRecord,
    decode_text,
    dumps,
    excerpt,
)
from dialogllm.redis.clients import is_cluster

__all__ = [
    "DLQ_MAXLEN",
    "Beat",
    "ClaimedRun",
    "Delivery",
    "Enqueued",
    "FinishResult",
    "HeartbeatStore",
    "HeldLease",
    "NotStarted",
    "Promoted",
    "QueueStore",
    "Reclaimed",
    "Retrying",
    "RunEnd",
    "Signal",
    "StartResult",
]

T = TypeVar("T")

#: Dead letters kept in a queue's dead-letter stream (approximately).
DLQ_MAXLEN = 10_000
#: Events kept in a run's event stream (approximately).
EVENTS_MAXLEN = 10_000


class Retrying(Protocol):
    """How a caller retries one Redis call: ``await retrying(what, call)``."""

    def __call__(self, what: str, call: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """Await ``call()`` (again, as the caller's policy says); ``what`` names it."""
        ...


async def _once(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """The :class:`Retrying` that tries once."""
    return await call()


# --- records ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to a consumer: the run to start, or (``run_id`` empty)
    a malformed entry to :meth:`QueueStore.drop`."""

    entry_id: str
    run_id: str
    thread_id: str


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What ``XAUTOCLAIM`` took over: deliveries, and entries deleted meanwhile."""

    deliveries: list[Delivery]
    deleted: list[str]


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """A run this worker now holds: the thread's lease (``fence``) and the run's
    fields. ``signal`` is a stop (``cancel``, ``rollback``, ``interrupt``) that came
    while the run was not running; ``signal_by`` the run that sent it. ``fresh``:
    no claim ever took this run before (decided in the claiming script), so no
    checkpoint of it can exist and there is nothing to resume; ``False`` when not
    known."""

    fence: int
    graph: str
    thread_id: str
    input: str
    attempts: int
    max_attempts: int
    signal: str
    signal_by: str
    options: str = ""  # RunOptions as JSON ("" = the defaults)
    fresh: bool = False


@dataclass(frozen=True, slots=True)
class NotStarted:
    """A run that was not started. ``held``: another run's lease holds the thread
    (``holder``, with ``pttl_ms`` left); ``gone``: the run no longer exists;
    ``skip``: the entry is stale (the run is ``status`` now, or was redelivered);
    ``poison``: the run's record cannot be decoded, so the run was dead-lettered
    (``reason`` names the field)."""

    verdict: Literal["held", "gone", "skip", "poison"]
    holder: str = ""
    pttl_ms: int = 0
    status: str = ""
    reason: str = ""


#: What :meth:`QueueStore.start` returns.
StartResult = ClaimedRun | NotStarted


@dataclass(frozen=True, slots=True)
class RunEnd:
    """How one attempt of a run ended, as a worker records it.

    ``mode`` is a terminal status, ``retry`` (pending again after ``backoff_ms``) or
    ``handback`` (pending at once, the attempt not counted). ``retention_ms`` is how
    long a finished run stays readable; ``error_node`` the graph node ``error`` came
    from (``""`` when unknown).
    """

    run_id: str
    thread_id: str
    lease_id: str
    entry_id: str
    mode: str
    retention_ms: int
    result: str = ""
    error: str = ""
    backoff_ms: int = 0
    error_node: str = ""


@dataclass(frozen=True, slots=True)
class FinishResult:
    """The queue's verdict on a :class:`RunEnd`: the status or mode applied, or
    ``superseded`` (another lease holds the run now) or ``gone``."""

    verdict: str

    @property
    def superseded(self) -> bool:
        """Whether the run was taken over, so this end changed nothing."""
        return self.verdict == "superseded"


@dataclass(frozen=True, slots=True)
class Promoted:
    """Delayed runs moved to the stream, and ms until the next one is due
    (``None`` when none waits)."""

    moved: int
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class Signal:
    """A message on the queue's channel: ``wake`` (delayed runs are due), or a stop
    (``cancel``, ``interrupt``, ``rollback``) for ``run_id``, sent by run ``by``."""

    kind: str
    run_id: str = ""
    by: str = ""


@dataclass(frozen=True, slots=True)
class Enqueued:
    """The verdict of an enqueue: ``ok`` (a new run), ``exists`` (the run or its
    idempotency key's run), ``busy`` (the thread's active run, for ``reject``) or
    ``duplicate`` (the key's run had other arguments); ``status`` is that run's."""

    verdict: str
    run_id: str
    status: str
    #: a new run's record as the same call stored it (``None`` for other verdicts)
    record: RunRecord | None = None


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease the heartbeat renews: ``lease_id`` on ``thread_id``, for ``run_id``."""

    run_id: str
    thread_id: str
    lease_id: str


@dataclass(frozen=True, slots=True)
class Beat:
    """One renewal's answer: whether the lease still held (and was renewed), and the
    run's pending stop signal (``""`` when none)."""

    renewed: bool
    signal: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


#: Options of a command whose reply is read as bytes, whatever the client decodes:
#: records, events and lists a reader decodes itself (and reports when it cannot).
_RAW = {NEVER_DECODE: True}


def _whole(value: Any, what: str, problems: list[str], default: int = 0) -> int:
    """``value`` as a whole number; ``default`` (and a note) when it is not one."""
    if value in (None, "", b""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        problems.append(f"{what}: not a whole number: {excerpt(value)}")
        return default


def _reclaim(entry: Any) -> Reclaim:
    """One entry of the reclaims list (``"<at ms> <downtime ms> <run id>"``)."""
    problems: dict[str, str] = {}
    text = decode_text(entry, "entry", problems)
    if problems:
        raise ValueError("not UTF-8")
    at, down, run_id = text.split(" ", 2)
    return Reclaim(int(at) / 1000.0, int(down) / 1000.0, run_id)


def _delivery(entry_id: Any, fields: dict[str, str] | None) -> Delivery:
    fields = fields or {}
    return Delivery(_text(entry_id), fields.get("run") or "", fields.get("thread", ""))


def _start_result(reply: list[Any]) -> StartResult:
    verdict = reply[0]
    if verdict == "run":
        graph, thread, input_text, attempts, max_attempts, sig, sig_by = reply[2:9]
        options = str(reply[9]) if len(reply) > 9 else ""
        fresh = len(reply) > 10 and int(reply[10]) == 1
        return ClaimedRun(
            fence=int(reply[1]),
            graph=str(graph),
            thread_id=str(thread),
            input=str(input_text),
            attempts=int(attempts),
            max_attempts=int(max_attempts),
            signal=str(sig),
            signal_by=str(sig_by),
            options=options,
            fresh=fresh,
        )
    if verdict == "held":
        return NotStarted("held", holder=str(reply[1]), pttl_ms=int(reply[2]))
    if verdict == "skip":
        return NotStarted("skip", status=str(reply[1]))
    if verdict == "poison":
        return NotStarted("poison", reason=str(reply[1]))
    return NotStarted("gone")


# --- the store ----------------------------------------------------------------------


class QueueStore:
    """One queue's data in Redis, behind typed calls.

    Args:
        client: a ``redis.asyncio.Redis`` or ``RedisCluster`` created with
            ``decode_responses=True``.
        prefix: the key prefix shared with the checkpointer.
        queue: the queue's name.
        cluster: whether ``client`` talks to a Redis Cluster, where a worker takes
            and releases a thread's lease in calls of their own (default: asked of
            ``client``).

    >>> store = QueueStore(client, prefix="app", queue="default")
    >>> (await store.stats())["ready"]
    0
    """

    def __init__(
        self, client: Any, *, prefix: str, queue: str, cluster: bool | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.queue = queue
        self.cluster = is_cluster(client) if cluster is None else cluster
        self.base = keys.queue_base(prefix, queue)
        self.stream = keys.queue_key(prefix, queue, keys.QueueKey.STREAM)
        register = client.register_script
        self._enqueue = register(lua.ENQUEUE)
        self._cancel = register(lua.CANCEL)
        self._delete = register(lua.DELETE)
        self._dlq_retry = register(lua.DLQ_RETRY)
        self._prune = register(lua.PRUNE)
        self._promote = register(lua.PROMOTE)
        self._start = register(lua.START)
        self._end = register(lua.END)
        # one-slot halves of START and END, for Redis Cluster
        self._lease_acquire = register(LEASE_ACQUIRE)
        self._claim = register(lua.CLAIM)
        self._finish = register(lua.FINISH)
        self._lease_release = register(LEASE_RELEASE)

    # --- producing and controlling --------------------------------------------------

    async def enqueue(
        self,
        *,
        run_id: str,
        graph: str,
        thread_id: str,
        input: str,
        max_attempts: int,
        multitask: str,
        idempotency_key: str | None,
        delay_ms: int,
        fingerprint: str,
        retention_ms: int,
        options: str = "",
    ) -> Enqueued:
        """Create run ``run_id`` (JSON ``input``) unless its idempotency key names a
        run already; one round trip (``ENQUEUE``)."""
        idem_key = (
            keys.idempotency(self.prefix, self.queue, idempotency_key)
            if idempotency_key
            else ""
        )
        reply = await self._enqueue(
            keys=[self.stream],
            args=[
                self.base,
                run_id,
                graph,
                thread_id,
                input,
                max_attempts,
                multitask,
                idem_key,
                idempotency_key or "",
                delay_ms,
                fingerprint,
                retention_ms,
                options,
            ],
        )
        record = None
        if len(reply) > 3:
            fields = reply[3]
            raw = dict(zip(fields[::2], fields[1::2], strict=True))
            record = RunRecord.from_hash(run_id, raw)
        return Enqueued(str(reply[0]), str(reply[1]), str(reply[2]), record)

    async def cancel(self, run_id: str, *, retention_ms: int, reason: str) -> str:
        """Cancel a pending run, or signal a running one: ``cancelled``,
        ``cancelling``, ``gone``, or the status of a finished run."""
        reply = await self._cancel(
            keys=[self.stream], args=[self.base, run_id, retention_ms, reason]
        )
        return str(reply)

    async def delete(self, run_id: str) -> str:
        """Forget a finished run now: ``deleted``, ``gone``, or the status of a run
        that has not finished (left as it is)."""
        reply = await self._delete(keys=[self.stream], args=[self.base, run_id])
        return str(reply)

    async def dlq_retry(self, run_id: str) -> str:
        """Re-enqueue a dead run: ``pending``, ``gone``, or the status of a run that
        is not dead."""
        reply = await self._dlq_retry(keys=[self.stream], args=[self.base, run_id])
        return str(reply)

    async def prune(self, limit: int) -> int:
        """Forget up to ``limit`` finished runs whose retention has passed."""
        return int(await self._prune(keys=[self.stream], args=[self.base, limit]))

    # --- reading --------------------------------------------------------------------

    async def record(self, run_id: str) -> RunRecord | None:
        """The run's record; ``None`` when unknown or expired."""
        raw = await self.client.execute_command(
            "HGETALL", keys.run_record(self.prefix, self.queue, run_id), **_RAW
        )
        return RunRecord.from_hash(run_id, raw) if raw else None

    async def records_page(self, start: int, count: int) -> list[RunRecord | None]:
        """Up to ``count`` retained runs from position ``start``, newest first
        (``None`` for one that expired meanwhile); empty past the last run."""
        index = self._key(keys.QueueKey.RUNS)
        ids: list[str] = await self.client.zrevrange(index, start, start + count - 1)
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for run_id in ids:
            pipe.execute_command(
                "HGETALL", keys.run_record(self.prefix, self.queue, run_id), **_RAW
            )
        raws: list[dict[bytes, bytes]] = await pipe.execute()
        return [
            RunRecord.from_hash(run_id, raw) if raw else None
            for run_id, raw in zip(ids, raws, strict=True)
        ]

    async def read_events(
        self, run_id: str, *, after: str, count: int, block_ms: int | None
    ) -> list[RunEvent]:
        """The run's events after the event id ``after``; with ``block_ms``, wait
        that long for one (``XREAD BLOCK``). An entry that cannot be decoded comes
        back with its ``problem`` named, never as an error."""
        key = keys.run_events(self.prefix, self.queue, run_id)
        args: list[Any] = ["XREAD", "COUNT", count]
        if block_ms is not None:
            args += ["BLOCK", block_ms]
        reply = await self.client.execute_command(*args, "STREAMS", key, after, **_RAW)
        if isinstance(reply, dict):  # RESP3: {stream: [entries]}
            entries: list[Any] = next(iter(reply.values()), [[]])[0] if reply else []
        else:
            entries = reply[0][1] if reply else []
        return [RunEvent.from_entry(entry_id, fields) for entry_id, fields in entries]

    async def active_run(self, thread_id: str) -> str | None:
        """The id of the run that holds ``thread_id`` in this queue (pending or
        running), or ``None``; a finished run may still be named until the next
        enqueue on the thread clears it."""
        value = await self.client.get(
            keys.thread_active(self.prefix, self.queue, thread_id)
        )
        return str(value) if value else None

    async def has_events(self, run_id: str) -> bool:
        """Whether the run's event stream exists (it expires with the record)."""
        key = keys.run_events(self.prefix, self.queue, run_id)
        return bool(await self.client.exists(key))

    async def newest_event_id(self, run_id: str) -> str | None:
        """The id of the run's newest event; ``None`` when it has none."""
        key = keys.run_events(self.prefix, self.queue, run_id)
        newest = await self.client.xrevrange(key, count=1)
        return str(newest[0][0]) if newest else None

    async def dlq_purge(self) -> int:
        """Delete the dead-letter stream (one MULTI); how many letters it held."""
        key = self._key(keys.QueueKey.DEAD_LETTERS)
        pipe = self.client.pipeline(transaction=True)
        pipe.xlen(key)
        pipe.delete(key)
        held, _ = await pipe.execute()
        return int(held)

    async def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters, newest first."""
        key = self._key(keys.QueueKey.DEAD_LETTERS)
        entries = await self.client.xrevrange(key, count=limit)
        ignored: list[str] = []  # a corrupt figure reads as 0: the letter stays
        return [
            DeadLetter(
                id=entry_id,
                run_id=f.get("run", ""),
                graph=f.get("graph", ""),
                thread_id=f.get("thread", ""),
                reason=f.get("reason", ""),
                attempts=_whole(f.get("attempts"), "attempts", ignored),
                at=_whole(f.get("at"), "at", ignored) / 1000.0,
            )
            for entry_id, f in entries
        ]

    async def recovery(self) -> Recovery:
        """Every reclaim ever counted, and the latest ones with their downtime; an
        entry or count that cannot be decoded is left out and named in
        ``problems`` with its key."""
        counter = self._key(keys.QueueKey.RECOVERY)
        latest = self._key(keys.QueueKey.RECLAIMS)
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command("HGET", counter, "reclaims", **_RAW)
        pipe.execute_command("LRANGE", latest, 0, -1, **_RAW)
        total, entries = await pipe.execute(raise_on_error=False)
        problems: list[tuple[str, str]] = []
        if isinstance(total, ResponseError):  # e.g. a string where a hash belongs
            problems.append((counter, f"unreadable: {total}"))
            total = None
        if isinstance(entries, ResponseError):
            problems.append((latest, f"unreadable: {entries}"))
            entries = []
        recent = []
        for index, entry in enumerate(entries):
            try:
                recent.append(_reclaim(entry))
            except ValueError:
                problems.append(
                    (
                        latest,
                        f"entry {index}: not '<at ms> <downtime ms> <run id>': "
                        f"{excerpt(entry)}",
                    )
                )
        noted: list[str] = []
        reclaims = _whole(total, "field reclaims", noted)
        problems += [(counter, problem) for problem in noted]
        return Recovery(reclaims=reclaims, recent=recent, problems=problems)

    async def stats(self) -> dict[str, int]:
        """Counts: ``ready``, ``delayed``, ``retained`` and ``dead_letters`` runs
        (a key of the wrong type counts 0: see :meth:`stats_problems`)."""
        counts, _ = await self.stats_problems()
        return counts

    async def stats_problems(self) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """:meth:`stats` and, for each key that could not be counted (another
        client replaced it with a value of another type), the key and why."""
        named = {
            "ready": ("XLEN", self.stream),
            "delayed": ("ZCARD", self._key(keys.QueueKey.DELAYED)),
            "retained": ("ZCARD", self._key(keys.QueueKey.RUNS)),
            "dead_letters": ("XLEN", self._key(keys.QueueKey.DEAD_LETTERS)),
        }
        pipe = self.client.pipeline(transaction=False)
        for command, key in named.values():
            pipe.execute_command(command, key)
        replies = await pipe.execute(raise_on_error=False)
        counts: dict[str, int] = {}
        problems: list[tuple[str, str]] = []
        for (name, (_, key)), reply in zip(named.items(), replies, strict=True):
            if isinstance(reply, ResponseError):
                problems.append((key, f"cannot count {name}: {reply}"))
                counts[name] = 0
            else:
                counts[name] = int(reply)
        return counts, problems

    def _key(self, key: keys.QueueKey) -> str:
        return keys.queue_key(self.prefix, self.queue, key)

    async def oldest_ready_at(self) -> float | None:
        """When (seconds since the epoch) the oldest entry of the stream was added;
        ``None`` when the stream is empty."""
        oldest = await self.client.xrange(self.stream, count=1)
        if not oldest:
            return None
        return int(_text(oldest[0][0]).split("-", 1)[0]) / 1000

    # --- the consumer group ---------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the stream and its consumer group unless they exist."""
        try:
            await self.client.xgroup_create(
                self.stream, keys.CONSUMER_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(
        self, consumer: str, *, count: int, block_ms: int
    ) -> list[Delivery] | None:
        """New entries for ``consumer`` (``XREADGROUP BLOCK``); ``None`` when the
        consumer group does not exist (see :meth:`ensure_group`)."""
        try:
            reply = await self.client.xreadgroup(
                keys.CONSUMER_GROUP,
                consumer,
                {self.stream: ">"},
                count=count,
                block=block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return None
        return [
            _delivery(entry_id, fields)
            for _stream, entries in reply or []
            for entry_id, fields in entries
        ]

    async def reclaim(
        self, consumer: str, *, min_idle_ms: int, count: int
    ) -> Reclaimed | None:
        """Take over for ``consumer`` entries no consumer acknowledged for
        ``min_idle_ms`` (``XAUTOCLAIM``); ``None`` when the group does not exist."""
        try:
            reply = await self.client.xautoclaim(
                self.stream,
                keys.CONSUMER_GROUP,
                consumer,
                min_idle_time=min_idle_ms,
                start_id="0-0",
                count=count,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return None
        return Reclaimed(
            deliveries=[_delivery(entry_id, fields) for entry_id, fields in reply[1]],
            deleted=list(reply[2]) if len(reply) > 2 else [],
        )

    async def drop(self, entry_ids: list[str]) -> None:
        """Acknowledge and delete stream entries that start nothing."""
        if entry_ids:
            await self.client.xack(self.stream, keys.CONSUMER_GROUP, *entry_ids)
            await self.client.xdel(self.stream, *entry_ids)

    async def forget_consumer(self, consumer: str) -> None:
        """Remove ``consumer`` from the group when it holds no entries."""
        info = await self.client.xinfo_consumers(self.stream, keys.CONSUMER_GROUP)
        for entry in info:
            if entry["name"] == consumer and int(entry["pending"]) == 0:
                await self.client.xgroup_delconsumer(
                    self.stream, keys.CONSUMER_GROUP, consumer
                )

    async def housekeeping(self, consumer: str, *, idle_limit_ms: int) -> None:
        """Forget expired runs; remove consumers other than ``consumer`` that hold
        nothing and were idle longer than ``idle_limit_ms`` (dead workers)."""
        await self.prune(1000)
        for entry in await self.client.xinfo_consumers(
            self.stream, keys.CONSUMER_GROUP
        ):
            if (
                entry["name"] != consumer
                and int(entry["pending"]) == 0
                and int(entry["idle"]) > idle_limit_ms
            ):
                await self.client.xgroup_delconsumer(
                    self.stream, keys.CONSUMER_GROUP, entry["name"]
                )

    async def promote(self, limit: int) -> Promoted:
        """Move up to ``limit`` delayed runs that are due to the stream."""
        moved, wait_ms = await self._promote(
            keys=[self.stream], args=[self.base, limit]
        )
        wait = int(wait_ms)
        return Promoted(int(moved), None if wait < 0 else wait)

    async def signals(
        self, on_subscribed: Callable[[], None]
    ) -> AsyncGenerator[Signal, None]:
        """The queue's channel, message by message, until the connection breaks;
        ``on_subscribed`` is called once listening (messages before are missed)."""
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(self._key(keys.QueueKey.SIGNALS))
            on_subscribed()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                kind, _, rest = str(message["data"]).partition(" ")
                if kind == "wake":
                    yield Signal("wake")
                else:
                    run_id, _, by = rest.partition(" ")
                    yield Signal(kind, run_id, by)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    # --- a worker's run -------------------------------------------------------------

    async def start(
        self,
        *,
        run_id: str,
        thread_id: str,
        entry_id: str,
        consumer: str,
        lease_id: str,
        lease_ttl_ms: int,
        counter_ttl_ms: int,
        dead_retention_ms: int,
    ) -> StartResult:
        """Take the thread's lease ``lease_id`` and claim the run for ``consumer``:
        one round trip (``START``), or on a Cluster two one-slot calls, the lease
        given back when the run is not to be run. A run whose record cannot be
        decoded is dead-lettered in the same call (kept ``dead_retention_ms``)."""
        lease = thread_lease(self.prefix, thread_id)
        counter = thread_fence_counter(self.prefix, thread_id)
        # START is CLAIM with the lease taken in the same call: they share ARGV's head
        claim_args = [self.base, run_id, entry_id, consumer, lease_id]
        if not self.cluster:
            ttls = [lease_ttl_ms, counter_ttl_ms, dead_retention_ms]
            reply = await self._start(
                keys=[self.stream, lease, counter], args=[*claim_args, *ttls]
            )
            return _start_result(list(reply))
        got = await self._lease_acquire(
            keys=[lease, counter],
            args=[lease_id, run_id, lease_ttl_ms, counter_ttl_ms],
        )
        if int(got[0]) == 0:
            return _start_result(["held", got[1], got[2]])
        try:
            claim = await self._claim(
                keys=[self.stream], args=[*claim_args, dead_retention_ms]
            )
        except BaseException:
            # the run was not claimed: give the thread back now, not after lease_ttl
            with contextlib.suppress(Exception):
                await self._lease_release(keys=[lease], args=[lease_id])
            raise
        if claim[0] != "run":
            await self._lease_release(keys=[lease], args=[lease_id])
            return _start_result(list(claim))
        return _start_result([claim[0], got[1], *claim[1:]])

    async def end(self, end: RunEnd, *, retrying: Retrying = _once) -> FinishResult:
        """Release the thread's lease and record the run's end: one round trip
        (``END``), or on a Cluster two one-slot calls, the end recorded first (until
        then the lease keeps other workers off a run that is not over yet). Each
        round trip goes through ``retrying``."""
        args: list[str | int] = [
            self.base,
            end.run_id,
            end.lease_id,
            end.mode,
            end.entry_id,
            end.result,
            end.error,
            end.retention_ms,
            end.backoff_ms,
            DLQ_MAXLEN,
            end.error_node,
        ]
        lease = thread_lease(self.prefix, end.thread_id)
        if self.cluster:
            verdict = await retrying(
                "finishing a run",
                lambda: self._finish(keys=[self.stream], args=args),
            )
            await retrying(
                "releasing a lease",
                lambda: self._lease_release(keys=[lease], args=[end.lease_id]),
            )
        else:
            verdict = await retrying(
                "finishing a run",
                lambda: self._end(keys=[self.stream, lease], args=args),
            )
        return FinishResult(str(verdict))

    async def add_event(self, run_id: str, kind: str, data: Any) -> None:
        """Append an event (``data`` as JSON) to the run's event stream."""
        await self.client.xadd(
            keys.run_events(self.prefix, self.queue, run_id),
            {"kind": kind, "data": dumps(data)},
            maxlen=EVENTS_MAXLEN,
            approximate=True,
        )


class HeartbeatStore:
    """The heartbeat's Redis calls, on its own sync client (it runs in a thread).

    Args:
        client: a sync ``redis.Redis`` or ``RedisCluster``.
        prefix: the key prefix shared with the checkpointer.
        queue: the queue's name.

    >>> beats = HeartbeatStore(client, prefix="app", queue="default").beat(
    ...     [HeldLease("run-1", "thread-1", "lease-id")], ttl_ms=30_000)
    """

    def __init__(self, client: Any, *, prefix: str, queue: str) -> None:
        self.client = client
        self.prefix = prefix
        self.queue = queue
        self._renew = client.register_script(LEASE_RENEW)
        self._beat = client.register_script(lua.BEAT)
        self._cluster = is_cluster(client)  # Cluster pipelines refuse scripts

    def beat(self, held: list[HeldLease], *, ttl_ms: int) -> list[Beat]:
        """Renew each lease for ``ttl_ms`` (only while it still holds its id) and mark
        each run alive: one pipelined round trip, or on Redis Cluster two calls per
        run. Answers in the order of ``held``."""
        pipe = None if self._cluster else self.client.pipeline(transaction=False)
        replies: list[Any] = []
        for lease in held:
            replies.append(
                self._renew(
                    keys=[thread_lease(self.prefix, lease.thread_id)],
                    args=[lease.lease_id, ttl_ms],
                    client=pipe,
                )
            )
            replies.append(
                self._beat(
                    keys=[keys.run_record(self.prefix, self.queue, lease.run_id)],
                    args=[lease.lease_id],
                    client=pipe,
                )
            )
        if pipe is not None:
            replies = list(pipe.execute())
        return [
            Beat(renewed=int(renewed) == 1, signal=_text(signal) if signal else "")
            for renewed, signal in zip(replies[0::2], replies[1::2], strict=True)
        ]
