"""Turning a run's graph reference into something a worker can run.

A run names its graph by a string. The worker asks a resolver (any
``Callable[[str], Runnable]``) for it; the core layer passes its registry. The default,
:func:`import_resolver`, imports ``"package.module:attr"`` or ``"path/file.py:attr"``.
The target is a compiled LangGraph graph (``Pregel``), a ``StateGraph`` builder (it is
compiled), a zero-argument factory returning either, or a plain function
``(input) -> result`` (sync or async) that the worker runs without checkpoints.

The rule a reader must not break: a reference that cannot be resolved raises
:class:`~dialogllm.errors.GraphNotFoundError`, which the worker treats as poison (dead
letter at once), never as a reason to retry.

>>> resolve = import_resolver()
>>> graph = resolve("dialogllm_examples.debate:graph")        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from langgraph.graph.state import StateGraph
from langgraph.pregel import Pregel

from dialogllm.errors import GraphNotFoundError

__all__ = ["Resolver", "Runnable", "import_resolver", "load_target"]

#: What a resolver returns: a compiled graph, or a plain function run as is.
Runnable = Pregel[Any, Any, Any, Any] | Callable[..., Any]
Resolver = Callable[[str], Runnable]


def _import_file(path: Path) -> Any:
    name = f"dialogllm_graph_{abs(hash(str(path.resolve())))}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GraphNotFoundError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_target(reference: str) -> Runnable:
    """Import ``reference`` (``"pkg.mod:attr"`` or ``"dir/file.py:attr"``).

    >>> load_target("json:dumps") is __import__("json").dumps
    True
    """
    module_ref, sep, attr = reference.rpartition(":")
    if not sep or not module_ref or not attr:
        raise GraphNotFoundError(
            f"graph reference {reference!r} must look like 'package.module:attr' or "
            "'path/to/file.py:attr'"
        )
    try:
        if module_ref.endswith(".py"):
            path = Path(module_ref)
            if not path.is_file():
                raise GraphNotFoundError(f"graph file {module_ref!r} does not exist")
            module = _import_file(path)
        else:
            module = importlib.import_module(module_ref)
    except GraphNotFoundError:
        raise
    except Exception as exc:
        raise GraphNotFoundError(
            f"importing {module_ref!r} for graph {reference!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        target: Any = getattr(module, attr)
    except AttributeError:
        raise GraphNotFoundError(
            f"{module_ref!r} has no attribute {attr!r} (graph {reference!r})"
        ) from None
    return _coerce(target, reference)


def _coerce(target: Any, reference: str) -> Runnable:
    if isinstance(target, Pregel):
        return target
    if isinstance(target, StateGraph):
        return target.compile()
    if callable(target):
        params = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if not params and not inspect.iscoroutinefunction(target):
            built = target()  # a factory
            if isinstance(built, Pregel | StateGraph):
                return _coerce(built, reference)
            raise GraphNotFoundError(
                f"factory {reference!r} returned {type(built).__name__}, "
                "not a LangGraph graph"
            )
        return cast(Runnable, target)  # a plain function: (input) -> result
    raise GraphNotFoundError(
        f"{reference!r} is a {type(target).__name__}, not a graph or a function"
    )


def import_resolver(cache: bool = True) -> Resolver:
    """The default resolver: :func:`load_target`, cached per reference.

    >>> resolve = import_resolver()
    >>> resolve("json:dumps")({"a": 1})
    '{"a": 1}'
    """
    cached: dict[str, Runnable] = {}

    def resolve(reference: str) -> Runnable:
        if cache and reference in cached:
            return cached[reference]
        target = load_target(reference)
        if cache:
            cached[reference] = target
        return target

    return resolve
