"""Loading graphs: the one place a graph reference becomes a graph.

This module owns graph references and everything needed to follow one:

- a **name** (``debate``) from the ``graphs`` table of a ``langgraph.json``, found in
  the working directory, one of its parents, or the checkout this package runs from;
- a **file** reference ``path/to/file.py:attr`` (relative to the working directory);
- a **module** reference ``package.module:attr``.

``langgraph.json`` is read as LangGraph's own tools read it: ``graphs`` (name →
``"./path.py:attr"``, or ``{"path": ...}``), ``dependencies`` (local folders, relative
to the json file, appended to ``sys.path``; package names are left to the installer)
and ``env`` (a ``.env`` file path, or a mapping, loaded into ``os.environ`` without
overriding variables already set); ``auth`` (``{"path": "./auth.py:auth"}``, the
``langgraph_sdk.Auth`` object ``dialogllm serve`` authenticates requests with).
Dependencies and env are applied when a graph is loaded by a name
from that file.

The rules a reader must not break:

- a file is executed **once per process**, under one deterministic module name per
  absolute path (``dialogllm_graph_<stem>_<digest>`` in ``sys.modules``), and every
  caller — the CLI, the runner, the worker — gets the **same object** for the same
  reference (builders and factories are built once and cached);
- a reference that cannot be loaded raises :class:`~dialogllm.errors.GraphNotFoundError`
  naming the file or module, the attribute, and the cause; never ``None``. The worker
  treats it as poison (dead letter at once), not a reason to retry.

The attribute may be a compiled graph (``Pregel``), a ``StateGraph`` builder (compiled
here), or a function of no arguments returning either. :func:`load_target` (what the
queue's workers use) also accepts a plain function ``(input) -> result``, sync or async,
which a worker runs without checkpoints.

>>> graph = load_graph("graphs/debate.py:graph")                 # doctest: +SKIP
>>> graph is load_target("debate")                               # doctest: +SKIP
True
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from dotenv import dotenv_values
from langgraph.graph.state import StateGraph
from langgraph.pregel import Pregel

from dialogllm.errors import ConfigError, GraphNotFoundError

__all__ = [
    "CONFIG_FILE",
    "META_GRAPH",
    "META_GRAPH_REF",
    "LangGraphConfig",
    "Resolver",
    "Runnable",
    "canonical_reference",
    "coerce",
    "config_files",
    "import_resolver",
    "is_file_reference",
    "load_graph",
    "load_object",
    "load_target",
    "reference_for_name",
]

#: What a resolver returns: a compiled graph, or a plain function run as is.
Runnable = Pregel[Any, Any, Any, Any] | Callable[..., Any]
#: Turns a run's graph reference into something a worker can run.
Resolver = Callable[[str], Runnable]

#: The file LangGraph's tools read graph names from.
CONFIG_FILE = "langgraph.json"

META_GRAPH = "dialogllm_graph"
"""Checkpoint metadata key: the graph's name as the user gave it. Written by every
process that runs a graph on a thread (the runner, the queue's workers), so any of
them can load the thread's graph again from the thread id alone."""
META_GRAPH_REF = "dialogllm_graph_ref"
"""Checkpoint metadata key: a reference that loads the graph in another process."""

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_lock = threading.RLock()
_targets: dict[str, Runnable] = {}
_applied: set[Path] = set()


# --- langgraph.json -------------------------------------------------------------------


@dataclass(frozen=True)
class LangGraphConfig:
    """A ``langgraph.json``: its graph names, local dependencies and environment.

    >>> config = LangGraphConfig.read(Path("langgraph.json"))     # doctest: +SKIP
    >>> config.reference("debate")                                # doctest: +SKIP
    '/checkout/graphs/debate.py:graph'
    """

    path: Path
    graphs: dict[str, str] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    env: str | dict[str, str] | None = None
    auth: str | None = None  # "auth": {"path": "./auth.py:auth"}: the server's Auth
    store: dict[str, Any] | None = None  # "store": {"index": {...}, "ttl": {...}}
    webhooks: dict[str, Any] | None = None  # "webhooks": {"url": {...}}: the policy

    @classmethod
    def read(cls, path: Path) -> LangGraphConfig:
        """Parse ``path``; entries of the wrong type are skipped.

        Raises :class:`~dialogllm.errors.GraphNotFoundError` when the file cannot be
        read or is not JSON.
        """
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GraphNotFoundError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            return cls(path)
        graphs: dict[str, str] = {}
        table = data.get("graphs")
        for name, target in (table if isinstance(table, dict) else {}).items():
            if isinstance(target, dict):
                target = target.get("path")
            if isinstance(target, str):
                graphs[str(name)] = target
        deps = data.get("dependencies")
        dependencies = tuple(
            d for d in (deps if isinstance(deps, list) else []) if isinstance(d, str)
        )
        raw_env = data.get("env")
        env: str | dict[str, str] | None = None
        if isinstance(raw_env, str):
            env = raw_env
        elif isinstance(raw_env, dict):
            env = {str(k): str(v) for k, v in raw_env.items() if v is not None}
        raw_auth = data.get("auth")
        auth_path = raw_auth.get("path") if isinstance(raw_auth, dict) else None
        auth = auth_path if isinstance(auth_path, str) else None
        raw_store = data.get("store")
        store = dict(raw_store) if isinstance(raw_store, dict) else None
        raw_webhooks = data.get("webhooks")
        if raw_webhooks is not None and not isinstance(raw_webhooks, dict):
            raise ConfigError(f'"webhooks" in {path} must be an object')
        webhooks = dict(raw_webhooks) if raw_webhooks is not None else None
        return cls(path, graphs, dependencies, env, auth, store, webhooks)

    @property
    def folder(self) -> Path:
        """The folder relative paths in this file are relative to."""
        return self.path.resolve().parent

    def reference(self, name: str) -> str | None:
        """The reference ``name`` points at, file paths made absolute; ``None`` if
        this file does not name it."""
        target = self.graphs.get(name)
        if target is None:
            return None
        return canonical_reference(target, base=self.folder)

    def apply(self) -> None:
        """Add local ``dependencies`` to ``sys.path`` and load ``env`` (once).

        Variables already in ``os.environ`` win over the file's.
        """
        key = self.path.resolve()
        with _lock:
            if key in _applied:
                return
            for dep in self.dependencies:
                folder = (self.folder / dep).resolve()
                if folder.is_dir() and str(folder) not in sys.path:
                    sys.path.append(str(folder))
            values: Mapping[str, str | None]
            if isinstance(self.env, str):
                env_file = self.folder / self.env
                if not env_file.is_file():
                    raise GraphNotFoundError(
                        f"{self.path}: env file {env_file} does not exist"
                    )
                values = dotenv_values(env_file)
            else:
                values = self.env or {}
            for name, value in values.items():
                if value is not None:
                    os.environ.setdefault(name, value)
            _applied.add(key)


def config_files(start: Path | None = None) -> Iterator[Path]:
    """Every ``langgraph.json`` in ``start`` (default: the working directory), its
    parents, then the checkout this package runs from; nearest first."""
    here = (start or Path.cwd()).resolve()
    seen: set[Path] = set()
    for folder in (here, *here.parents, _PACKAGE_ROOT):
        candidate = folder / CONFIG_FILE
        if candidate not in seen and candidate.is_file():
            seen.add(candidate)
            yield candidate


def reference_for_name(name: str, configs: Iterable[Path] | None = None) -> str | None:
    """The reference a graph ``name`` stands for in the first config that names it
    (default: :func:`config_files`), that config applied; ``None`` if none does."""
    for path in config_files() if configs is None else configs:
        config = LangGraphConfig.read(path)
        reference = config.reference(name)
        if reference is not None:
            config.apply()
            return reference
    return None


# --- references -----------------------------------------------------------------------


def is_file_reference(target: str) -> bool:
    """Whether the part before ``:`` names a file rather than a module."""
    return target.endswith(".py") or "/" in target or "\\" in target


def _split(reference: str) -> tuple[str, str]:
    target, sep, attr = reference.strip().rpartition(":")
    if not sep or not target or not attr:
        raise GraphNotFoundError(
            f"graph reference {reference!r} must look like 'path/to/file.py:attr' or "
            "'package.module:attr' (or be a graph name)"
        )
    return target, attr


def canonical_reference(reference: str, *, base: Path | None = None) -> str:
    """``reference`` with a file path made absolute (relative to ``base``, default
    the working directory): the key under which its graph is cached and stored."""
    target, attr = _split(reference)
    if not is_file_reference(target):
        return f"{target}:{attr}"
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return f"{path.resolve()}:{attr}"


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    return f"dialogllm_graph_{stem}_{digest}"


def _loaded_as(path: Path) -> ModuleType | None:
    """A module already imported from ``path`` under any name (e.g. ``pkg.mod``)."""
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and file == str(path):
            return module
    return None


def _import_file(path: Path, attr: str) -> ModuleType:
    name = _module_name(path)
    module = sys.modules.get(name) or _loaded_as(path)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise GraphNotFoundError(
            f"cannot load graph {attr!r}: {path} is not a Python file"
        )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)  # a failed file is executed again next time
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit: not a loading error
        raise GraphNotFoundError(
            f"importing graph file {path} for graph {attr!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return module


def _import(target: str, attr: str) -> tuple[ModuleType, str]:
    """The module ``target`` names and how to name it in messages."""
    if is_file_reference(target):
        path = Path(target)
        if not path.is_file():
            raise GraphNotFoundError(
                f"cannot load graph {attr!r}: graph file {path} does not exist"
            )
        return _import_file(path, attr), f"graph file {path}"
    try:
        return importlib.import_module(target), f"module {target!r}"
    except Exception as exc:
        raise GraphNotFoundError(
            f"importing module {target!r} for graph {attr!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def _needs_arguments(target: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(
        p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        for p in params
    )


def coerce(target: Any, reference: str, *, functions: bool = False) -> Runnable:
    """``target`` as a compiled graph (or, with ``functions``, a plain function).

    >>> coerce(len, "builtins:len", functions=True) is len
    True
    """
    if isinstance(target, Pregel):
        return target
    if isinstance(target, StateGraph):
        try:
            return cast(Pregel[Any, Any, Any, Any], target.compile())
        except Exception as exc:
            raise GraphNotFoundError(
                f"compiling {reference!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
    if callable(target) and not isinstance(target, type):
        plain = _needs_arguments(target) or inspect.iscoroutinefunction(target)
        if plain and functions:
            return cast(Callable[..., Any], target)  # (input) -> result
        if plain:
            raise GraphNotFoundError(
                f"{reference!r} is a function that needs arguments; "
                "point at a graph or a function of no arguments returning one"
            )
        try:
            built = target()  # a factory
        except Exception as exc:
            raise GraphNotFoundError(
                f"factory {reference!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if isinstance(built, Pregel | StateGraph):
            return coerce(built, reference)
        raise GraphNotFoundError(
            f"factory {reference!r} returned a {type(built).__name__}, "
            "not a LangGraph graph"
        )
    expected = "a graph or a function" if functions else "a LangGraph graph"
    raise GraphNotFoundError(
        f"{reference!r} is a {type(target).__name__}, not {expected} "
        "(expected a compiled graph, a StateGraph, or a function returning one)"
    )


def load_target(
    reference: str,
    *,
    base: Path | None = None,
    configs: Iterable[Path] | None = None,
    functions: bool = True,
    cache: bool = True,
) -> Runnable:
    """Load ``reference`` (a name, ``"pkg.mod:attr"`` or ``"dir/file.py:attr"``).

    Relative file paths are relative to ``base`` (default: the working directory);
    names are looked up in ``configs`` (default: :func:`config_files`). With
    ``functions``, a plain function ``(input) -> result`` is returned as is; without,
    it is refused. With ``cache`` (the default) every caller gets the object the first
    one got; without, builders and factories are built again (the file is still
    executed only once).

    >>> load_target("json:dumps") is __import__("json").dumps
    True
    """
    reference = reference.strip()
    if not reference:
        raise GraphNotFoundError("empty graph reference")
    if ":" not in reference:
        named = reference_for_name(reference, configs)
        if named is None:
            raise GraphNotFoundError(
                f"unknown graph {reference!r}; pass a name from langgraph.json, "
                "path/to/file.py:attr or package.module:attr"
            )
        reference = named
    key = canonical_reference(reference, base=base)
    with _lock:
        hit = _targets.get(key) if cache else None
        if hit is not None and (functions or isinstance(hit, Pregel)):
            return hit
        found = coerce(_attribute(key, reference), key, functions=functions)
        if cache:
            _targets.setdefault(key, found)
        return found


def _attribute(key: str, reference: str) -> Any:
    """The object a canonical reference names (its module imported once)."""
    target, attr = _split(key)
    module, where = _import(target, attr)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise GraphNotFoundError(
                f"{where} has no attribute {attr!r} (graph reference {reference!r})"
            )
        obj = getattr(obj, part)
    return obj


def load_object(reference: str, *, base: Path | None = None) -> Any:
    """The object ``"pkg.mod:attr"`` or ``"dir/file.py:attr"`` names, as it is (the
    ``auth`` object a ``langgraph.json`` names, for one); the file is executed once,
    as for graphs. Raises :class:`~dialogllm.errors.GraphNotFoundError`.

    >>> load_object("json:dumps") is __import__("json").dumps
    True
    """
    key = canonical_reference(reference, base=base)
    with _lock:
        return _attribute(key, reference)


def load_graph(
    reference: str,
    *,
    base: Path | None = None,
    configs: Iterable[Path] | None = None,
) -> Pregel[Any, Any, Any, Any]:
    """:func:`load_target` for a compiled graph only (plain functions are refused).

    >>> load_graph("graphs/debate.py:graph").name                # doctest: +SKIP
    'debate'
    """
    found = load_target(reference, base=base, configs=configs, functions=False)
    return cast(Pregel[Any, Any, Any, Any], found)


def import_resolver(cache: bool = True) -> Resolver:
    """A worker's default resolver: :func:`load_target`, names included, remembered
    per reference (with ``cache``) so a run does not look its graph up again.

    >>> resolve = import_resolver()
    >>> resolve("json:dumps")({"a": 1})
    '{"a": 1}'
    """

    seen: dict[str, Runnable] = {}  # per reference as written: no lookup per run

    def resolve(reference: str) -> Runnable:
        if cache and reference in seen:
            return seen[reference]
        target = load_target(reference, cache=cache)
        if cache:
            seen[reference] = target
        return target

    return resolve
