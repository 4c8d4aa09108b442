"""Crash-safe dialogue runs on Redis: the run queue and its workers.

Producers :meth:`Queue.enqueue` runs of a graph on a thread; :class:`Worker` processes
run them, any number on any number of machines. Delivery of a run is at-least-once;
its effect on the thread is exactly-once, because a redelivered run resumes from its
last checkpoint and a worker that lost the thread's lease is fenced out of writing.
The key schema is in :mod:`dialogllm.queue.keys`, and every command on those keys
is sent by :class:`~dialogllm.queue.store.QueueStore`; semantics and costs in
``docs/queue.md``.

>>> from dialogllm.queue import Queue, Worker
>>> async with Queue.from_url("redis://127.0.0.1:6379/0") as queue:
...     run_id = await queue.enqueue("app.graphs:debate", {"topic": "tea"})
...     print((await queue.wait(run_id, timeout=60)).status)
RunStatus.SUCCESS
"""

from __future__ import annotations

from dialogllm.loader import Resolver, Runnable, import_resolver, load_target
from dialogllm.queue.client import EnqueueArgs, Queue, decode_input, encode_input
from dialogllm.queue.cron_store import CronRecord, CronSpec, CronStats, FiringFollowUp
from dialogllm.queue.crons import Crons, CronScheduler
from dialogllm.queue.models import (
    TERMINAL_STATUSES,
    DeadLetter,
    Multitask,
    Reclaim,
    Recovery,
    RunEvent,
    RunOptions,
    RunRecord,
    RunStatus,
)
from dialogllm.queue.worker import Worker, backoff_delay

__all__ = [
    "TERMINAL_STATUSES",
    "CronRecord",
    "CronScheduler",
    "CronSpec",
    "CronStats",
    "Crons",
    "DeadLetter",
    "EnqueueArgs",
    "FiringFollowUp",
    "Multitask",
    "Queue",
    "Reclaim",
    "Recovery",
    "Resolver",
    "RunEvent",
    "RunOptions",
    "RunRecord",
    "RunStatus",
    "Runnable",
    "Worker",
    "backoff_delay",
    "decode_input",
    "encode_input",
    "import_resolver",
    "load_target",
]
