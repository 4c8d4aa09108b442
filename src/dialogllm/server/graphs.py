"""The graphs a server serves, and their assistants.

The graphs come from a ``langgraph.json`` (its ``graphs`` table, read by
:mod:`dialogllm.loader`, the one place a reference becomes a graph). Each graph has
a *system* assistant from the start, as LangGraph's server does, whose id is derived
from the graph id (UUID 5 in LangGraph's namespace), so assistant ids are the same
on our server and on LangGraph's.

>>> table = GraphTable.from_config(LangGraphConfig.read(Path("langgraph.json")))
>>> table.system_assistant("debate").assistant_id                 # doctest: +SKIP
'…'
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from langgraph.pregel import Pregel

from dialogllm.loader import LangGraphConfig, load_graph
from dialogllm.server.storage import AssistantRecord

__all__ = ["NAMESPACE_GRAPH", "GraphTable", "system_assistant_id"]

#: The namespace LangGraph's server derives system assistant ids in (a wire fact:
#: clients may keep those ids).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def system_assistant_id(graph_id: str) -> str:
    """The id of a graph's system assistant."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass(frozen=True)
class GraphTable:
    """Graph ids and the references they load (absolute file paths)."""

    references: dict[str, str]
    started_ms: int = 0

    @classmethod
    def from_config(cls, config: LangGraphConfig, *, started_ms: int = 0) -> GraphTable:
        """The graphs of a ``langgraph.json`` (its dependencies and env applied)."""
        config.apply()
        refs = {name: config.reference(name) for name in config.graphs}
        return cls({k: v for k, v in refs.items() if v}, started_ms)

    def graph(self, graph_id: str) -> Pregel[Any, Any, Any, Any]:
        """The compiled graph (loaded once per process)."""
        return load_graph(self.references[graph_id])

    def system_assistant(self, graph_id: str) -> AssistantRecord:
        """The assistant every graph has from the start."""
        return AssistantRecord(
            assistant_id=system_assistant_id(graph_id),
            graph_id=graph_id,
            name=graph_id,
            version=1,
            created_ms=self.started_ms,
            updated_ms=self.started_ms,
            metadata={"created_by": "system"},
        )

    def system_assistants(self) -> list[AssistantRecord]:
        """One system assistant per graph, in the file's order."""
        return [self.system_assistant(graph_id) for graph_id in self.references]
