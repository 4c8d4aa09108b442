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

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeVar

__all__ = [
    "TERMINAL_STATUSES",
    "DeadLetter",
    "Multitask",
    "RunEvent",
    "RunOptions",
    "RunRecord",
    "RunStatus",
    "decode_text",
    "dumps",
    "excerpt",
    "loads",
]

T = TypeVar("T")


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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # LangGraph's Interrupt, Send, Command: their fields, as LangGraph's API
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def loads(text: str | bytes | None) -> Any:
    """Decode JSON written by :func:`dumps` (``None`` and ``""`` read as ``None``)."""
    if text is None or text in ("", b""):
        return None
    return json.loads(text)


def excerpt(value: str | bytes, limit: int = 60) -> str:
    """A short, printable ``repr`` of a stored value for a problem report (control
    characters escaped, long values cut)."""
    text = repr(value if len(value) <= limit else value[:limit])
    return text if len(value) <= limit else text + "..."


def decode_text(value: str | bytes, name: str, problems: dict[str, str]) -> str:
    """``value`` as text; bytes that are not UTF-8 are decoded with replacement
    characters and noted in ``problems`` under ``name``."""
    if isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        problems[name] = f"not UTF-8: {excerpt(value)}"
        return value.decode(errors="replace")


class _Fields:
    """The fields of one record being read, and the problems found reading them."""

    def __init__(self, raw: Mapping[Any, Any]) -> None:
        self.problems: dict[str, str] = {}
        self.raw: dict[str, str] = {}
        for key, value in raw.items():
            name = decode_text(key, "field name", self.problems)
            self.raw[name] = decode_text(value, name, self.problems)

    def text(self, name: str, default: str = "") -> str:
        return self.raw.get(name, default)

    def optional(self, name: str) -> str | None:
        value = self.raw.get(name)
        return value if value not in (None, "") else None

    def _parsed(self, name: str, parse: Callable[[str], T], what: str) -> T | None:
        """``parse`` of a present field; ``None`` when absent or when ``parse``
        raises ``ValueError`` (then noted: "not ``what``")."""
        value = self.optional(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError:
            self.problems.setdefault(name, f"not {what}: {excerpt(value)}")
            return None

    def count(self, name: str, default: int) -> int:
        """A counter; ``default`` when absent or not a whole number (a corrupt field:
        the worker dead-letters such a run, and it stays readable)."""
        value = self._parsed(name, int, "a whole number")
        return default if value is None else value

    def ms(self, name: str) -> float | None:
        """A time stored as ms since the epoch, in seconds; ``None`` when absent or
        corrupt."""
        value = self._parsed(name, int, "a time in ms")
        return None if value is None else value / 1000.0

    def json_value(self, name: str) -> Any:
        """A JSON field; ``None`` when absent, not UTF-8 or not JSON."""
        if name in self.problems:
            return None
        return self._parsed(name, loads, "JSON")

    def options(self) -> RunOptions:
        """The run's options; the defaults when absent or corrupt (noted)."""
        try:
            return RunOptions.from_json(self.optional("options"))
        except (ValueError, TypeError) as exc:
            self.problems.setdefault("options", f"not run options: {exc}")
            return RunOptions()

    def status(self) -> RunStatus:
        """The run's status; ``pending`` when it is not a run status (noted)."""
        value = self.raw.get("status", "pending")
        try:
            return RunStatus(value)
        except ValueError:
            self.problems.setdefault("status", f"not a run status: {excerpt(value)}")
            return RunStatus.PENDING


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What the queue knows about one run.

    Times are seconds since the epoch (``None`` until they happen). ``error`` is the
    last error's text and ``error_node`` the graph node it came from (when LangGraph
    named one); ``result`` the final graph values (JSON) of a successful run.
    ``reclaims`` counts the times another worker took the run over from a worker that
    died or stalled; ``heartbeat_at`` is the running attempt's last lease renewal.

    ``problems`` names each field that could not be decoded (field -> reason; empty
    for a sound record): such a field reads as its default (``None``, ``0``; a
    status that is not a run status reads as ``pending``), so one bad record never
    stops a reader. Only a client with write access to Redis can write one.

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
    options: RunOptions = field(default_factory=lambda: RunOptions())
    extra: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, run_id: str, raw: Mapping[Any, Any]) -> RunRecord:
        """Read a record from the fields of its Redis HASH (strings, or bytes that
        are decoded here); never raises for what the fields hold."""
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
            "options",
        }
        f = _Fields(raw)
        record = cls(
            run_id=run_id,
            graph=f.text("graph"),
            thread_id=f.text("thread"),
            status=f.status(),
            input=f.json_value("input"),
            attempts=f.count("attempts", 0),
            max_attempts=f.count("max_attempts", 1),
            multitask=f.text("multitask", "enqueue"),
            idempotency_key=f.optional("idem"),
            created_at=f.ms("created"),
            due_at=f.ms("due"),
            started_at=f.ms("started"),
            finished_at=f.ms("finished"),
            worker=f.optional("worker"),
            error=f.optional("error"),
            error_node=f.optional("error_node"),
            result=f.json_value("result"),
            reclaims=f.count("reclaims", 0),
            heartbeat_at=f.ms("beat"),
            options=f.options(),
            extra={k: v for k, v in f.raw.items() if k not in known},
            problems=f.problems,
        )
        return record


