"""The graph the cron tests schedule: one step that counts its runs on a thread."""

from __future__ import annotations

from typing import Any

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict  # pydantic builds schemas of it on 3.11


class Ticks(TypedDict, total=False):
    n: int
    note: str


def _tick(state: Ticks) -> dict[str, Any]:
    return {"n": state.get("n", 0) + 1}


_ticking = StateGraph(Ticks)
_ticking.add_node("tick", _tick)
_ticking.add_edge(START, "tick")
tick = _ticking.compile()
