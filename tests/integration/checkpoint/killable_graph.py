"""A slow counting graph run in a child process that the test kills with SIGKILL.

``python killable_graph.py PREFIX THREAD`` runs it on the shared Redis.
"""

from __future__ import annotations

import asyncio
import operator
import sys
import time
from typing import Annotated, Literal, TypedDict

from langgraph.graph import START, StateGraph

from dialogllm.checkpoint import AsyncRedisSaver

STEPS = 12


class State(TypedDict):
    n: int
    log: Annotated[list[str], operator.add]


def build() -> StateGraph[State]:
    """Each step sleeps a little so a kill lands mid-run."""

    def step(state: State) -> dict[str, object]:
        time.sleep(0.1)
        return {"n": state["n"] + 1, "log": [f"step {state['n'] + 1}"]}

    def route(state: State) -> Literal["step", "__end__"]:
        return "step" if state["n"] < STEPS else "__end__"

    builder = StateGraph(State)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", route)
    return builder


async def main(prefix: str, thread_id: str) -> None:
    url = "redis://127.0.0.1:6379/0"
    async with AsyncRedisSaver.from_conn_string(url, key_prefix=prefix) as saver:
        graph = build().compile(checkpointer=saver)
        await graph.ainvoke(
            {"n": 0, "log": []}, {"configurable": {"thread_id": thread_id}}
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
