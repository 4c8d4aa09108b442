"""Graph references: names, file.py:attr, package.module:attr, and clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.pregel import Pregel

from dialogllm.core import GraphRegistry, resolve_graph
from dialogllm.errors import GraphNotFoundError
from dialogllm.models import DialogueState

ROOT = Path(__file__).resolve().parents[3]

GRAPH_FILE = """
from langgraph.graph import START, END, StateGraph
from dialogllm.models import DialogueState

def _noop(state):
    return {}

builder = StateGraph(DialogueState)
builder.add_node("noop", _noop)
builder.add_edge(START, "noop")
builder.add_edge("noop", END)
compiled = builder.compile(name="tiny")
unnamed = builder.compile()

def factory():
    return builder

def needs_args(x):
    return builder

not_a_graph = 42
"""


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_graph.py"
    path.write_text(GRAPH_FILE)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    return path


def _registry(*configs: Path) -> GraphRegistry:
    return GraphRegistry(search=lambda: iter(configs))


def test_file_references_resolve_compiled_builders_and_factories(
    graph_file: Path,
) -> None:
    reg = _registry()
    found = reg.resolve(f"{graph_file}:compiled")
    assert isinstance(found.graph, Pregel)
    assert (found.name, found.ref) == ("tiny", f"{graph_file}:compiled")
    assert reg.resolve(f"{graph_file}:builder").graph.name == "LangGraph"
    assert reg.resolve(f"{graph_file}:unnamed").name == "unnamed"
    assert isinstance(reg.resolve(f"{graph_file}:factory").graph, Pregel)
    # loading the same file twice reuses the module
    assert reg.resolve(f"{graph_file}:compiled").graph is found.graph


def test_relative_file_references_resolve_from_the_working_directory(
    graph_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(graph_file.parent)
    found = _registry().resolve("tiny_graph.py:compiled")
    assert found.ref == f"{graph_file}:compiled"


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ("not_a_graph", "is a int, not a LangGraph graph"),
        ("needs_args", "needs arguments"),
        ("missing", "has no attribute"),
        ("", "must look like 'path/to/file.py:attr'"),
    ],
)
def test_attributes_that_are_not_graphs_are_refused(
    graph_file: Path, attr: str, message: str
) -> None:
    with pytest.raises(GraphNotFoundError, match=message):
        _registry().resolve(f"{graph_file}:{attr}")


def test_missing_or_broken_files_and_modules_are_refused(graph_file: Path) -> None:
    reg = _registry()
    with pytest.raises(GraphNotFoundError, match=r"nope\.py does not exist"):
        reg.resolve(f"{graph_file.parent}/nope.py:graph")
    with pytest.raises(GraphNotFoundError, match=r"broken.py .*failed: RuntimeError"):
        reg.resolve(f"{graph_file.parent}/broken.py:graph")
    with pytest.raises(GraphNotFoundError, match="importing module 'no_such_package"):
        reg.resolve("no_such_package_xyz.graphs:graph")
    with pytest.raises(GraphNotFoundError, match="empty"):
        reg.resolve("  ")


def test_module_references_import_packages(
    graph_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(graph_file.parent))
    found = _registry().resolve("tiny_graph:compiled")
    assert (found.name, found.ref) == ("tiny", "tiny_graph:compiled")
    sys.modules.pop("tiny_graph", None)


def test_names_come_from_langgraph_json_and_registrations(
    graph_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {
                    "tiny": "./tiny_graph.py:compiled",
                    "other": {"path": "./tiny_graph.py:factory"},
                    "skipped": 3,
                }
            }
        )
    )
    reg = _registry(config)
    found = reg.resolve("tiny")
    assert (found.name, found.ref) == ("tiny", f"{graph_file}:compiled")
    reg.register("alias", "tiny")
    assert reg.resolve("alias").ref == f"{graph_file}:compiled"
    builder = StateGraph(DialogueState)
    builder.add_node("n", lambda s: {})
    builder.add_edge(START, "n")
    builder.add_edge("n", END)
    reg.register("obj", builder)
    assert isinstance(reg.resolve("obj").graph, Pregel)
    assert reg.names() == {
        "alias": "tiny",
        "obj": "<obj>",
        "other": "./tiny_graph.py:factory",
        "tiny": "./tiny_graph.py:compiled",
    }
    with pytest.raises(GraphNotFoundError, match="known names: alias, obj, other"):
        reg.resolve("nope")
    with pytest.raises(ValueError):
        reg.register("a:b", "x")


def test_unreadable_or_odd_langgraph_json(tmp_path: Path) -> None:
    bad = tmp_path / "langgraph.json"
    bad.write_text("{not json")
    with pytest.raises(GraphNotFoundError, match="cannot read"):
        _registry(bad).resolve("x")
    bad.write_text("[]")
    assert _registry(bad).names() == {}


def test_the_shipped_graphs_resolve_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name in ("directed_dialogue", "debate", "interview"):
        found = resolve_graph(name)
        assert found.name == name
        assert found.ref == f"{ROOT / 'graphs' / name}.py:graph"
    compiled = resolve_graph("debate").graph
    assert resolve_graph(compiled).graph is compiled
