"""How the server's objects look on the wire: LangGraph's API shapes, as JSON.

Threads, thread states, runs and assistants are written as LangGraph's own server
writes them (``langgraph-sdk``'s ``Thread``, ``ThreadState``, ``Run``,
``Assistant``); times are ISO 8601 in UTC. JSON is written with the queue's encoder
(pydantic models and LangChain messages as dicts, LangGraph's dataclasses as their
fields), so a value reads the same from the API as from a run's events.

The rule a reader must not break: a run's status on the wire is LangGraph's
(``pending``, ``running``, ``success``, ``error``, ``interrupted``), not the
queue's: a run that stopped at ``interrupt()`` finished its work and is
``success``; its thread is the one that is ``interrupted``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Response
from langgraph.types import StateSnapshot

from dialogllm.queue.models import RunRecord, RunStatus, dumps
from dialogllm.server.storage import AssistantRecord, ThreadRecord

__all__ = [
    "JSONResponse",
    "assistant_json",
    "checkpoint_json",
    "interrupts_json",
    "iso",
    "run_json",
    "run_status",
    "state_json",
    "thread_json",
]


class JSONResponse(Response):
    """A JSON response written with the queue's encoder (what run events use)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """``content`` as compact JSON."""
        return dumps(content).encode()


def iso(ms: float | None) -> str | None:
    """Milliseconds (or seconds, for values below 1e11) since the epoch as ISO 8601."""
    if ms is None:
        return None
    seconds = ms / 1000 if ms > 1e11 else ms
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def checkpoint_json(config: Any) -> dict[str, Any] | None:
    """The checkpoint a config names, as ``{thread_id, checkpoint_ns,
    checkpoint_id}``; ``None`` for no config."""
    if not config:
        return None
    configurable = config.get("configurable") or {}
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }


def interrupts_json(interrupts: Any) -> list[dict[str, Any]]:
    """Interrupts as the API shows them: ``[{"id": ..., "value": ...}]``."""
    return [{"id": i.id, "value": i.value} for i in interrupts or ()]


def state_json(snapshot: StateSnapshot) -> dict[str, Any]:
    """A ``StateSnapshot`` as LangGraph's API's ``ThreadState``."""
    tasks = [
        {
            "id": task.id,
            "name": task.name,
            "path": list(task.path),
            "error": None if task.error is None else repr(task.error),
            "interrupts": interrupts_json(task.interrupts),
            "checkpoint": checkpoint_json(task.state)
            if isinstance(task.state, dict)
            else None,
            "state": state_json(task.state)
            if isinstance(task.state, StateSnapshot)
            else None,
            "result": task.result,
        }
        for task in snapshot.tasks
    ]
    checkpoint = checkpoint_json(snapshot.config)
    parent = checkpoint_json(snapshot.parent_config)
    return {
        "values": snapshot.values,
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": snapshot.metadata or {},
        "created_at": snapshot.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": interrupts_json(snapshot.interrupts),
        # LangGraph's server still sends the flat ids older clients read
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def thread_interrupts(snapshot: StateSnapshot | None) -> dict[str, list[Any]]:
    """A thread's pending interrupts by task id (``Thread.interrupts``)."""
    if snapshot is None:
        return {}
    return {
        task.id: interrupts_json(task.interrupts)
        for task in snapshot.tasks
        if task.interrupts
    }


def thread_json(
    record: ThreadRecord,
    status: str,
    snapshot: StateSnapshot | None,
    error: str | None = None,
) -> dict[str, Any]:
    """A thread as LangGraph's API's ``Thread``."""
    values = snapshot.values if snapshot is not None and snapshot.config else None
    return {
        "thread_id": record.thread_id,
        "created_at": iso(record.created_ms),
        "updated_at": iso(record.updated_ms),
        "state_updated_at": iso(record.updated_ms),
        "metadata": record.metadata,
        "status": status,
        "config": {"configurable": {}},
        "values": values,
        "error": error,
        "interrupts": thread_interrupts(snapshot),
    }


def run_status(record: RunRecord) -> str:
    """The run's status as LangGraph's API names it (see the module docstring)."""
    status = record.status
    if status is RunStatus.INTERRUPTED:
        # stopped at interrupt(): the run did its work; a newer run taking the
        # thread over (multitask "interrupt") leaves an error text naming it
        return "interrupted" if record.error else "success"
    if status in (RunStatus.ERROR, RunStatus.DEAD):
        return "error"
    if status is RunStatus.CANCELLED:
        return "interrupted"
    return status.value


def run_json(record: RunRecord) -> dict[str, Any]:
    """A queue run as LangGraph's API's ``Run``; ``kwargs`` is what it was created
    with."""
    options = record.options
    metadata = dict(options.metadata or {})
    kwargs = {
        "input": None if options.command is not None else record.input,
        "command": options.command,
        "config": options.config or {},
        "context": options.context or {},
        "stream_mode": list(options.stream_modes),
        "interrupt_before": options.interrupt_before,
        "interrupt_after": options.interrupt_after,
        "checkpoint_id": options.checkpoint_id,
        "subgraphs": options.subgraphs,
        "durability": options.durability or "sync",
    }
    updated = record.finished_at or record.started_at or record.created_at
    return {
        "run_id": record.run_id,
        "thread_id": record.thread_id,
        "assistant_id": metadata.get("assistant_id"),
        "created_at": iso(record.created_at),
        "updated_at": iso(updated),
        "status": run_status(record),
        "metadata": metadata,
        "kwargs": kwargs,
        "multitask_strategy": record.multitask,
        "attempts": record.attempts,
        "error": record.error,
        # ours: the graph node the error came from (LangGraph's server has none)
        "error_node": record.error_node,
    }


def assistant_json(record: AssistantRecord) -> dict[str, Any]:
    """An assistant as LangGraph's API's ``Assistant``."""
    return {
        "assistant_id": record.assistant_id,
        "graph_id": record.graph_id,
        "config": record.config,
        "context": record.context,
        "metadata": record.metadata,
        "name": record.name,
        "created_at": iso(record.created_ms),
        "updated_at": iso(record.updated_ms),
        "version": record.version,
        "description": record.description,
    }
