"""Interview: an LLM interviewer asks, a person answers through interrupts.

Input: ``{"topic": "...", "questions": 2}``. The Interviewer asks a question (typed
:class:`Question`), the graph pauses with ``interrupt()`` until the Candidate's answer
arrives (``Command(resume="...")`` or ``dialogllm resume THREAD --answer "..."``), and
so on for ``questions`` questions. The thread lives in Redis, so the answer may come
days later, from another machine.

    dialogllm run interview --topic "Running Redis in production"
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from pydantic import BaseModel, ConfigDict, Field

from dialogllm.core import MaxTurns, human_node, persona_node, stop_or
from dialogllm.models import DialogueState, Persona

__all__ = ["InterviewInput", "InterviewState", "Question", "build_graph", "graph"]


class InterviewInput(BaseModel):
    """What an interview starts from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    topic: str = Field(min_length=3, max_length=300)
    questions: int = Field(default=2, ge=1, le=20)


class InterviewState(DialogueState, total=False):
    """Dialogue state plus the number of questions to ask."""

    questions: int


class Question(BaseModel):
    """The interviewer's turn."""

    message: str = Field(min_length=1, max_length=600)


INTERVIEWER = Persona(
    name="Interviewer",
    role="a friendly expert who asks one clear question at a time",
    style="short questions",
)
CANDIDATE = "Candidate"


def build_graph(
    *, model: BaseChatModel | None = None, max_tokens: int = 64
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the interview graph (``model=None``: the run's or the default model).

    >>> interview = build_graph()
    """
    cast = (INTERVIEWER, Persona(name=CANDIDATE, role="the person interviewed"))
    builder = StateGraph(InterviewState, input_schema=InterviewInput)
    builder.add_node(
        "interviewer",
        persona_node(
            INTERVIEWER,
            schema=Question,
            participants=cast,
            instructions=(
                "The Interviewer asks one short question at a time and follows up "
                "on the Candidate's last answer."
            ),
            max_tokens=max_tokens,
            model=model,
        ),
    )
    builder.add_node("candidate", human_node(CANDIDATE))
    builder.add_edge(START, "interviewer")
    builder.add_edge("interviewer", "candidate")
    until = MaxTurns(lambda s: 2 * int(s.get("questions", 2)))
    builder.add_conditional_edges(
        "candidate", stop_or(until, "interviewer", end=END), ["interviewer", END]
    )
    return builder.compile(name="interview")


graph = build_graph()
