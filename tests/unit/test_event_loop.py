"""The entry points' event loop: uvloop by default where installed, asyncio's when
``DIALOGLLM_EVENT_LOOP=asyncio`` or where uvloop cannot be imported."""

from __future__ import annotations

import asyncio
import builtins
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from dialogllm import event_loop
from dialogllm.config import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DIALOGLLM_EVENT_LOOP", raising=False)
    get_settings(reload=True)
    yield
    monkeypatch.delenv("DIALOGLLM_EVENT_LOOP", raising=False)
    get_settings(reload=True)


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop is not on Windows")
def test_the_default_loop_is_uvloop() -> None:
    assert event_loop.loop_name() == "uvloop"
    assert event_loop.run(_loop_module()) == "uvloop"


def test_the_setting_picks_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIALOGLLM_EVENT_LOOP", "asyncio")
    get_settings(reload=True)
    assert event_loop.loop_name() == "asyncio"
    assert event_loop.run(_loop_module()) == "asyncio"


def test_without_uvloop_asyncios_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_uvloop(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "uvloop":
            raise ImportError("no uvloop here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvloop)
    assert event_loop.loop_name() == "asyncio"
    assert event_loop.run(_loop_module()) == "asyncio"
