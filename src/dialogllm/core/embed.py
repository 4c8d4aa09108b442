"""Embedding a dialogue graph in another agent: as a subgraph node, or as a tool.

Both share the parent's checkpointer: the dialogue's steps are checkpointed in the
parent thread under their own namespace, an ``interrupt()`` inside the dialogue pauses
the parent, and ``Command(resume=...)`` sent to the parent thread reaches it. The rule:
compile the embedded graph *without* a checkpointer, so it inherits the parent's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.pregel import Pregel

from dialogllm.core.nodes import Node
from dialogllm.core.prompts import transcript_text
from dialogllm.core.runner import validate_input

__all__ = ["as_subgraph_node", "as_tool", "summarize_dialogue"]


def summarize_dialogue(values: Mapping[str, Any]) -> str:
    """A text summary of a finished dialogue's state, for a parent agent to read:
    the conclusion or verdict (when the graph wrote one), then the transcript.

    >>> summarize_dialogue({"conclusion": "Agreed."})
    'Conclusion: Agreed.'
    """
    parts = []
    for key in ("conclusion", "verdict", "analysis"):
        value = values.get(key)
        if value:
            parts.append(f"{key.capitalize()}: {value}")
    lines = transcript_text(values.get("transcript") or [], window=50)
    if lines:
        parts.append("Transcript:\n" + lines)
    return "\n\n".join(parts) or "(empty dialogue)"


def as_subgraph_node(
    graph: Pregel[Any, Any, Any, Any],
    *,
    input: Callable[[Any], Mapping[str, Any]] | None = None,
    output: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Node:
    """A parent-graph node that runs ``graph`` as a subgraph.

    ``input`` maps the parent state to the dialogue's input (validated against its
    schema); ``output`` maps the dialogue's final state to the parent's update. When
    parent and dialogue share their state keys, ``builder.add_node(name, graph)``
    works too.

    >>> builder.add_node(
    ...     "interview",
    ...     as_subgraph_node(
    ...         interview_graph,
    ...         input=lambda s: {"topic": s["role"]},
    ...         output=lambda v: {"notes": summarize_dialogue(v)},
    ...     ),
    ... )                                                       # doctest: +SKIP
    """

    async def node(state: Any, config: RunnableConfig) -> dict[str, Any]:
        payload = validate_input(graph, input(state) if input else dict(state))
        values: dict[str, Any] = await graph.ainvoke(payload, config)
        return output(values) if output else values

    node.__name__ = f"subgraph_{graph.name or 'dialogue'}"
    return node


def as_tool(
    graph: Pregel[Any, Any, Any, Any],
    *,
    name: str | None = None,
    description: str | None = None,
    summarize: Callable[[dict[str, Any]], str] = summarize_dialogue,
) -> BaseTool:
    """A LangChain tool that runs ``graph`` with the tool call's arguments (checked
    against the graph's input schema) and returns ``summarize(final_state)``.

    Use it with LangGraph's agent constructor; the dialogue runs inside the agent's
    thread, so a person it asks via ``interrupt()`` answers through the agent.

    >>> from langgraph.prebuilt import create_react_agent
    >>> agent = create_react_agent(model, [as_tool(debate_graph, name="debate")])
    ... # doctest: +SKIP
    """
    tool_name = name or graph.name or "dialogue"

    async def run_dialogue(config: RunnableConfig, **kwargs: Any) -> str:
        payload = validate_input(graph, kwargs)
        values: dict[str, Any] = await graph.ainvoke(payload, config)
        return summarize(values)

    return StructuredTool.from_function(
        coroutine=run_dialogue,
        name=tool_name,
        description=description or f"Run the {tool_name} dialogue and return it.",
        args_schema=graph.get_input_schema(),
    )
