"""A two-persona dialogue from scratch. Run: python examples/two_personas.py"""

import asyncio
from typing import Any

from langgraph.graph import END, START, StateGraph

from dialogllm.core import DialogueRunner, MaxTurns, RoundRobin, TurnEvent, stop_or
from dialogllm.core import persona_node as speaks
from dialogllm.logging import configure_logging
from dialogllm.models import DialogueState, Persona

ADA = Persona(name="Ada", role="a mathematician", goals=("explain engines",))
BO = Persona(name="Bo", role="a curious baker", style="plain words")


def build_graph(turns: int = 4) -> Any:
    builder = StateGraph(DialogueState)
    next_one = stop_or(MaxTurns(turns), RoundRobin(["Ada", "Bo"]), end=END)
    for p in (ADA, BO):
        builder.add_node(p.name, speaks(p, participants=[ADA, BO], max_tokens=96))
        builder.add_conditional_edges(p.name, next_one, ["Ada", "Bo", END])
    builder.add_edge(START, "Ada")
    return builder.compile(name="two_personas")


async def main(turns: int = 4, **runner_options: Any) -> None:
    async with DialogueRunner(**runner_options) as runner:  # Redis + local model
        topic = {"topic": "how a machine can compute"}
        async for event in runner.stream(build_graph(turns), topic):
            if isinstance(event, TurnEvent):
                print(f"{event.entry.speaker}: {event.entry.text}")


if __name__ == "__main__":
    configure_logging(level="warning")  # stdout shows the dialogue only
    asyncio.run(main())
