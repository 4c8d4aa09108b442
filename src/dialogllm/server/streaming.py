"""From a run's recorded events to the stream events a client asked for.

A run records LangGraph's stream modes as its events (``values``, ``updates``,
``custom``, ``messages``, ``debug``, ``tasks``, ``checkpoints``; ``mode|namespace``
for subgraphs; ``events``, LangChain's ``astream_events`` v2 events, when asked).
A client asks in LangGraph API's names; this module maps one to the other:

- ``messages-tuple`` is LangGraph's ``messages`` as it is: an event ``messages``
  with ``[message chunk, metadata]`` per token;
- ``messages`` is the API's message view of the same chunks:
  ``messages/metadata`` when a message starts, ``messages/partial`` with the message
  so far after each chunk, ``messages/complete`` when it ends;
- ``error`` carries a failed run's error, ``{"error": ..., "message": ...}``.

The rule a reader must not break: a translated event keeps the id of the recorded
event it came from, so a client that reconnects with ``Last-Event-ID`` continues
after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialogllm.queue.models import RunEvent, dumps
from dialogllm.server.errors import unprocessable

__all__ = ["RECORDED", "EventTranslator", "recorded_modes"]

#: The API's stream mode -> the LangGraph stream mode a run records for it.
RECORDED = {
    "values": "values",
    "updates": "updates",
    "custom": "custom",
    "messages": "messages",
    "messages-tuple": "messages",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
    "events": "events",
}


def recorded_modes(modes: Sequence[str]) -> tuple[str, ...]:
    """What a run must record for a client asking for ``modes``; 422 for a mode this
    server does not stream."""
    unsupported = [m for m in modes if m not in RECORDED]
    if unsupported:
        raise unprocessable(
            f"stream_mode {', '.join(unsupported)} is not supported by this server; "
            f"use {', '.join(RECORDED)}"
        )
    return tuple(dict.fromkeys(RECORDED[m] for m in modes))


def _is_final(message: dict[str, Any]) -> bool:
    """A whole message (a node's output), or a stream's last chunk; a model that
    never marks its last chunk has its messages completed when the run ends."""
    if not str(message.get("type", "")).endswith("Chunk"):
        return True
    return message.get("chunk_position") == "last"


class EventTranslator:
    """Turns one run's recorded events into the client's stream events.

    >>> translate = EventTranslator(["values", "messages"])
    >>> translate(event)                                         # doctest: +SKIP
    [{'event': 'values', 'data': '{...}', 'id': '1796-0'}]
    """

    def __init__(self, modes: Sequence[str]) -> None:
        self.modes = set(modes)
        # open messages by id: (event name suffix, the message so far)
        self._messages: dict[str, tuple[str, dict[str, Any]]] = {}

    def __call__(self, event: RunEvent) -> list[dict[str, Any]]:
        """The stream events ``event`` stands for (none, one or several)."""
        out: list[dict[str, Any]] = []
        if event.kind == "status":
            status = event.status
            if status is not None and status.is_terminal:
                out += self._complete_all(event.id)
            if status is not None and status.value in ("error", "dead"):
                detail = (event.data or {}).get("detail") or ""
                body = {"error": "RunError", "message": str(detail)}
                out.append(self._sse("error", body, event.id))
            return out
        mode, _, namespace = event.kind.partition("|")
        if mode == "messages":
            if "messages-tuple" in self.modes:
                out.append(self._sse(event.kind, event.data, event.id))
            if "messages" in self.modes:
                out += self._message_view(event, namespace)
        elif mode in self.modes:
            out.append(self._sse(event.kind, event.data, event.id))
        return out

    def _message_view(self, event: RunEvent, namespace: str) -> list[dict[str, Any]]:
        data = event.data
        if not (isinstance(data, list) and data and isinstance(data[0], dict)):
            return []
        chunk = data[0]
        metadata = data[1] if len(data) > 1 else {}
        message_id = str(chunk.get("id") or "")
        suffix = f"|{namespace}" if namespace else ""
        out: list[dict[str, Any]] = []
        opened = self._messages.get(message_id)
        current = opened[1] if opened is not None else None
        if current is None:
            out.append(
                self._sse(
                    f"messages/metadata{suffix}",
                    {message_id: {"metadata": metadata}},
                    event.id,
                )
            )
            current = {**chunk, "content": ""}
            self._messages[message_id] = (suffix, current)
        if isinstance(chunk.get("content"), str) and isinstance(
            current["content"], str
        ):
            current["content"] += chunk["content"]
        else:
            current["content"] = chunk.get("content")
        for key in ("response_metadata", "usage_metadata", "tool_calls"):
            if chunk.get(key):
                current[key] = chunk[key]
        kind = str(chunk.get("type", ""))
        current["type"] = "ai" if kind.startswith("AI") else kind
        if _is_final(chunk):
            self._messages.pop(message_id, None)
            out.append(self._sse(f"messages/complete{suffix}", [current], event.id))
        else:
            out.append(self._sse(f"messages/partial{suffix}", [current], event.id))
        return out

    def _complete_all(self, event_id: str) -> list[dict[str, Any]]:
        """``messages/complete`` for every message still open when the run ends."""
        done = [
            self._sse(f"messages/complete{suffix}", [message], event_id)
            for (suffix, message) in self._messages.values()
        ]
        self._messages.clear()
        return done

    @staticmethod
    def _sse(name: str, data: Any, event_id: str) -> dict[str, Any]:
        return {"event": name, "data": dumps(data), "id": event_id}
