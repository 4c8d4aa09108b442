"""The producer side of the queue: enqueue runs, read, follow, cancel and retry them.

:class:`Queue` talks to Redis only through its
:class:`~dialogllm.queue.store.QueueStore`, which knows the data layout: ``enqueue`` is
one round trip (one ``EVALSHA``), and so are ``cancel`` and ``dlq_retry``. Waiting never
polls: :meth:`Queue.wait` and :meth:`Queue.events` block on the run's event stream
(``XREAD BLOCK``), which a client can also join late and replay from the start.

The rule a reader must not break: a run's input is JSON (never pickle); anything else
is refused at ``enqueue`` with :class:`~dialogllm.errors.InputValidationError`.

>>> async with Queue.from_url("redis://127.0.0.1:6379/0") as queue:
...     run_id = await queue.enqueue("app.graphs:debate", {"topic": "tea"})
...     record = await queue.wait(run_id, timeout=60)
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Unpack

from langgraph.types import Command
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialogllm.config import check_ids, get_settings
from dialogllm.errors import (
    ConfigError,
    DuplicateRunError,
    GraphNotFoundError,
    InputValidationError,
    PayloadTooLargeError,
    RunNotFoundError,
    ThreadBusyError,
)
from dialogllm.loader import canonical_reference, is_file_reference
from dialogllm.logging import get_logger
from dialogllm.queue.models import (
    MULTITASK_VALUES,
    DeadLetter,
    Multitask,
    Recovery,
    RunEvent,
    RunOptions,
    RunRecord,
    RunStatus,
)
from dialogllm.queue.store import Enqueued, QueueStore
from dialogllm.redis.clients import (
    AsyncClient,
    async_client,
    decodes_responses,
    describe,
)
from dialogllm.redis.errors import REDIS_FAILURES, map_redis_error
from dialogllm.redis.url import resolve_url


def _location_independent(graph: str) -> str:
    """A file reference (``./counting.py:graph``) as an absolute path, checked to
    exist: a worker in another directory must load this file, not its own
    ``counting.py``. Graph names and ``package.module:attr`` stay as given."""
    target, sep, _ = graph.rpartition(":")
    if not sep or not is_file_reference(target):
        return graph
    absolute = canonical_reference(graph)
    path = Path(absolute.rpartition(":")[0])
    if not path.is_file():
        raise GraphNotFoundError(
            f"graph file {target!r} does not exist (looked at {path}); nothing was "
            "enqueued"
        )
    return absolute


#: Longest graph reference accepted (a module path or a file path and attribute).
_MAX_GRAPH_REF = 1000
#: How long ``events(follow=True)`` tolerates nothing but read timeouts in a row.
_EVENTS_TIMEOUT_PATIENCE_S = 30.0

__all__ = [
    "DEFAULT_DEAD_RETENTION",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_QUEUE",
    "DEFAULT_RETENTION",
    "EnqueueArgs",
    "Queue",
    "decode_input",
    "encode_input",
]

T = TypeVar("T")

DEFAULT_QUEUE = "default"
#: Seconds a finished run's record, events and idempotency key are kept.
DEFAULT_RETENTION = 24 * 3600.0
#: Seconds a dead run's record is kept (so ``dlq retry`` still has its input).
DEFAULT_DEAD_RETENTION = 7 * 24 * 3600.0
DEFAULT_MAX_ATTEMPTS = 3

_COMMAND_KEY = "$command"
_log = get_logger("dialogllm.queue")


def encode_input(value: Any) -> str:
    """JSON text of a run input; a LangGraph ``Command`` (resume/update/goto) is kept.

    >>> encode_input({"topic": "tea"})
    '{"topic":"tea"}'
    """
    if isinstance(value, Command):
        payload: dict[str, Any] = {}
        if value.resume is not None:
            payload["resume"] = value.resume
        if value.update is not None:
            payload["update"] = value.update
        if value.goto:
            payload["goto"] = value.goto
        value = {_COMMAND_KEY: payload}
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputValidationError(
            f"run input must be JSON (dicts, lists, strings, numbers): {exc}; "
            "convert objects to plain data before enqueueing"
        ) from None


def encode_bounded_input(value: Any, *, what: str, untouched: str) -> str:
    """:func:`encode_input`, refused with
    :class:`~dialogllm.errors.PayloadTooLargeError` over
    ``DIALOGLLM_MAX_INPUT_BYTES``; the message names ``what`` is too large and says
    ``untouched`` (what was not done).

    >>> encode_bounded_input({"n": 1}, what="run input", untouched="not enqueued")
    '{"n":1}'
    """
    payload = encode_input(value)
    size = len(payload.encode())
    limit = get_settings().max_input_bytes
    if size > limit:
        raise PayloadTooLargeError(
            f"{what} is {size} bytes, over the limit of {limit} "
            f"(DIALOGLLM_MAX_INPUT_BYTES); {untouched}"
        )
    return payload


def decode_input(text: str) -> Any:
    """The graph input stored by :func:`encode_input` (a ``Command`` comes back)."""
    value = json.loads(text) if text else None
    if isinstance(value, dict) and set(value) == {_COMMAND_KEY}:
        return Command(**value[_COMMAND_KEY])
    return value


def _ms(value: float | timedelta | None) -> int:
    if value is None:
        return 0
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError("delay must not be negative")
    return int(seconds * 1000)


class EnqueueArgs(TypedDict, total=False):
    """The keyword arguments of :meth:`Queue.enqueue` (all optional).

    ``thread_id``: the thread (a new one when ``None``); ``idempotency_key``: the
    same key returns the first run; ``multitask``: ``"reject"``, ``"enqueue"``
    (default), ``"interrupt"``, ``"rollback"``; ``max_attempts``: the queue's
    default when ``None``; ``delay``: seconds (or a ``timedelta``) to hold the run
    back; ``options``: :class:`RunOptions`; ``run_id``: a name for the run.
    """

    thread_id: str | None
    idempotency_key: str | None
    multitask: Multitask
    max_attempts: int | None
    delay: float | timedelta | None
    options: RunOptions | None
    run_id: str | None


class Queue:
    """A named run queue in Redis: the producer and inspection API.

    Args:
        client: a ``redis.asyncio.Redis`` (or ``RedisCluster``: every key of a queue
            carries the queue's hash tag) created with ``decode_responses=True``.
        key_prefix: prefix of every key (default: the ``DIALOGLLM_KEY_PREFIX``
            setting); use the checkpointer's prefix.
        queue: the queue's name; workers read one queue.
        retention: seconds finished runs stay readable (record, events, idempotency).
        dead_retention: seconds dead runs stay readable and retryable.
        max_attempts: default attempts per run before it goes to the dead letters.
        url: shown (password masked) in error messages.

    >>> queue = Queue(async_client(url), key_prefix="app")
    >>> run_id = await queue.enqueue("app.graphs:debate", {"topic": "tea"})
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        key_prefix: str | None = None,
        queue: str = DEFAULT_QUEUE,
        retention: float = DEFAULT_RETENTION,
        dead_retention: float = DEFAULT_DEAD_RETENTION,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        url: str | None = None,
    ) -> None:
        self.client: Any = client  # redis-py's reply types are too loose to use
        if not decodes_responses(self.client):
            raise ConfigError("Queue needs a Redis client with decode_responses=True")
        if retention <= 0 or dead_retention <= 0:
            raise ConfigError("retention and dead_retention must be > 0 seconds")
        if max_attempts < 1:
            raise ConfigError("max_attempts must be >= 1")
        self.prefix = key_prefix or get_settings().key_prefix
        self.name = queue
        self.retention_ms = int(retention * 1000)
        self.dead_retention_ms = int(dead_retention * 1000)
        self.max_attempts = max_attempts
        self.url = url or describe(client)
        self.store = QueueStore(self.client, prefix=self.prefix, queue=queue)
        self.base = self.store.base
        self._owns_client = False

    @classmethod
    def from_url(
        cls, url: str | None = None, *, cluster: bool | None = None, **options: Any
    ) -> Queue:
        """A queue with its own pooled client; close it with :meth:`aclose`.
        ``url`` defaults to where every entry point looks
        (:func:`dialogllm.redis.resolve_url`: ``DIALOGLLM_REDIS_URL``, else the
        embedded Redis); ``cluster`` (default: ``DIALOGLLM_REDIS_CLUSTER``) connects
        to a Redis Cluster.

        >>> queue = Queue.from_url("rediss://app:secret@cache:6380/0", queue="llm")
        """
        url = resolve_url(url)
        client = async_client(url, decode=True, cluster=cluster)
        queue = cls(client, url=url, **options)
        queue._owns_client = True
        return queue

    async def aclose(self) -> None:
        """Close the client when this queue created it."""
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except REDIS_FAILURES as exc:
            raise map_redis_error(exc, self.url, what) from exc

    # --- producing ------------------------------------------------------------------

    async def enqueue(
        self, graph: str, input: Any = None, **kwargs: Unpack[EnqueueArgs]
    ) -> str:
        """Enqueue a run of ``graph`` on ``thread_id`` (a new thread when ``None``);
        return its run id. One round trip. The keyword arguments
        (:class:`EnqueueArgs`): ``thread_id``, ``idempotency_key``, ``multitask``
        (default ``"enqueue"``), ``max_attempts``, ``delay``, ``options``,
        ``run_id``.

        ``options`` say how the run runs (a ``Command`` to resume with, config,
        context, stream modes, a checkpoint to fork from: :class:`RunOptions`);
        ``run_id`` names the run (default: a new UUID).

        ``multitask`` says what happens when the thread already has a pending or
        running run: ``"reject"`` raises :class:`~dialogllm.errors.ThreadBusyError`,
        ``"enqueue"`` runs this one after it, ``"interrupt"`` stops it at its next step
        (its work is kept) and runs this one next, ``"rollback"`` stops it, deletes its
        checkpoints and runs this one next. The same ``idempotency_key`` returns the
        first run's id (while that run's record is retained); with another graph or
        input it raises :class:`~dialogllm.errors.DuplicateRunError`. ``delay``
        (seconds) holds the run back; the thread counts as busy meanwhile.

        >>> run_id = await queue.enqueue("app.graphs:chat", {"messages": ["hi"]},
        ...                              thread_id="t-1", multitask="interrupt")
        """
        return (await self._submit(graph, input, **kwargs)).run_id

    async def enqueue_record(
        self, graph: str, input: Any = None, **kwargs: Unpack[EnqueueArgs]
    ) -> RunRecord:
        """:meth:`enqueue`, answering the new run's record as stored, read in the
        same round trip (what an API answers a create with). A run that existed
        already (its ``run_id`` or idempotency key) is read again.

        >>> (await queue.enqueue_record("app.graphs:chat", None)).status
        <RunStatus.PENDING: 'pending'>
        """
        enqueued = await self._submit(graph, input, **kwargs)
        if enqueued.record is not None:
            return enqueued.record
        return await self.get(enqueued.run_id)

    async def _submit(
        self,
        graph: str,
        input: Any,
        *,
        thread_id: str | None = None,
        idempotency_key: str | None = None,
        multitask: Multitask = "enqueue",
        max_attempts: int | None = None,
        delay: float | timedelta | None = None,
        options: RunOptions | None = None,
        run_id: str | None = None,
    ) -> Enqueued:
        if multitask not in MULTITASK_VALUES:
            raise ValueError(f"multitask must be one of {MULTITASK_VALUES}")
        attempts = self.max_attempts if max_attempts is None else max_attempts
        if attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not graph:
            raise ValueError("graph must name a graph")
        check_ids(
            {
                "thread id": thread_id,
                "idempotency key": idempotency_key,
                "run id": run_id,
            }
        )
        if len(graph) > _MAX_GRAPH_REF:
            raise InputValidationError(
                f"graph reference is {len(graph)} characters, over {_MAX_GRAPH_REF}"
            )
        graph = _location_independent(graph)
        payload = encode_bounded_input(
            input, what="run input", untouched="nothing was enqueued"
        )
        run_id = run_id or str(uuid.uuid4())
        thread = thread_id or str(uuid.uuid4())
        options_json = (options or RunOptions()).to_json()
        fingerprint = hashlib.sha1(
            f"{graph}\0{thread_id or ''}\0{payload}\0{options_json}".encode()
        ).hexdigest()[:20]
        reply = await self._call(
            "enqueueing a run",
            lambda: self.store.enqueue(
                run_id=run_id,
                graph=graph,
                thread_id=thread,
                input=payload,
                max_attempts=attempts,
                delay_ms=_ms(delay),
                multitask=multitask,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                retention_ms=self.retention_ms,
                options=options_json,
            ),
        )
        verdict, existing = reply.verdict, reply.run_id
        if verdict == "busy":
            raise ThreadBusyError(
                f"thread {thread!r} is busy with run {existing} ({reply.status}); "
                "enqueue with multitask='enqueue', 'interrupt' or 'rollback', or wait "
                "for that run"
            )
        if verdict == "duplicate":
            raise DuplicateRunError(
                f"idempotency key {idempotency_key!r} was used for run {existing} "
                "with another graph, thread or input; use a new key for a new run"
            )
        _log.debug(
            "run enqueued",
            run_id=existing,
            thread_id=thread,
            graph=graph,
            verdict=verdict,
        )
        return reply

    # --- reading --------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord:
        """The run's record; :class:`~dialogllm.errors.RunNotFoundError` when unknown
        or expired. A field that cannot be decoded (written by something other than
        DialogueLLM) never raises: it reads as its default and is named in
        :attr:`~dialogllm.queue.RunRecord.problems`.

        >>> (await queue.get(run_id)).status
        <RunStatus.RUNNING: 'running'>
        """
        record = await self._call("reading a run", lambda: self.store.record(run_id))
        if record is None:
            raise RunNotFoundError(
                f"no run {run_id!r} in queue {self.name!r} (never enqueued, or "
                "expired after the retention period)"
            )
        return record

    async def list(
        self,
        *,
        status: RunStatus | str | None = None,
        graph: str | None = None,
        thread_id: str | None = None,
        limit: int = 100,
    ) -> list[RunRecord]:
        """Retained runs, newest first, filtered by status, graph and thread.

        Reads records in pages of 200 (cost: proportional to the runs retained).

        >>> await queue.list(status="dead", graph="app.graphs:chat", limit=10)
        """
        wanted = RunStatus(status) if status is not None else None
        out: list[RunRecord] = []
        start = 0
        page = 200
        while len(out) < limit:
            records = await self._call(
                "listing runs", functools.partial(self.store.records_page, start, page)
            )
            if not records:
                break
            for record in records:
                if record is None:
                    continue
                if (
                    (wanted is None or record.status is wanted)
                    and (graph is None or record.graph == graph)
                    and (thread_id is None or record.thread_id == thread_id)
                ):
                    out.append(record)
                    if len(out) >= limit:
                        break
            start += page
        return out

    async def active_run(self, thread_id: str) -> RunRecord | None:
        """The pending or running run that holds ``thread_id``, or ``None`` when the
        thread is free.

        >>> busy = await queue.active_run("t-1") is not None
        """
        run_id = await self._call(
            "reading a thread's run", lambda: self.store.active_run(thread_id)
        )
        if run_id is None:
            return None
        try:
            record = await self.get(run_id)
        except RunNotFoundError:
            return None
        return None if record.status.is_terminal else record

    async def events(
        self,
        run_id: str,
        *,
        after: str = "0",
        follow: bool = True,
        timeout: float | None = None,
    ) -> AsyncIterator[RunEvent]:
        """The run's events from the start (or after the event id ``after``); with
        ``follow`` it blocks for new ones (``XREAD BLOCK``, no polling) and ends after
        a terminal status event or after ``timeout`` seconds.

        >>> async for event in queue.events(run_id):
        ...     print(event.kind, event.data)
        """
        await self.get(run_id)  # RunNotFoundError for unknown runs
        deadline = None if timeout is None else time.monotonic() + timeout
        last = after
        quiet_since: float | None = None
        while True:
            block: int | None = None
            if follow:
                left = 2.0 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return
                # short blocks: a busy server answering late is not an outage
                block = max(1, int(min(left, 2.0) * 1000))
            try:
                events = await self.store.read_events(
                    run_id, after=last, count=500, block_ms=block
                )
                quiet_since = None
            except RedisTimeoutError as exc:
                # a busy server answering a blocking read late is not an outage;
                # half a minute of nothing but timeouts is
                now = time.monotonic()
                quiet_since = quiet_since if quiet_since is not None else now
                if not follow or now - quiet_since > _EVENTS_TIMEOUT_PATIENCE_S:
                    raise map_redis_error(exc, self.url, "reading run events") from exc
                continue
            except REDIS_FAILURES as exc:
                raise map_redis_error(exc, self.url, "reading run events") from exc
            for event in events:
                last = event.id
                yield event
                status = event.status
                if follow and status is not None and status.is_terminal:
                    return
            if not follow and not events:
                return
            if follow and not events:
                exists = await self._call(
                    "reading run events", lambda: self.store.has_events(run_id)
                )
                if not exists:
                    return

    async def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run reaches a terminal status; return its record.

        Raises ``TimeoutError`` after ``timeout`` seconds (``None``: wait forever)
        and :class:`~dialogllm.errors.RunNotFoundError` for unknown runs. A record
        whose status cannot be decoded reads as ``pending``, so ``wait`` keeps
        waiting (a worker that meets such a run dead-letters it, naming the field);
        the ``TimeoutError`` then names the record's problems.

        >>> record = await queue.wait(run_id, timeout=120)
        >>> record.status, record.result
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # The newest event id first, then the record: a status change after that
        # read is an event after that id (a retried dead run has older ends).
        newest = await self._call(
            "reading run events", lambda: self.store.newest_event_id(run_id)
        )
        after = newest or "0"
        record = await self.get(run_id)
        if record.status.is_terminal:
            return record
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        async for event in self.events(run_id, after=after, timeout=left):
            status = event.status
            if status is not None and status.is_terminal:
                return await self.get(run_id)
        record = await self.get(run_id)
        if record.status.is_terminal:
            return record
        problems = "; ".join(f"{k}: {v}" for k, v in record.problems.items())
        raise TimeoutError(
            f"run {run_id} is still {record.status.value} after {timeout} s"
            + (f" (its record cannot be read: {problems})" if problems else "")
        )

    # --- controlling ----------------------------------------------------------------

    async def cancel(self, run_id: str, reason: str = "cancelled") -> RunStatus:
        """Cancel a run. A pending run is cancelled at once (returns ``cancelled``); a
        running one is told to stop (its worker marks it ``cancelled`` within
        moments; returns ``running``). A finished run is left as it is.

        >>> await queue.cancel(run_id)
        <RunStatus.CANCELLED: 'cancelled'>
        """
        reply = await self._call(
            "cancelling a run",
            lambda: self.store.cancel(
                run_id, retention_ms=self.retention_ms, reason=reason
            ),
        )
        if reply == "gone":
            raise RunNotFoundError(f"no run {run_id!r} in queue {self.name!r}")
        if reply == "cancelling":
            return RunStatus.RUNNING
        return RunStatus(reply)

    async def delete(self, run_id: str) -> None:
        """Forget a finished run (its record and events) before its retention ends.

        Raises :class:`~dialogllm.errors.RunNotFoundError` for an unknown run and
        :class:`~dialogllm.errors.ThreadBusyError` for one still pending or running
        (cancel it first).

        >>> await queue.delete(run_id)
        """
        verdict = await self._call("deleting a run", lambda: self.store.delete(run_id))
        if verdict == "gone":
            raise RunNotFoundError(f"run {run_id!r} not found (or expired)")
        if verdict != "deleted":
            raise ThreadBusyError(
                f"run {run_id} is {verdict}; cancel it before deleting it"
            )

    async def dlq_list(self, limit: int = 100) -> builtins.list[DeadLetter]:
        """The newest ``limit`` dead letters, newest first.

        >>> [(d.run_id, d.reason) for d in await queue.dlq_list()]
        """
        return await self._call(
            "listing dead letters", lambda: self.store.dead_letters(limit)
        )

    async def recovery(self) -> Recovery:
        """Reclaims of runs whose worker died or stalled, and how long each stood.

        >>> figures = await queue.recovery()
        >>> figures.reclaims, [r.downtime_s for r in figures.recent]
        (2, [1.31, 1.12])
        """
        return await self._call("reading recovery figures", self.store.recovery)

    async def dlq_retry(self, run_id: str) -> RunStatus:
        """Re-enqueue a dead run (attempts start again at 0) after its thread's
        current runs; its dead letter is removed.

        >>> await queue.dlq_retry(run_id)
        <RunStatus.PENDING: 'pending'>
        """
        reply = await self._call(
            "retrying a dead run", lambda: self.store.dlq_retry(run_id)
        )
        if reply == "gone":
            raise RunNotFoundError(f"no run {run_id!r} in queue {self.name!r}")
        return RunStatus(reply)

    async def dlq_purge(self) -> int:
        """Empty the dead-letter stream; returns how many letters it held.

        The dead runs' records stay until their retention passes, so
        :meth:`dlq_retry` still takes a purged run until then.

        >>> await queue.dlq_purge()
        3
        """
        return await self._call("purging dead letters", self.store.dlq_purge)

    async def prune(self, limit: int = 1000) -> int:
        """Forget up to ``limit`` finished runs whose retention has passed (workers do
        this on their own; useful when no worker runs). Returns how many."""
        return await self._call("pruning runs", lambda: self.store.prune(limit))

    async def stats(self) -> dict[str, int]:
        """Counts for dashboards: ready, delayed, retained and dead-lettered runs.

        >>> await queue.stats()
        {'ready': 0, 'delayed': 2, 'retained': 40, 'dead_letters': 1}
        """
        return await self._call("reading stats", self.store.stats)

    async def oldest_ready_at(self) -> float | None:
        """When (seconds since the epoch) the oldest ready run entered the stream;
        ``None`` when none waits."""
        return await self._call("reading the stream", self.store.oldest_ready_at)

    async def stats_report(
        self,
    ) -> tuple[dict[str, int], builtins.list[tuple[str, str]]]:
        """:meth:`stats`, and each key that could not be counted (replaced by a value
        of another type) with why: what ``dialogllm status`` lists as bad records."""
        return await self._call("reading stats", self.store.stats_problems)