#: The LangGraph stream modes a run can record (every run records ``updates`` and
#: ``custom``); ``events`` streams the run with LangChain's ``astream_events`` (v2)
#: and records every event, as LangGraph API's ``events`` mode does.
STREAM_MODES: Final = (
    "values",
    "updates",
    "custom",
    "messages",
    "debug",
    "tasks",
    "checkpoints",
    "events",
)


Durability = Literal["sync", "async", "exit"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How a run runs, beyond its graph, thread and input: what LangGraph's run API
    (``langgraph-sdk``'s ``runs.create``) lets a client say.

    ``command`` is a LangGraph ``Command`` as JSON (``resume``, ``update``,
    ``goto``) and replaces the input; ``config`` and ``context`` go to the graph;
    ``metadata`` is added to every checkpoint's metadata; ``checkpoint_id`` starts
    the run from that checkpoint of the thread (a fork); ``stream_modes`` are the
    LangGraph stream modes recorded as the run's events, ``subgraphs`` records
    subgraphs' events too; ``interrupt_before``/``interrupt_after`` name nodes
    (or ``"*"``) to stop at; ``durability`` is LangGraph's (default ``"sync"``).
    Stored with the run as JSON.

    >>> RunOptions(command={"resume": "yes"}, stream_modes=("values",)).to_json()
    '{"command":{"resume":"yes"},"stream_modes":["values"]}'
    """

    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    stream_modes: tuple[str, ...] = ()
    subgraphs: bool = False
    interrupt_before: str | tuple[str, ...] | None = None
    interrupt_after: str | tuple[str, ...] | None = None
    durability: Durability | None = None

    def __post_init__(self) -> None:
        unknown = [m for m in self.stream_modes if m not in STREAM_MODES]
        if unknown:
            raise ValueError(
                f"unknown stream mode(s) {unknown}; known: {', '.join(STREAM_MODES)}"
            )
        if self.durability not in (None, "sync", "async", "exit"):
            raise ValueError("durability must be 'sync', 'async' or 'exit'")
        for name in ("interrupt_before", "interrupt_after"):
            value = getattr(self, name)
            if isinstance(value, str) and value != "*":
                raise ValueError(f"{name} must be '*' or a list of node names")

    def to_json(self) -> str:
        """The options that differ from the defaults, as compact JSON (``""`` when
        none do)."""
        changed = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }
        return dumps(changed) if changed else ""

    @classmethod
    def from_json(cls, text: str | None) -> RunOptions:
        """Read options written by :meth:`to_json` (``""``: the defaults); a field
        this version does not know is ignored."""
        data = loads(text) if text else None
        if not isinstance(data, dict):
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("stream_modes", "interrupt_before", "interrupt_after"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)


def node_names(value: str | Sequence[str] | None) -> str | tuple[str, ...] | None:
    """``interrupt_before``/``interrupt_after`` as :class:`RunOptions` keeps them."""
    if value is None or isinstance(value, str):
        return value
    return tuple(value)


@dataclass(frozen=True, slots=True)
class RunEvent:
    """One entry of a run's event stream.

    ``kind`` is ``status`` (``data`` = ``{"status": ..., ...}``), ``updates`` (a node's
    update, ``data`` = ``{node: update}``), or ``custom`` (what the graph wrote with
    ``get_stream_writer()``). ``id`` is the stream entry id: pass it as ``after`` to
    continue from there. ``problem`` says why an entry could not be decoded (its
    ``data`` is then ``None``); ``None`` for a sound one.
    """

    id: str
    kind: str
    data: Any
    problem: str | None = None

    @classmethod
    def from_entry(cls, entry_id: Any, fields: Mapping[Any, Any]) -> RunEvent:
        """Read an event from its stream entry (strings, or bytes decoded here);
        never raises for what the entry holds."""
        f = _Fields(fields)
        data = f.json_value("data")
        problems = [f"{name}: {why}" for name, why in f.problems.items()]
        if f.text("kind") == "status" and not problems and _status_of(data) is None:
            problems.append(f"data: no run status in {excerpt(f.text('data'))}")
        return cls(
            id=decode_text(entry_id, "id", {}),
            kind=f.text("kind"),
            data=None if problems else data,
            problem="; ".join(problems) or None,
        )

    @property
    def status(self) -> RunStatus | None:
        """The new status when this is a ``status`` event, else ``None``."""
        if self.kind != "status":
            return None
        return _status_of(self.data)


def _status_of(data: Any) -> RunStatus | None:
    value = data.get("status") if isinstance(data, dict) else None
    if not isinstance(value, str):
        return None
    try:
        return RunStatus(value)
    except ValueError:
        return None


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
    latest ones (up to 200, newest first) with their downtime. ``problems`` names
    each stored figure or entry that could not be decoded (it is left out): its key
    and why."""

    reclaims: int
    recent: list[Reclaim]
    problems: list[tuple[str, str]] = field(default_factory=list)
