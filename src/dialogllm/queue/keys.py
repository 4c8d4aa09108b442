"""The Redis key schema of the queue.

Every key of one queue carries the hash tag ``{<queue>}`` (the escaped queue name), so a
queue lives in one Redis Cluster slot and every queue-side state change (enqueue,
start, finish, cancel, retry, dead-letter) is one atomic Lua call on one slot. The
thread lease lives with the thread's checkpoints
(:func:`dialogllm.leases.thread_lease`, the thread's slot); the worker touches it in
separate one-slot calls. Keys are built here and nowhere else; nothing parses a key.

Per queue (``P`` is the key prefix, ``Q`` the escaped queue name, ``R`` a run id,
``T`` an escaped thread id, ``K`` an escaped idempotency key)::

    P:q:{Q}:stream       STREAM  ready runs (field ``run``), consumer group ``workers``
    P:q:{Q}:delayed      ZSET    run ids not yet due (delays, retry backoff), by due ms
    P:q:{Q}:runs         ZSET    every live run record, scored by creation ms
    P:q:{Q}:expiry       ZSET    finished run ids, scored by the ms their record expires
    P:q:{Q}:dlq          STREAM  dead letters: run, graph, thread, reason, attempts
    P:q:{Q}:signals      pub/sub channel: ``cancel R``, ``interrupt R``, ``rollback R``
    P:q:{Q}:recovery     HASH    ``reclaims``: runs taken over from a dead worker, ever
    P:q:{Q}:reclaims     LIST    the latest 200 reclaims, newest first: ``AT DOWN R``
                                 (server ms of the reclaim, ms since the run's last
                                 heartbeat, run id)
    P:q:{Q}:run:R        HASH    the run record (see ``RunRecord``)
    P:q:{Q}:ev:R         STREAM  the run's events, replayable from the start
    P:q:{Q}:th:T:active  STRING  the run that holds thread T in this queue
    P:q:{Q}:th:T:wait    LIST    runs waiting for thread T, in order
    P:q:{Q}:idem:K       STRING  idempotency key -> run id
    P:q:{Q}:crons        ZSET    every cron id, scored by creation ms
    P:q:{Q}:crondue      ZSET    enabled crons, scored by their next tick (ms): the
                                 one claim of a tick is a compare-and-set of it
    P:q:{Q}:cronstats    HASH    ``fired``, ``busy``, ``skipped``: ticks, ever
    P:q:{Q}:croncleanup  HASH    run id -> thread id: stateless firings whose thread
                                 is deleted once the run ends
    P:q:{Q}:cronfired    ZSET    run ids of the firings of followed crons
                                 (``CronSpec.followed``: made through the API),
                                 scored by the ms from which an API process may
                                 claim one to do what the API does for it
    P:q:{Q}:cronfollow   HASH    run id -> JSON ``FiringFollowUp``: that, for each
                                 firing in ``cronfired``, fixed when it fired
    P:q:{Q}:cron:C       HASH    a cron (``C`` its id; see ``CronRecord``); its
                                 ``ix_a``/``ix_t`` fields name the indexes below
                                 that hold it
    P:q:{Q}:crons:a:A    ZSET    ids of the crons for assistant A, by creation ms
    P:q:{Q}:crons:t:T    ZSET    ids of the crons on thread T, by creation ms
    P:q:{Q}:cronindexed  STRING  ``1`` once every cron is in those indexes (crons
                                 made before them are added by the first search)

Per key prefix (every queue's workers; no hash tag, touched alone)::

    P:fleet:workers      HASH    worker name -> JSON presence (see
                                 :mod:`dialogllm.queue.fleet`)

The rule a reader must not break: a key of a queue is only ever touched in the same
call as other keys of the same queue, never together with a thread's lease.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from dialogllm.leases import escape_tag

__all__ = [
    "CONSUMER_GROUP",
    "QueueKey",
    "cron_index",
    "cron_record",
    "fleet_workers",
    "idempotency",
    "queue_base",
    "queue_key",
    "run_events",
    "run_record",
    "thread_active",
    "thread_waiting",
]

#: Name of the consumer group every worker of a queue reads the stream with.
CONSUMER_GROUP: Final = "workers"


def queue_base(prefix: str, queue: str) -> str:
    """``P:q:{Q}``: the common start of every key of one queue.

    >>> queue_base("app", "default")
    'app:q:{default}'
    """
    return f"{prefix}:q:{{{escape_tag(queue)}}}"


class QueueKey(StrEnum):
    """The keys a queue has one of (the schema above): ``queue_key(p, q, key)``."""

    STREAM = "stream"  #: runs ready to start (one entry per delivery, field ``run``)
    DELAYED = "delayed"  #: run ids waiting for their due time (score: due ms)
    RUNS = "runs"  #: every live run id, scored by creation time (ms)
    EXPIRY = "expiry"  #: finished run ids, scored by when their record expires (ms)
    DEAD_LETTERS = "dlq"  #: runs that failed for good, with the reason
    SIGNALS = "signals"  #: pub/sub: ``cancel``/``interrupt``/``rollback`` a run
    RECOVERY = "recovery"  #: recovery counters (``reclaims``)
    RECLAIMS = "reclaims"  #: the latest reclaims, newest first (``AT DOWN RUN``)
    CRONS = "crons"  #: every cron id, scored by creation time (ms)
    CRON_DUE = "crondue"  #: enabled cron ids, scored by their next tick (ms)
    CRON_STATS = "cronstats"  #: counters of ticks: fired, busy, skipped
    CRON_CLEANUP = "croncleanup"  #: run id -> thread to delete when the run ends
    CRON_FIRED = "cronfired"  #: followed crons' firings, scored by claimable-from ms
    CRON_FOLLOW = "cronfollow"  #: run id -> what the API does for a followed firing
    CRON_INDEXED = "cronindexed"  #: ``1`` once every cron is in the search indexes


def queue_key(prefix: str, queue: str, key: QueueKey) -> str:
    """One of the queue's single keys.

    >>> queue_key("app", "default", QueueKey.DEAD_LETTERS)
    'app:q:{default}:dlq'
    """
    return f"{queue_base(prefix, queue)}:{key.value}"


def run_record(prefix: str, queue: str, run_id: str) -> str:
    """HASH: the record of one run.

    >>> run_record("app", "default", "r-1")
    'app:q:{default}:run:r-1'
    """
    return f"{queue_base(prefix, queue)}:run:{run_id}"


def run_events(prefix: str, queue: str, run_id: str) -> str:
    """STREAM of one run's events (status changes, node updates), replayable."""
    return f"{queue_base(prefix, queue)}:ev:{run_id}"


