"""The key schema and the run data need nothing running."""

from __future__ import annotations

import pytest
from langgraph.types import Command

from dialogllm.errors import InputValidationError
from dialogllm.queue import (
    RunEvent,
    RunRecord,
    RunStatus,
    decode_input,
    encode_input,
    keys,
)
from dialogllm.queue.models import dumps, loads


def test_every_key_of_a_queue_carries_the_queue_hash_tag() -> None:
    built = [
        keys.queue_key("p", "q", keys.QueueKey.STREAM),
        keys.queue_key("p", "q", keys.QueueKey.DELAYED),
        keys.queue_key("p", "q", keys.QueueKey.RUNS),
        keys.queue_key("p", "q", keys.QueueKey.EXPIRY),
        keys.queue_key("p", "q", keys.QueueKey.DEAD_LETTERS),
        keys.queue_key("p", "q", keys.QueueKey.SIGNALS),
        keys.run_record("p", "q", "r"),
        keys.run_events("p", "q", "r"),
        keys.thread_active("p", "q", "t"),
        keys.thread_waiting("p", "q", "t"),
        keys.idempotency("p", "q", "k"),
        keys.queue_key("p", "q", keys.QueueKey.RECOVERY),
        keys.queue_key("p", "q", keys.QueueKey.RECLAIMS),
    ]
    assert all(k.startswith("p:q:{q}:") for k in built)
    assert len(set(built)) == len(built)


def test_braces_in_names_cannot_break_out_of_the_hash_tag() -> None:
    assert keys.queue_base("p", "a}b") == "p:q:{a%7Db}"
    assert keys.thread_active("p", "q", "{x}") == "p:q:{q}:th:%7Bx%7D:active"
    assert keys.idempotency("p", "q", "k}") == "p:q:{q}:idem:k%7D"


def test_terminal_statuses_are_the_finished_ones() -> None:
    assert {s for s in RunStatus if s.is_terminal} == {
        RunStatus.INTERRUPTED,
        RunStatus.SUCCESS,
        RunStatus.ERROR,
        RunStatus.CANCELLED,
        RunStatus.DEAD,
    }


def test_a_record_reads_back_from_its_hash_fields() -> None:
    record = RunRecord.from_hash(
        "r-1",
        {
            "graph": "g:x",
            "thread": "t",
            "status": "success",
            "input": '{"a":1}',
            "attempts": "2",
            "max_attempts": "3",
            "created": "1500",
            "started": "",
            "result": "[1,2]",
            "error": "RuntimeError: boom",
            "error_node": "judge",
            "reclaims": "1",
            "beat": "2500",
            "fp": "abc",
        },
    )
    assert record.status is RunStatus.SUCCESS
    assert (record.input, record.result, record.attempts) == ({"a": 1}, [1, 2], 2)
    assert (record.created_at, record.started_at) == (1.5, None)
    assert (record.error, record.error_node) == ("RuntimeError: boom", "judge")
    assert (record.reclaims, record.heartbeat_at) == (1, 2.5)
    assert record.extra == {"fp": "abc"}


def test_events_know_their_status() -> None:
    assert RunEvent("1-0", "status", {"status": "dead"}).status is RunStatus.DEAD
    assert RunEvent("1-0", "updates", {"node": {}}).status is None


def test_json_helpers_dump_models_sets_and_unknown_objects() -> None:
    class Model:
        def model_dump(self) -> dict[str, int]:
            return {"x": 1}

    assert loads(dumps({"m": Model(), "s": {1}, "t": (1, 2), "o": 1.5})) == {
        "m": {"x": 1},
        "s": [1],
        "t": [1, 2],
        "o": 1.5,
    }
    assert isinstance(loads(dumps(object())), str)
    assert loads(None) is None and loads("") is None


def test_a_command_input_survives_the_queue() -> None:
    text = encode_input(Command(resume="yes", update={"a": 1}, goto="node"))
    back = decode_input(text)
    assert isinstance(back, Command)
    assert (back.resume, back.update, back.goto) == ("yes", {"a": 1}, "node")
    assert decode_input(encode_input({"plain": True})) == {"plain": True}
    assert decode_input("") is None


@pytest.mark.parametrize("bad", [{"x": object()}, float("nan"), {1, 2}])
def test_inputs_that_are_not_json_are_refused(bad: object) -> None:
    with pytest.raises(InputValidationError):
        encode_input(bad)


@pytest.mark.parametrize(
    ("field", "value", "reads_as"),
    [
        ("status", "garbage", ("status", RunStatus.PENDING)),
        ("input", "{not json", ("input", None)),
        ("input", b"\xff\xfe", ("input", None)),
        ("result", "[1,", ("result", None)),
        ("created", "yesterday", ("created_at", None)),
        ("finished", "1e3", ("finished_at", None)),
        ("attempts", "two", ("attempts", 0)),
        ("graph", b"g\xff", ("graph", "g\ufffd")),
    ],
)
def test_a_field_that_cannot_be_decoded_is_named_not_raised(
    field: str, value: str | bytes, reads_as: tuple[str, object]
) -> None:
    """Garbage written by another client is a marked value: the record reads, the
    field holds its default and ``problems`` names the field with an excerpt."""
    raw: dict[str | bytes, str | bytes] = {
        b"graph": b"g:x",
        b"thread": b"t",
        b"status": b"success",
        b"input": b'{"a":1}',
        b"created": b"1500",
    }
    raw[field.encode()] = value
    record = RunRecord.from_hash("r-1", raw)
    attribute, expected = reads_as
    assert getattr(record, attribute) == expected
    assert list(record.problems) == [field]
    assert repr(value) in record.problems[field]  # what was stored, escaped
    assert record.thread_id == "t"  # the rest of the record is read as usual


def test_a_sound_record_has_no_problems() -> None:
    record = RunRecord.from_hash("r-1", {"graph": "g", "status": "dead"})
    assert record.problems == {}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({b"kind": b"status", b"data": b"{oops"}, "data: not JSON"),
        ({b"kind": b"status", b"data": b'{"status":"garbage"}'}, "no run status"),
        ({b"kind": b"status", b"data": b"[1]"}, "no run status"),
        ({b"kind": b"updates", b"data": b"\xff"}, "data: not UTF-8"),
    ],
)
def test_an_event_that_cannot_be_decoded_carries_its_problem(
    fields: dict[bytes, bytes], problem: str
) -> None:
    event = RunEvent.from_entry(b"1-0", fields)
    assert event.id == "1-0"
    assert event.problem is not None and problem in event.problem
    assert event.data is None and event.status is None


def test_a_sound_event_reads_back() -> None:
    event = RunEvent.from_entry(
        b"1-0", {b"kind": b"status", b"data": b'{"status":"success"}'}
    )
    assert (event.problem, event.status) == (None, RunStatus.SUCCESS)
