"""Graphs the fleet tests run through real workers (no LLM: each step is instant).

``counting`` takes ``{"turns": N}`` and appends N turns; ``sleepy`` sleeps between
turns so a run stays ``running`` long enough to be seen; ``broken`` always raises.
"""

from __future__ import annotations

import operator
import time
from typing import Annotated, Literal, TypedDict

from langgraph.graph import START, StateGraph


class State(TypedDict, total=False):
    turns: int
    pause: float
    log: Annotated[list[str], operator.add]


def _build(fail: bool = False) -> StateGraph[State]:
    def speak(state: State) -> State:
        if fail:
            raise RuntimeError("BrokenNode: this graph always fails")
        time.sleep(state.get("pause", 0.0))
        return {"log": [f"turn {len(state.get('log', [])) + 1}"]}

    def route(state: State) -> Literal["speak", "__end__"]:
        return (
            "speak" if len(state.get("log", [])) < state.get("turns", 2) else "__end__"
        )

    builder = StateGraph(State)
    builder.add_node("speak", speak)
    builder.add_edge(START, "speak")
    builder.add_conditional_edges("speak", route)
    return builder


counting = _build().compile()
broken = _build(fail=True).compile()
