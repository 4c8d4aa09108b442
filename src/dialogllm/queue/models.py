"""The queue's data: run statuses, double-texting policies, run records, events.

Plain data with no I/O. A run record is stored as a Redis HASH of strings; this module
owns how its fields read back (:meth:`RunRecord.from_hash`). Inputs and results are
JSON (never pickle), so any process in any language can read them.

>>> RunStatus.SUCCESS.is_terminal
True
>>> RunStatus.PENDING.is_terminal
False
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "TERMINAL_STATUSES",
    "DeadLetter",
    "Multitask",
    "RunEvent",
    "RunRecord",
    "RunStatus",
    "dumps",
    "loads",
]


class RunStatus(enum.StrEnum):
    """Where a run is in its life.

    ``pending``
        enqueued (ready, delayed, waiting for its thread, or waiting for a retry).
    ``running``
        a worker holds the thread's lease and runs the graph.
    ``interrupted``
        finished: the graph called ``interrupt()`` (waits for a person), or a newer
        run on the thread took over with ``multitask="interrupt"``.
    ``success``
        finished: the graph reached its end; ``result`` holds the final values.
    ``error``
        finished: the graph raised an error retrying cannot fix (e.g. recursion limit).
    ``cancelled``
        finished: cancelled by :meth:`~dialogllm.queue.Queue.cancel`, or rolled back.
    ``dead``
        finished: failed ``max_attempts`` times, or its input was poison; it is in the
        dead-letter stream with the reason and can be retried from there.
    """

    PENDING = "pending"
    RUNNING = "running"
    INTERRUPTED = "interrupted"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"
    DEAD = "dead"

    @property
    def is_terminal(self) -> bool:
        """True when the run will not change again (unless retried from the DLQ)."""
        return self in TERMINAL_STATUSES


#: Statuses after which a run does nothing more.
TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {
        RunStatus.INTERRUPTED,
        RunStatus.SUCCESS,
        RunStatus.ERROR,
        RunStatus.CANCELLED,
        RunStatus.DEAD,
    }
)

#: What ``enqueue`` does when the thread already has a pending or running run:
#: ``reject`` raises ThreadBusyError, ``enqueue`` runs the new one after it,
#: ``interrupt`` stops it at its next step (keeping its work) and runs the new one,
#: ``rollback`` stops it, deletes its checkpoints and runs the new one.
Multitask = Literal["reject", "enqueue", "interrupt", "rollback"]
MULTITASK_VALUES: tuple[str, ...] = ("reject", "enqueue", "interrupt", "rollback")


def dumps(value: Any) -> str:
    """Encode ``value`` as compact JSON; LangChain messages and pydantic models are
    dumped as dicts, anything else unknown as its ``str``.

    >>> dumps({"a": [1, 2]})
    '{"a":[1,2]}'
    """
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def loads(text: str | bytes | None) -> Any:
    """Decode JSON written by :func:`dumps` (``None`` and ``""`` read as ``None``)."""
    if text is None or text in ("", b""):
        return None
    return json.loads(text)


def _s(raw: Mapping[str, str], name: str) -> str | None:
    value = raw.get(name)
    return value if value not in (None, "") else None


def _int(raw: Mapping[str, str], name: str, default: int) -> int:
    """A counter of the record; ``default`` when absent or not a whole number (a
    corrupt field: the worker dead-letters such a run, and it stays readable)."""
    try:
        return int(raw.get(name) or default)
    except ValueError:
        return default


def _ms(raw: Mapping[str, str], name: str) -> float | None:
    value = _s(raw, name)
    if value is None:
        return None
    try:
        return int(value) / 1000.0
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the queue knows about one run.

    Times are seconds since the epoch (``None`` until they happen). ``error`` is the
    last error's text and ``error_node`` the graph node it came from (when LangGraph
    named one); ``result`` the final graph values (JSON) of a successful run.
    ``reclaims`` counts the times another worker took the run over from a worker that
    died or stalled; ``heartbeat_at`` is the running attempt's last lease renewal.

    >>> record = await queue.get(run_id)                     # doctest: +SKIP
    >>> record.status, record.attempts
    (<RunStatus.SUCCESS: 'success'>, 1)
    """

    run_id: str
    graph: str
    thread_id: str
    status: RunStatus
    input: Any = None
    attempts: int = 0
    max_attempts: int = 1
    multitask: str = "enqueue"
    idempotency_key: str | None = None
    created_at: float | None = None
    due_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    error: str | None = None
    error_node: str | None = None
    result: Any = None
    reclaims: int = 0
    heartbeat_at: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, run_id: str, raw: Mapping[str, str]) -> RunRecord:
        """Read a record from the fields of its Redis HASH (decoded strings)."""
        known = {
            "graph",
            "thread",
            "status",
            "input",
            "attempts",
            "max_attempts",
            "multitask",
            "idem",
            "created",
            "due",
            "started",
            "finished",
            "worker",
            "error",
            "error_node",
            "result",
            "reclaims",
            "beat",
        }
        return cls(
            run_id=run_id,
            graph=raw.get("graph", ""),
            thread_id=raw.get("thread", ""),
            status=RunStatus(raw.get("status", "pending")),
            input=loads(raw.get("input")),
            attempts=_int(raw, "attempts", 0),
            max_attempts=_int(raw, "max_attempts", 1),
            multitask=raw.get("multitask", "enqueue"),
            idempotency_key=_s(raw, "idem"),
            created_at=_ms(raw, "created"),
            due_at=_ms(raw, "due"),
            started_at=_ms(raw, "started"),
            finished_at=_ms(raw, "finished"),
            worker=_s(raw, "worker"),
            error=_s(raw, "error"),
            error_node=_s(raw, "error_node"),
            result=loads(raw.get("result")),
            reclaims=_int(raw, "reclaims", 0),
            heartbeat_at=_ms(raw, "beat"),
            extra={k: v for k, v in raw.items() if k not in known},
        )


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry of a run's event stream.

    ``kind`` is ``status`` (``data`` = ``{"status": ..., ...}``), ``updates`` (a node's
    update, ``data`` = ``{node: update}``), or ``custom`` (what the graph wrote with
    ``get_stream_writer()``). ``id`` is the stream entry id: pass it as ``after`` to
    continue from there.
    """

    id: str
    kind: str
    data: Any

    @property
    def status(self) -> RunStatus | None:
        """The new status when this is a ``status`` event, else ``None``."""
        if self.kind != "status" or not isinstance(self.data, dict):
            return None
        return RunStatus(self.data["status"])


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry of the dead-letter stream: which run failed for good, and why."""

    id: str
    run_id: str
    graph: str
    thread_id: str
    reason: str
    attempts: int
    at: float


@dataclass(frozen=True, slots=True)
class Reclaim:
    """One run taken over from a worker that died or stalled.

    ``downtime_s`` is the time from the run's last sign of life (its last lease
    renewal, else its start) to the moment another worker took it: about the time
    from the old worker's death to the run resuming.
    """

    at: float
    downtime_s: float
    run_id: str


@dataclass(frozen=True, slots=True)
class Recovery:
    """How a queue recovered from dead workers: every reclaim ever counted, and the
    latest ones (up to 200, newest first) with their downtime."""

    reclaims: int
    recent: list[Reclaim]
