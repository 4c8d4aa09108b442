"""What may be revived from Redis data: the strict serializer and its allow-list.

Anyone who can write to the Redis can write a checkpoint blob. LangGraph's default
msgpack revival imports and calls whatever ``(module, name)`` a blob names, so a
crafted blob would run code in every worker and CLI that reads it. DialogueLLM never
decodes Redis data that way: :class:`StrictSerializer` revives only

* LangGraph's own safe types (``SAFE_MSGPACK_TYPES``: messages, ``Send``,
  ``Interrupt``, ``Command``, datetimes, UUIDs, ...),
* this project's models (:data:`PROJECT_TYPES`: ``Persona``, ``Turn``,
  ``TranscriptEntry``, ...),
* the types the user allows: the ``DIALOGLLM_ALLOWED_MSGPACK_MODULES`` setting
  (comma-separated ``module:Name``), the ``allowed`` argument, or LangGraph's own
  ``saver.with_allowlist([...])``.

Anything else raises :class:`~dialogllm.errors.BlockedTypeError` naming the type and
how to allow it: nothing is imported, nothing is called, and the value is never
silently replaced by ``None`` or by its raw payload.

>>> from dialogllm.models import Persona
>>> serde = StrictSerializer()
>>> serde.loads_typed(serde.dumps_typed(Persona(name="Ada", role="a guide"))).name
'Ada'
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from langgraph.checkpoint.serde._msgpack import SAFE_MSGPACK_TYPES
from langgraph.checkpoint.serde.event_hooks import (
    SerdeEvent,
    register_serde_event_listener,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from dialogllm.config import get_settings
from dialogllm.errors import BlockedTypeError, ConfigError

__all__ = [
    "ALLOWED_TYPES_SETTING",
    "PROJECT_TYPES",
    "StrictSerializer",
    "parse_allowed_types",
]

ALLOWED_TYPES_SETTING = "DIALOGLLM_ALLOWED_MSGPACK_MODULES"
"""The environment variable that adds the user's types to the allow-list."""

PROJECT_TYPES: frozenset[tuple[str, str]] = frozenset(
    {
        ("dialogllm.models.persona", "Persona"),
        ("dialogllm.models.turn", "Turn"),
        ("dialogllm.models.turn", "SpeakerChoice"),
        ("dialogllm.models.turn", "HumanRequest"),
        ("dialogllm.models.transcript", "TranscriptEntry"),
        ("dialogllm.models.transcript", "Transcript"),
    }
)
"""The project's own models that dialogue state holds (plain pydantic data)."""

_BLOCKED_KINDS = frozenset({"msgpack_blocked", "msgpack_method_blocked"})
_blocked_in_call: ContextVar[list[SerdeEvent] | None] = ContextVar(
    "dialogllm_blocked_in_call", default=None
)
_listener_lock = threading.Lock()
_listener_installed = False


def _record_blocked(event: SerdeEvent) -> None:
    sink = _blocked_in_call.get()
    if sink is not None and event["kind"] in _BLOCKED_KINDS:
        sink.append(event)


def _install_listener() -> None:
    """Hear LangGraph's "blocked" events (once per process, on first use)."""
    global _listener_installed
    with _listener_lock:
        if not _listener_installed:
            register_serde_event_listener(_record_blocked)
            _listener_installed = True


def parse_allowed_types(text: str) -> frozenset[tuple[str, str]]:
    """Parse the setting's value: comma-separated ``module:Name`` (or
    ``module.Name``) entries.

    >>> sorted(parse_allowed_types("myapp.state:Fact, myapp.models.Note"))
    [('myapp.models', 'Note'), ('myapp.state', 'Fact')]
    """
    allowed: set[tuple[str, str]] = set()
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        module, sep, name = (
            entry.partition(":") if ":" in entry else entry.rpartition(".")
        )
        if not sep or not module or not name or not name.isidentifier():
            raise ConfigError(
                f"{ALLOWED_TYPES_SETTING}: {entry!r} is not 'module:Name' "
                "(example: myapp.state:Fact)"
            )
        allowed.add((module, name))
    return frozenset(allowed)


def _as_key(item: tuple[str, ...] | type) -> tuple[str, ...]:
    if isinstance(item, type):
        return (item.__module__, item.__name__)
    return tuple(item)


class StrictSerializer(JsonPlusSerializer):
    """LangGraph's JSON+msgpack serializer that revives only allowed types.

    ``allowed`` adds types (classes or ``(module, name)`` tuples) to
    :data:`PROJECT_TYPES`, LangGraph's safe types and the
    ``DIALOGLLM_ALLOWED_MSGPACK_MODULES`` setting (read when the serializer is made;
    ``from_settings=False`` ignores it). Encoding is LangGraph's, unchanged; pickle
    is never used.

    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Fact:
    ...     text: str
    >>> serde = StrictSerializer(allowed=[Fact], from_settings=False)
    >>> serde.loads_typed(serde.dumps_typed(Fact("tea is hot"))).text
    'tea is hot'
    """

    def __init__(
        self,
        *,
        allowed: Iterable[tuple[str, ...] | type] = (),
        from_settings: bool = True,
    ) -> None:
        keys: set[tuple[str, ...]] = set(PROJECT_TYPES)
        keys.update(_as_key(item) for item in allowed)
        if from_settings:
            keys.update(parse_allowed_types(get_settings().allowed_msgpack_modules))
        # SAFE_MSGPACK_TYPES are always allowed by LangGraph's hook; listing the
        # project's and the user's types makes every other type a blocked one.
        super().__init__(pickle_fallback=False, allowed_msgpack_modules=tuple(keys))
        _install_listener()

    @property
    def allowed_types(self) -> frozenset[tuple[str, ...]]:
        """Every ``(module, name)`` this serializer revives."""
        own = self._allowed_msgpack_modules
        extra = own if isinstance(own, set) else set()
        return frozenset(extra | SAFE_MSGPACK_TYPES)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Decode ``(type, bytes)``; raise :class:`~dialogllm.errors.BlockedTypeError`
        when the data names a type that is not allowed."""
        sink: list[SerdeEvent] = []
        token = _blocked_in_call.set(sink)
        try:
            value = super().loads_typed(data)
        finally:
            _blocked_in_call.reset(token)
        if sink:
            first = sink[0]
            raise BlockedTypeError(
                first["module"], first["name"], method=first.get("method")
            )
        return value