def thread_active(prefix: str, queue: str, thread_id: str) -> str:
    """STRING: the id of the run that currently holds the thread in this queue."""
    return f"{queue_base(prefix, queue)}:th:{escape_tag(thread_id)}:active"


def thread_waiting(prefix: str, queue: str, thread_id: str) -> str:
    """LIST of run ids waiting, in order, for the thread (``multitask="enqueue"``)."""
    return f"{queue_base(prefix, queue)}:th:{escape_tag(thread_id)}:wait"


def idempotency(prefix: str, queue: str, key: str) -> str:
    """STRING: the run id an idempotency key was first used for."""
    return f"{queue_base(prefix, queue)}:idem:{escape_tag(key)}"


def cron_record(prefix: str, queue: str, cron_id: str) -> str:
    """HASH: one cron's definition (``spec``, JSON) and its firing state.

    >>> cron_record("app", "default", "c-1")
    'app:q:{default}:cron:c-1'
    """
    return f"{queue_base(prefix, queue)}:cron:{cron_id}"


def cron_index(prefix: str, queue: str, by: str, value: str) -> str:
    """ZSET: the ids of the queue's crons for one assistant (``by="assistant"``) or
    on one thread (``by="thread"``), scored by creation ms: what a search by either
    reads instead of every cron.

    >>> cron_index("app", "default", "thread", "t-1")
    'app:q:{default}:crons:t:t-1'
    """
    short = {"assistant": "a", "thread": "t"}[by]
    return f"{queue_base(prefix, queue)}:crons:{short}:{escape_tag(value)}"


def fleet_workers(prefix: str) -> str:
    """HASH of live workers of every queue: name -> JSON presence record.

    >>> fleet_workers("app")
    'app:fleet:workers'
    """
    return f"{prefix}:fleet:workers"
