"""Graphs of the proof tests (crashes, HITL across processes, RemoteGraph), named in
this folder's ``langgraph.json``.

- ``slow``: ``steps`` steps of ``sleep`` seconds; each step appends its number to
  the file ``trace`` (when given) when it starts, so a test sees which steps ran and
  how often, across processes; steps after ``hold_after`` wait until the file
  ``gate`` exists (a test opens it when it is ready for them).
- ``review``: drafts, then waits at ``interrupt()`` for a verdict.
- ``pair``: two branches that interrupt at once (resumed by interrupt id).
"""

from __future__ import annotations

import operator
import time
from pathlib import Path
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic builds schemas of it on 3.11


class Slow(TypedDict, total=False):
    n: int
    steps: int
    sleep: float
    trace: str
    gate: str
    hold_after: int
    log: Annotated[list[str], operator.add]


def _step(state: Slow) -> dict[str, Any]:
    n = state.get("n", 0) + 1
    if trace := state.get("trace"):
        with Path(trace).open("a") as sink:
            sink.write(f"{n}\n")
    gate = state.get("gate")
    if gate and n > state.get("hold_after", 0):
        deadline = time.monotonic() + 120
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    time.sleep(state.get("sleep", 0.0))
    return {"n": n, "log": [f"step {n}"]}


def _again(state: Slow) -> str:
    return "step" if state.get("n", 0) < state.get("steps", 1) else END


_slow = StateGraph(Slow)
_slow.add_node("step", _step)
_slow.add_edge(START, "step")
_slow.add_conditional_edges("step", _again, ["step", END])
slow = _slow.compile()


class Review(TypedDict, total=False):
    topic: str
    draft: str
    verdict: str


def _draft(state: Review) -> dict[str, Any]:
    return {"draft": f"a draft on {state.get('topic', '')}"}


def _decide(state: Review) -> dict[str, Any]:
    return {"verdict": str(interrupt({"approve?": state.get("draft", "")}))}


_review = StateGraph(Review)
_review.add_node("draft", _draft)
_review.add_node("decide", _decide)
_review.add_edge(START, "draft")
_review.add_edge("draft", "decide")
_review.add_edge("decide", END)
review = _review.compile()


class Pair(TypedDict, total=False):
    answers: Annotated[list[str], operator.add]


def _left(state: Pair) -> dict[str, Any]:
    return {"answers": [f"left:{interrupt('left?')}"]}


def _right(state: Pair) -> dict[str, Any]:
    return {"answers": [f"right:{interrupt('right?')}"]}


_pair = StateGraph(Pair)
_pair.add_node("left", _left)
_pair.add_node("right", _right)
_pair.add_edge(START, "left")
_pair.add_edge(START, "right")
_pair.add_edge("left", END)
_pair.add_edge("right", END)
pair = _pair.compile()
