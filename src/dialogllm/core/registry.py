"""The graph registry: names of graphs, and references resolved for the runner.

The registry owns the names a process knows: those given to
:meth:`GraphRegistry.register`, then those of ``langgraph.json`` files. Loading a
reference — a name, ``path/to/file.py:attr`` or ``package.module:attr`` — is
:mod:`dialogllm.loader`'s job (one owner, shared with the queue's workers): the same
reference gives the same graph object here as there, and a file is executed once.

The rule: a reference that does not resolve to a graph raises
:class:`~dialogllm.errors.GraphNotFoundError`, never returns ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from dialogllm import loader
from dialogllm.errors import GraphNotFoundError

__all__ = ["GraphRegistry", "ResolvedGraph", "default_registry", "resolve_graph"]

GraphSource = str | Pregel[Any, Any, Any, Any] | StateGraph[Any, Any, Any, Any]


@dataclass(frozen=True)
class ResolvedGraph:
    """A graph and the reference it came from.

    ``ref`` is what a later process needs to load the same graph again (a name, or
    a reference with an absolute file path); the runner stores it with the thread.
    """

    name: str
    ref: str
    graph: Pregel[Any, Any, Any, Any]


class GraphRegistry:
    """Names of graphs, and the resolution of references.

    ``search`` lists the ``langgraph.json`` files to read names from (default:
    :func:`dialogllm.loader.config_files`).

    >>> registry = GraphRegistry()
    >>> registry.register("chat", "graphs/directed_dialogue.py:graph")
    >>> registry.resolve("chat").name                           # doctest: +SKIP
    'chat'
    """

    def __init__(self, search: Callable[[], Iterator[Path]] | None = None) -> None:
        self._explicit: dict[str, GraphSource] = {}
        self._search = search or loader.config_files

    def register(self, name: str, source: GraphSource) -> None:
        """Register ``source`` (a reference or a graph) under ``name``."""
        if not name or ":" in name or "/" in name:
            raise ValueError(f"invalid graph name {name!r}")
        self._explicit[name] = source

    def names(self) -> dict[str, str]:
        """Every known name and where it points (registrations win)."""
        found: dict[str, str] = {}
        for config in self._search():
            for name, ref in loader.LangGraphConfig.read(config).graphs.items():
                found.setdefault(name, ref)
        for name, source in self._explicit.items():
            found[name] = source if isinstance(source, str) else f"<{name}>"
        return dict(sorted(found.items()))

    def resolve(self, ref: GraphSource) -> ResolvedGraph:
        """Resolve a name, ``file.py:attr`` or ``module:attr`` to a compiled graph.

        Raises :class:`~dialogllm.errors.GraphNotFoundError` naming the reference and
        the known names.
        """
        if not isinstance(ref, str):
            graph = _as_graph(ref, "graph")
            return ResolvedGraph(graph.name or "graph", graph.name or "graph", graph)
        ref = ref.strip()
        if not ref:
            raise GraphNotFoundError("empty graph reference")
        if ref in self._explicit:
            source = self._explicit[ref]
            if isinstance(source, str):
                inner = self.resolve(source)
                return ResolvedGraph(ref, inner.ref, inner.graph)
            return ResolvedGraph(ref, ref, _as_graph(source, ref))
        if ":" not in ref:
            target = loader.reference_for_name(ref, self._search())
            if target is None:
                known = ", ".join(self.names()) or "none"
                raise GraphNotFoundError(
                    f"unknown graph {ref!r}; known names: {known}. "
                    "Pass a name, path/to/file.py:attr or package.module:attr."
                )
            inner = self._load(target)
            return ResolvedGraph(ref, inner.ref, inner.graph)
        return self._load(ref)

    def _load(self, ref: str) -> ResolvedGraph:
        canonical = loader.canonical_reference(ref)
        graph = loader.load_graph(canonical)
        attr = canonical.rpartition(":")[2]
        return ResolvedGraph(_display_name(graph, attr), canonical, graph)


def _display_name(graph: Pregel[Any, Any, Any, Any], fallback: str) -> str:
    name = graph.name
    return name if name and name != "LangGraph" else fallback


def _as_graph(obj: Any, ref: str) -> Pregel[Any, Any, Any, Any]:
    graph = loader.coerce(obj, ref)
    assert isinstance(graph, Pregel)  # functions=False returns graphs only
    return graph


default_registry = GraphRegistry()
"""The process-wide registry the runner and the CLI use."""


def resolve_graph(ref: GraphSource) -> ResolvedGraph:
    """Resolve ``ref`` with the default registry.

    >>> resolve_graph("graphs/debate.py:graph").graph           # doctest: +SKIP
    """
    return default_registry.resolve(ref)
