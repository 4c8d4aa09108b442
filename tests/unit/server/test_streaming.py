"""From recorded run events to the stream events a client asked for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dialogllm.queue.models import RunEvent, RunRecord, RunStatus
from dialogllm.server.errors import ApiError
from dialogllm.server.streaming import EventTranslator, recorded_modes
from dialogllm.server.wire import run_status


def _chunk(text: str, **extra: Any) -> dict[str, Any]:
    return {"content": text, "type": "AIMessageChunk", "id": "m1", **extra}


def _names(events: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in events]


def test_modes_map_to_what_a_run_records_and_unknown_ones_are_refused() -> None:
    assert recorded_modes(["values", "messages-tuple", "messages"]) == (
        "values",
        "messages",
    )
    with pytest.raises(ApiError) as refused:
        recorded_modes(["values", "bogus"])
    assert refused.value.status_code == 422
    assert "bogus" in str(refused.value.detail)
    assert recorded_modes(["events", "updates"]) == ("events", "updates")


def test_only_the_asked_modes_pass_and_keep_their_event_ids() -> None:
    translate = EventTranslator(["updates"])
    assert translate(RunEvent("1-0", "values", {"n": 1})) == []
    [update] = translate(RunEvent("2-0", "updates|sub:1", {"a": {"n": 1}}))
    assert update == {"event": "updates|sub:1", "data": '{"a":{"n":1}}', "id": "2-0"}


def test_message_chunks_become_metadata_partial_and_complete_messages() -> None:
    translate = EventTranslator(["messages"])
    meta = {"langgraph_node": "reply"}
    first = translate(RunEvent("1-0", "messages", [_chunk("Hel"), meta]))
    second = translate(RunEvent("2-0", "messages", [_chunk("lo"), meta]))
    last = translate(
        RunEvent("3-0", "messages", [_chunk("!", chunk_position="last"), meta])
    )

    assert _names(first) == ["messages/metadata", "messages/partial"]
    assert json.loads(first[0]["data"]) == {"m1": {"metadata": meta}}
    assert json.loads(second[0]["data"])[0]["content"] == "Hello"
    assert _names(last) == ["messages/complete"]
    assert (
        json.loads(last[0]["data"])[0] | {"content": "Hello!", "type": "ai"}
        == (json.loads(last[0]["data"])[0])
    )


def test_messages_still_open_complete_when_the_run_ends_and_errors_are_told() -> None:
    translate = EventTranslator(["messages", "messages-tuple"])
    opened = translate(RunEvent("1-0", "messages", [_chunk("Hi"), {}]))
    ended = translate(RunEvent("2-0", "status", {"status": "dead", "detail": "boom"}))

    assert _names(opened) == ["messages", "messages/metadata", "messages/partial"]
    assert _names(ended) == ["messages/complete", "error"]
    assert json.loads(ended[1]["data"]) == {"error": "RunError", "message": "boom"}
    assert translate(RunEvent("3-0", "status", {"status": "running"})) == []


def test_a_run_that_stopped_at_an_interrupt_succeeded_on_the_wire() -> None:
    def record(status: RunStatus, error: str | None = None) -> RunRecord:
        return RunRecord("r", "g", "t", status, error=error)

    assert run_status(record(RunStatus.INTERRUPTED)) == "success"
    assert run_status(record(RunStatus.INTERRUPTED, "interrupted by run x")) == (
        "interrupted"
    )
    assert run_status(record(RunStatus.DEAD)) == "error"
    assert run_status(record(RunStatus.CANCELLED)) == "interrupted"
    assert run_status(record(RunStatus.PENDING)) == "pending"
