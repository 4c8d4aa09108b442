"""The graph registry: turn a reference into a compiled LangGraph graph.

A reference is one of:

- a registered **name** (``directed_dialogue``): from :meth:`GraphRegistry.register`
  or from a ``langgraph.json`` (its ``graphs`` table) in the working directory, one of
  its parents, or the project checkout this package runs from;
- a **file** reference ``path/to/file.py:attr``;
- a **module** reference ``package.module:attr``.

The attribute may be a compiled graph, a ``StateGraph`` (compiled here), or a function
of no arguments returning either. The rule: a reference that does not resolve to a
graph raises :class:`~dialogllm.errors.GraphNotFoundError`, never returns ``None``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

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

    >>> registry = GraphRegistry()
    >>> registry.register("chat", "graphs/directed_dialogue.py:graph")
    >>> registry.resolve("chat").name                           # doctest: +SKIP
    'chat'
    """

    def __init__(self, search: Callable[[], Iterator[Path]] | None = None) -> None:
        self._explicit: dict[str, GraphSource] = {}
        self._search = search or _default_config_files

    def register(self, name: str, source: GraphSource) -> None:
        """Register ``source`` (a reference or a graph) under ``name``."""
        if not name or ":" in name or "/" in name:
            raise ValueError(f"invalid graph name {name!r}")
        self._explicit[name] = source

    def names(self) -> dict[str, str]:
        """Every known name and where it points (registrations win)."""
        found: dict[str, str] = {}
        for config in self._search():
            for name, ref in _read_config(config).items():
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
            for config in self._search():
                target = _read_config(config).get(ref)
                if target is not None:
                    inner = _load_ref(target, base=config.parent)
                    return ResolvedGraph(ref, inner.ref, inner.graph)
            known = ", ".join(self.names()) or "none"
            raise GraphNotFoundError(
                f"unknown graph {ref!r}; known names: {known}. "
                "Pass a name, path/to/file.py:attr or package.module:attr."
            )
        return _load_ref(ref, base=Path.cwd())


def _default_config_files() -> Iterator[Path]:
    seen: set[Path] = set()
    here = Path.cwd().resolve()
    package_root = Path(__file__).resolve().parents[3]
    for folder in (here, *here.parents, package_root):
        candidate = folder / "langgraph.json"
        if candidate not in seen and candidate.is_file():
            seen.add(candidate)
            yield candidate


def _read_config(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise GraphNotFoundError(f"cannot read {path}: {exc}") from None
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if not isinstance(graphs, dict):
        return {}
    out: dict[str, str] = {}
    for name, target in graphs.items():
        if isinstance(target, dict):
            target = target.get("path")
        if isinstance(target, str):
            out[str(name)] = target
    return out


def _load_ref(ref: str, *, base: Path) -> ResolvedGraph:
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise GraphNotFoundError(f"graph reference {ref!r} needs the form file.py:attr")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target)
        if not path.is_absolute():
            path = (base / path).resolve()
        if not path.is_file():
            raise GraphNotFoundError(f"graph file not found: {path} (from {ref!r})")
        module = _import_file(path)
        canonical = f"{path}:{attr}"
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise GraphNotFoundError(
                f"cannot import module {target!r} of graph {ref!r}: {exc}"
            ) from None
        canonical = ref
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GraphNotFoundError(f"{target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    graph = _as_graph(obj, ref)
    return ResolvedGraph(_display_name(graph, attr), canonical, graph)


def _display_name(graph: Pregel[Any, Any, Any, Any], fallback: str) -> str:
    name = graph.name
    return name if name and name != "LangGraph" else fallback


def _import_file(path: Path) -> Any:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"dialogllm_graph_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GraphNotFoundError(f"cannot load graph file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise GraphNotFoundError(
            f"graph file {path} failed to import: {type(exc).__name__}: {exc}"
        ) from exc
    return module


def _as_graph(obj: Any, ref: str) -> Pregel[Any, Any, Any, Any]:
    if isinstance(obj, Pregel):
        return obj
    if isinstance(obj, StateGraph):
        return obj.compile()
    if callable(obj) and not isinstance(obj, type):
        try:
            made = obj()
        except TypeError as exc:
            raise GraphNotFoundError(
                f"{ref!r} is a function that needs arguments ({exc}); "
                "point at a graph or a function of no arguments"
            ) from None
        if isinstance(made, Pregel | StateGraph):
            return _as_graph(made, ref)
    raise GraphNotFoundError(
        f"{ref!r} is a {type(obj).__name__}, not a LangGraph graph "
        "(expected a compiled graph, a StateGraph, or a function returning one)"
    )


default_registry = GraphRegistry()
"""The process-wide registry the runner and the CLI use."""


def resolve_graph(ref: GraphSource) -> ResolvedGraph:
    """Resolve ``ref`` with the default registry.

    >>> resolve_graph("graphs/debate.py:graph").graph           # doctest: +SKIP
    """
    return default_registry.resolve(ref)
