"""Helpers of the core unit tests: scripted replies and an in-memory checkpointer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from dialogllm.llm.testing import ScriptedChatModel


def said(message: str, **extra: Any) -> str:
    """A scripted persona reply (a ``Turn`` as JSON)."""
    return json.dumps({"message": message, **extra})


def scripted(*replies: Any, **kw: Any) -> ScriptedChatModel:
    """A scripted chat model answering ``replies`` in order (dicts become JSON)."""
    return ScriptedChatModel(
        replies=[r if isinstance(r, str) else json.dumps(r) for r in replies], **kw
    )


@pytest.fixture
def saver() -> Iterator[InMemorySaver]:
    """A fresh in-memory checkpointer."""
    yield InMemorySaver()
