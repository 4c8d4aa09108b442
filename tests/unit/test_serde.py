"""The strict serializer: only allowed types are revived from stored data; anything
else is a typed error and nothing is imported or called (modelled on LangGraph's own
allow-list tests, plus the payload that ran code through the permissive default)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.types import Command, Interrupt, Send
from pydantic import BaseModel

from dialogllm.config import get_settings
from dialogllm.errors import BlockedTypeError, ConfigError
from dialogllm.models import HumanRequest, Persona, Transcript, TranscriptEntry, Turn
from dialogllm.serde import PROJECT_TYPES, StrictSerializer, parse_allowed_types


@dataclass
class Fact:
    """A user type, not allowed unless the user says so."""

    text: str


class Note(BaseModel):
    body: str


def _ext(code: int, payload: Any) -> tuple[str, bytes]:
    return "msgpack", ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(payload)))


@pytest.fixture
def no_user_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALOGLLM_ALLOWED_MSGPACK_MODULES", raising=False)
    get_settings(reload=True)


@pytest.mark.parametrize(
    ("code", "payload"),
    [
        (0, ["os", "system", "touch {marker}"]),
        (1, ["os", "system", ["touch {marker}"]]),
        (2, ["subprocess", "run", {"args": ["touch", "{marker}"]}]),
        (5, ["os", "system", {"command": "touch {marker}"}, "model_validate"]),
    ],
)
def test_a_payload_naming_a_function_is_refused_and_never_runs(
    tmp_path: Path, code: int, payload: list[Any], no_user_types: None
) -> None:
    marker = tmp_path / "PWNED"
    filled = [
        p.replace("{marker}", str(marker))
        if isinstance(p, str)
        else [x.replace("{marker}", str(marker)) for x in p]
        if isinstance(p, list)
        else {k: str(v).replace("{marker}", str(marker)) for k, v in p.items()}
        for p in payload
    ]
    with pytest.raises(BlockedTypeError) as info:
        StrictSerializer().loads_typed(_ext(code, filled))
    assert not marker.exists()
    assert (info.value.module, info.value.name) == (filled[0], filled[1])
    message = str(info.value)
    assert f"{filled[0]}.{filled[1]}" in message
    assert f"DIALOGLLM_ALLOWED_MSGPACK_MODULES={filled[0]}:{filled[1]}" in message


def test_a_method_call_is_refused(no_user_types: None) -> None:
    with pytest.raises(BlockedTypeError, match=r"os\.path\.join") as info:
        StrictSerializer().loads_typed(_ext(3, ["os", "path", "a", "join"]))
    assert info.value.method == "join"


def test_a_blocked_type_nested_inside_allowed_data_is_refused(
    no_user_types: None,
) -> None:
    inner = ormsgpack.Ext(0, ormsgpack.packb(["os", "getcwd", None]))
    data = ormsgpack.packb({"ok": [1, 2], "bad": inner})
    with pytest.raises(BlockedTypeError, match=r"os\.getcwd"):
        StrictSerializer().loads_typed(("msgpack", data))


def test_the_project_and_langgraph_types_round_trip(no_user_types: None) -> None:
    serde = StrictSerializer()
    values: list[Any] = [
        Persona(name="Ada", role="a guide", goals=("teach",)),
        Turn(message="hello", end=False),
        HumanRequest(prompt="Your answer?", speaker="Candidate"),
        TranscriptEntry(speaker="Ada", text="hi"),
        Transcript(title="tea", entries=(TranscriptEntry(speaker="Ada", text="hi"),)),
        Send("node", {"x": 1}),
        Interrupt(value={"q": 1}, id="i1"),
        [HumanMessage("hi"), AIMessage("hello")],
        dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        uuid.UUID(int=7),
        {1, 2},
    ]
    for value in values:
        assert serde.loads_typed(serde.dumps_typed(value)) == value
    command = serde.loads_typed(serde.dumps_typed(Command(resume="yes", goto="a")))
    assert isinstance(command, Command) and (command.resume, command.goto) == (
        "yes",
        "a",
    )


def test_every_project_type_is_importable() -> None:
    import importlib

    for module, name in PROJECT_TYPES:
        assert isinstance(getattr(importlib.import_module(module), name), type)


def test_a_user_type_is_refused_until_allowed(
    monkeypatch: pytest.MonkeyPatch, no_user_types: None
) -> None:
    fact, note = Fact("tea is hot"), Note(body="remember")
    serde = StrictSerializer()
    for value in (fact, note):
        with pytest.raises(BlockedTypeError, match=type(value).__name__):
            serde.loads_typed(serde.dumps_typed(value))

    by_argument = StrictSerializer(allowed=[Fact, (Note.__module__, "Note")])
    assert by_argument.loads_typed(by_argument.dumps_typed(fact)) == fact
    assert by_argument.loads_typed(by_argument.dumps_typed(note)) == note

    by_langgraph_api = serde.with_msgpack_allowlist([Fact])
    assert isinstance(by_langgraph_api, StrictSerializer)
    assert by_langgraph_api.loads_typed(by_langgraph_api.dumps_typed(fact)) == fact
    with pytest.raises(BlockedTypeError):  # the original stays strict
        serde.loads_typed(serde.dumps_typed(fact))

    monkeypatch.setenv(
        "DIALOGLLM_ALLOWED_MSGPACK_MODULES", f"{__name__}:Fact, {__name__}.Note"
    )
    get_settings(reload=True)
    try:
        by_setting = StrictSerializer()
        assert by_setting.loads_typed(by_setting.dumps_typed(fact)) == fact
        assert by_setting.loads_typed(by_setting.dumps_typed(note)) == note
        assert (__name__, "Fact") in by_setting.allowed_types
        ignoring = StrictSerializer(from_settings=False)
        with pytest.raises(BlockedTypeError):
            ignoring.loads_typed(ignoring.dumps_typed(fact))
    finally:
        monkeypatch.delenv("DIALOGLLM_ALLOWED_MSGPACK_MODULES")
        get_settings(reload=True)


@pytest.mark.parametrize("bad", ["justaname", "mod:", ":Name", "mod:not an id"])
def test_a_malformed_setting_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="DIALOGLLM_ALLOWED_MSGPACK_MODULES"):
        parse_allowed_types(bad)


def test_pickle_is_never_used() -> None:
    with pytest.raises(NotImplementedError):
        StrictSerializer().loads_typed(("pickle", b"cos\nsystem\n(S'true'\ntR."))
    assert os.environ.get("LANGGRAPH_STRICT_MSGPACK") in (None, "", "false")
