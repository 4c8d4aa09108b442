"""The graphs the browser tests serve: the shipped ones (``graphs/*.py``) on a
scripted chat model that streams its replies token by token, a chat of many turns,
and a graph whose node fails.

The scripted model answers each prompt with what its schema wants (a director's
plan, turns, a verdict, an analysis), so the page's rendering is tested, not a
model's quality. ``UI_TEST_TOKEN_DELAY`` (seconds, default 0.005) is the pause
between streamed tokens; ``UI_TEST_TURN_DELAY`` the pause before a chat turn.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import MaxTurns, RoundRobin, persona_node, stop_or
from dialogllm.llm.metrics import default_metrics
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.models import DialogueState, Persona

ROOT = Path(__file__).resolve().parents[4]

POINTS = (
    "buses arrive every four minutes downtown",
    "parking garages could become housing",
    "deliveries still need loading zones",
    "cycling lanes doubled commuter counts",
    "elderly residents depend on taxis",
    "shops on car free streets sold more",
    "noise at night fell by half",
    "ambulances need clear routes",
)


class StreamingScriptedModel(ScriptedChatModel):
    """A scripted model that also streams: each reply comes as word-sized chunks."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        reply = self._next(messages)
        text = str(reply.content)
        delay = float(os.environ.get("UI_TEST_TOKEN_DELAY", "0.005"))
        pieces = re.findall(r"\S+\s*|\s+", text)
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk = AIMessageChunk(
                content=piece,
                usage_metadata=reply.usage_metadata if last else None,
                response_metadata=reply.response_metadata if last else {},
                chunk_position="last" if last else None,
            )
            if run_manager is not None:
                await run_manager.on_llm_new_token(piece, chunk=None)
            yield ChatGenerationChunk(message=chunk)
            if delay:
                await asyncio.sleep(delay)


def _model(reply_fn: Any, delay_s: float = 0.0) -> StreamingScriptedModel:
    """A streaming scripted model whose calls count in the fleet's LLM metrics."""
    return StreamingScriptedModel(
        reply_fn=reply_fn, delay_s=delay_s, callbacks=[default_metrics()]
    )


def _said(messages: Sequence[BaseMessage]) -> list[tuple[str, str]]:
    """The ``Speaker: text`` lines of the transcript in the prompt."""
    text = "\n".join(str(m.content) for m in messages)
    return re.findall(r"^([A-Z][A-Za-z]+): (.+)$", text, flags=re.M)


def reply(messages: Sequence[BaseMessage]) -> str:
    """What each of the shipped graphs' prompts asks for, as JSON."""
    text = "\n".join(str(m.content) for m in messages)
    said = [(s, t) for s, t in _said(messages) if s not in ("Topic", "Transcript")]
    if "A director plans" in text:
        size = int(re.search(r"names exactly (\d+)", text).group(1))  # type: ignore[union-attr]
        topic = re.search(r"Topic: (.+)", text).group(1)  # type: ignore[union-attr]
        names = ["Maya", "Tom", "Priya", "Leo"][:size]
        key = [w for w in re.findall(r"[a-z]+", topic.lower()) if len(w) > 3][:2]
        role = ("knows " + " ".join(key))[:32]
        cast = [{"name": n, "role": role} for n in names]
        setting = f"A studio where people discuss {topic}"
        return json.dumps({"setting": setting, "cast": cast})
    if "Judge's verdict" in text:
        return json.dumps(
            {"winner": "Proposition", "reasons": ["Proposition named the buses first."]}
        )
    if "An analyst reviews" in text:
        speakers = sorted({s for s, _ in said} - {"Director"}) or ["Maya"]
        return json.dumps(
            {
                "sentiment": [
                    {"speaker": s, "sentiment": "positive"} for s in speakers
                ],
                "claims_to_check": [
                    f"{speakers[0]} says buses arrive every four minutes."
                ],
                "privacy_flags": [],
            }
        )
    if "closes with a short summary" in text:
        return json.dumps(
            {"summary": "Everyone weighed transport against the city's daily needs."}
        )
    if "decides whether the conversation" in text:
        return json.dumps({"conclude": False, "reason": "more to say"})
    if "picks who speaks next" in text:
        return json.dumps({"next_speaker": "Maya"})
    if "Interviewer" in text and "Candidate" in text:
        asked = sum(1 for s, _ in said if s == "Interviewer")
        point = POINTS[asked % len(POINTS)]
        return json.dumps(
            {"message": f"Question {asked + 1}: is it true that {point}?"}
        )
    n = len(said)
    return json.dumps({"message": f"Point {n + 1}: {POINTS[n % len(POINTS)]}."})


def _shipped(name: str) -> Any:
    path = ROOT / "graphs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ui_shipped_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its annotations are resolved by name
    spec.loader.exec_module(module)
    return module.build_graph(model=_model(reply))


directed_dialogue = _shipped("directed_dialogue")
debate = _shipped("debate")
interview = _shipped("interview")


class ChatInput(BaseModel):
    """A chat of two personas."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(min_length=1)
    turns: int = Field(default=6, ge=1, le=200)


class ChatState(DialogueState, total=False):
    """State of the chat."""

    turns: int


def _turn(messages: Sequence[BaseMessage]) -> str:
    n = len(_said(messages))
    return json.dumps({"message": f"turn {n + 1}: {POINTS[n % len(POINTS)]}"})


def _chat(reply_fn: Any, name: str) -> Any:
    model = _model(reply_fn, delay_s=float(os.environ.get("UI_TEST_TURN_DELAY", "0")))
    cast = (Persona(name="Ada"), Persona(name="Bo"))
    until = MaxTurns(lambda s: int(s.get("turns", 6)))
    builder = StateGraph(ChatState, input_schema=ChatInput)
    for p in cast:
        builder.add_node(
            p.name, persona_node(p, participants=cast, window=400, model=model)
        )
        builder.add_conditional_edges(
            p.name,
            stop_or(until, RoundRobin(["Ada", "Bo"]), end=END),
            ["Ada", "Bo", END],
        )
    builder.add_edge(START, "Ada")
    return builder.compile(name=name)


chat = _chat(_turn, "chat")


def _refuse(messages: Sequence[BaseMessage]) -> str:
    if len(_said(messages)) >= 1:
        raise RuntimeError("the model endpoint refused the request")
    return _turn(messages)


broken = _chat(_refuse, "broken")
