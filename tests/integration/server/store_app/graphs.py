"""A graph that remembers notes in the store, and the letters embedding the
server's store index names."""

from __future__ import annotations

from typing import TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore


def letters(texts: list[str]) -> list[list[float]]:
    """How often each letter a-z occurs in each text."""
    out = []
    for text in texts:
        vector = [0.0] * 26
        for ch in text.lower():
            if "a" <= ch <= "z":
                vector[ord(ch) - 97] += 1.0
        out.append(vector)
    return out


class Note(TypedDict, total=False):
    text: str
    known: int


async def remember(state: Note, *, store: BaseStore) -> Note:
    await store.aput(("notes",), state["text"][:8], {"text": state["text"]})
    return {"known": len(await store.asearch(("notes",), limit=100))}


builder = StateGraph(Note)
builder.add_node("remember", remember)
builder.add_edge(START, "remember")
builder.add_edge("remember", END)
note = builder.compile(name="note")
