"""A host who remembers what a person said in earlier threads, through LangGraph's
store (long-term memory, :mod:`dialogllm.store`). Run:
python examples/remembering_host.py  (Redis + the local model)

Each thread is one visit: the host recalls the person's facts (``store`` argument of
a node), answers, and keeps what the person said (``get_store()``). The facts live
under ``("people", <person>, "facts")``, outside any thread, so a new thread (or a
new worker, after a restart) still knows them.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from langgraph.pregel import Pregel
from langgraph.store.base import BaseStore
from pydantic import BaseModel

from dialogllm.core import DialogueRunner
from dialogllm.core.nodes import aresolve_chat_model
from dialogllm.llm import ask
from dialogllm.logging import configure_logging


class Visit(TypedDict, total=False):
    """One visit: who, what they said, what the host recalled and replied."""

    person: str
    said: str
    remembered: list[str]
    reply: str


class HostReply(BaseModel):
    """The host's one-sentence reply."""

    message: str


def facts_of(person: str) -> tuple[str, ...]:
    """The namespace of a person's facts."""
    return ("people", person, "facts")


def build_graph(model: BaseChatModel | None = None) -> Pregel[Any, Any, Any, Any]:
    """The host graph; ``model`` (default: the configured chat model) answers."""

    async def recall(state: Visit, *, store: BaseStore) -> Visit:
        found = await store.asearch(facts_of(state["person"]), limit=20)
        return {"remembered": [item.value["text"] for item in found]}

    async def answer(state: Visit, config: RunnableConfig) -> Visit:
        chat = await aresolve_chat_model(config, "host", model)
        known = "; ".join(state.get("remembered") or []) or "nothing yet"
        messages = [
            SystemMessage(
                f"You are a friendly host. What you remember about "
                f"{state['person']}: {known}. Reply in one sentence."
            ),
            HumanMessage(state["said"]),
        ]
        reply = await ask(chat, messages, schema=HostReply, max_tokens=64)
        return {"reply": reply.value.message}

    async def remember(state: Visit) -> Visit:
        store = get_store()
        await store.aput(
            facts_of(state["person"]), uuid.uuid4().hex, {"text": state["said"]}
        )
        return {}

    builder = StateGraph(Visit)
    builder.add_node("recall", recall)
    builder.add_node("answer", answer)
    builder.add_node("remember", remember)
    builder.add_edge(START, "recall")
    builder.add_edge("recall", "answer")
    builder.add_edge("answer", "remember")
    builder.add_edge("remember", END)
    return builder.compile(name="remembering_host")


graph = build_graph()


async def main() -> None:
    async with DialogueRunner() as runner:  # Redis checkpointer and store
        for said in ("I'm Ada and I grow green tea.", "What do I grow, again?"):
            result = await runner.run(graph, {"person": "ada", "said": said})
            print(f"ada: {said}\nhost: {result.values['reply']}")


if __name__ == "__main__":
    configure_logging(level="warning")
    asyncio.run(main())
