"""The dialogue toolkit and runner: building blocks, registry, runner, embedding.

Building blocks are plain LangGraph pieces: node factories (:func:`persona_node`,
:func:`speaker_node`, :func:`human_node`, :func:`decision_node`,
:func:`director_choice_node`), turn-taking policies (:class:`RoundRobin`,
:class:`DirectorChooses`) and termination conditions (:class:`MaxTurns`,
:class:`PersonaEnded`, :class:`JudgeDecided`, :class:`TokenBudget`,
:class:`TimeBudget`, combined with ``&``/``|``), and the guards that keep turns
and decisions readable (:mod:`dialogllm.core.guards`). :class:`DialogueRunner` runs,
streams, resumes, forks and exports dialogues on a checkpointer;
:func:`as_subgraph_node` and :func:`as_tool` embed them in other agents.

>>> from langgraph.graph import END, START, StateGraph
>>> from dialogllm.core import MaxTurns, RoundRobin, persona_node, stop_or
>>> from dialogllm.models import DialogueState, Persona
>>> ada, bo = Persona(name="Ada"), Persona(name="Bo")
>>> b = StateGraph(DialogueState)
>>> for p in (ada, bo):
...     _ = b.add_node(p.name, persona_node(p, participants=[ada, bo]))
...     route = stop_or(MaxTurns(4), RoundRobin(["Ada", "Bo"]), end=END)
...     _ = b.add_conditional_edges(p.name, route)
>>> _ = b.add_edge(START, "Ada")
>>> graph = b.compile()
"""

from __future__ import annotations

from dialogllm.core.embed import as_subgraph_node, as_tool, summarize_dialogue
from dialogllm.core.guards import (
    GuardSettings,
    Sentence,
    get_guard_settings,
    grounded,
    junk_problems,
)
from dialogllm.core.nodes import (
    MODEL_CONFIG_KEY,
    ChatModelSource,
    Node,
    TurnCheck,
    TurnOptions,
    decision_node,
    director_choice_node,
    human_node,
    persona_node,
    reply_text,
    resolve_chat_model,
    speaker_node,
)
from dialogllm.core.prompts import (
    dialogue_prompt,
    scene_text,
    transcript_text,
    turn_direction,
)
from dialogllm.core.registry import (
    GraphRegistry,
    ResolvedGraph,
    default_registry,
    resolve_graph,
)
from dialogllm.core.runner import (
    NOT_GIVEN,
    CheckpointInfo,
    DialogueEvent,
    DialogueResult,
    DialogueRunner,
    DoneEvent,
    InterruptEvent,
    TurnEvent,
    UpdateEvent,
    topic_field,
    validate_input,
)
from dialogllm.core.termination import (
    AllOf,
    AnyOf,
    Condition,
    JudgeDecided,
    MaxTurns,
    PersonaEnded,
    TimeBudget,
    TokenBudget,
    stop_or,
)
from dialogllm.core.turns import DirectorChooses, RoundRobin

__all__ = [
    "MODEL_CONFIG_KEY",
    "NOT_GIVEN",
    "AllOf",
    "AnyOf",
    "ChatModelSource",
    "CheckpointInfo",
    "Condition",
    "DialogueEvent",
    "DialogueResult",
    "DialogueRunner",
    "DirectorChooses",
    "DoneEvent",
    "GraphRegistry",
    "GuardSettings",
    "InterruptEvent",
    "JudgeDecided",
    "MaxTurns",
    "Node",
    "PersonaEnded",
    "ResolvedGraph",
    "RoundRobin",
    "Sentence",
    "TimeBudget",
    "TokenBudget",
    "TurnCheck",
    "TurnEvent",
    "TurnOptions",
    "UpdateEvent",
    "as_subgraph_node",
    "as_tool",
    "decision_node",
    "default_registry",
    "dialogue_prompt",
    "director_choice_node",
    "get_guard_settings",
    "grounded",
    "human_node",
    "junk_problems",
    "persona_node",
    "reply_text",
    "resolve_chat_model",
    "resolve_graph",
    "scene_text",
    "speaker_node",
    "stop_or",
    "summarize_dialogue",
    "topic_field",
    "transcript_text",
    "turn_direction",
    "validate_input",
]
