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

Per key prefix (every queue's workers; no hash tag, touched alone)::

    P:fleet:workers      HASH    worker name -> JSON presence (see
                                 :mod:`dialogllm.queue.fleet`)

The rule a reader must not break: a key of a queue is only ever touched in the same
call as other keys of the same queue, never together with a thread's lease.
"""

from __future__ import annotations

from typing import Final

from dialogllm.leases import escape_tag

__all__ = [
    "CONSUMER_GROUP",
    "dead_letters",
    "delayed",
    "expiry",
    "fleet_workers",
    "idempotency",
    "queue_base",
    "reclaims",
    "recovery",
    "run_events",
    "run_record",
    "runs_index",
    "signals",
    "stream",
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


def stream(prefix: str, queue: str) -> str:
    """STREAM of runs ready to start (one entry per delivery, field ``run``)."""
    return f"{queue_base(prefix, queue)}:stream"


def delayed(prefix: str, queue: str) -> str:
    """ZSET of run ids waiting for their due time (score: due, ms since the epoch)."""
    return f"{queue_base(prefix, queue)}:delayed"


def runs_index(prefix: str, queue: str) -> str:
    """ZSET of every live run id, scored by creation time (ms), for ``list``."""
    return f"{queue_base(prefix, queue)}:runs"


def expiry(prefix: str, queue: str) -> str:
    """ZSET of finished run ids, scored by the time (ms) their record expires."""
    return f"{queue_base(prefix, queue)}:expiry"


def dead_letters(prefix: str, queue: str) -> str:
    """STREAM of dead letters (runs that failed for good), with the reason."""
    return f"{queue_base(prefix, queue)}:dlq"


def signals(prefix: str, queue: str) -> str:
    """Pub/sub channel on which workers hear ``cancel``/``interrupt``/``rollback``."""
    return f"{queue_base(prefix, queue)}:signals"


def recovery(prefix: str, queue: str) -> str:
    """HASH of recovery counters (``reclaims``)."""
    return f"{queue_base(prefix, queue)}:recovery"


def reclaims(prefix: str, queue: str) -> str:
    """LIST of the latest reclaims, newest first (``AT DOWN RUN``)."""
    return f"{queue_base(prefix, queue)}:reclaims"


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


def fleet_workers(prefix: str) -> str:
    """HASH of live workers of every queue: name -> JSON presence record.

    >>> fleet_workers("app")
    'app:fleet:workers'
    """
    return f"{prefix}:fleet:workers"
