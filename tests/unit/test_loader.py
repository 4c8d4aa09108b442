"""Loading graph references: names, files, modules; once per process; clear errors."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from langgraph.pregel import Pregel

from dialogllm.core import GraphRegistry, resolve_graph
from dialogllm.errors import GraphNotFoundError
from dialogllm.loader import import_resolver, load_graph, load_target

ROOT = Path(__file__).resolve().parents[2]

GRAPH_FILE = """
from typing import TypedDict
from langgraph.graph import START, StateGraph

class S(TypedDict):
    n: int

builder = StateGraph(S)
builder.add_node("one", lambda s: {"n": s["n"] + 1})
builder.add_edge(START, "one")
graph = builder.compile()

def factory():
    return builder

def bad_factory():
    return 42

async def handler(payload):
    return payload

not_callable = 3
"""


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_graphs.py"
    path.write_text(GRAPH_FILE)
    return path


def test_a_file_reference_resolves_graphs_builders_factories_and_functions(
    graph_file: Path,
) -> None:
    assert isinstance(load_target(f"{graph_file}:graph"), Pregel)
    assert isinstance(load_target(f"{graph_file}:builder"), Pregel)
    assert isinstance(load_target(f"{graph_file}:factory"), Pregel)
    assert callable(load_target(f"{graph_file}:handler"))


def test_a_module_reference_resolves() -> None:
    assert load_target("json:dumps") is json.dumps


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("no-colon", "unknown graph 'no-colon'"),
        (":attr", "must look like"),
        ("missing/file.py:graph", r"graph 'graph'.*missing/file.py does not exist"),
        ("no_such_module_abc:graph", "importing module 'no_such_module_abc'"),
        ("json:nothing_here", "module 'json' has no attribute 'nothing_here'"),
    ],
)
def test_bad_references_raise_graph_not_found(reference: str, message: str) -> None:
    with pytest.raises(GraphNotFoundError, match=message):
        load_target(reference)


def test_targets_that_are_not_graphs_raise(graph_file: Path) -> None:
    with pytest.raises(GraphNotFoundError, match="not a LangGraph graph"):
        load_target(f"{graph_file}:bad_factory")
    with pytest.raises(GraphNotFoundError, match="not a graph or a function"):
        load_target(f"{graph_file}:not_callable")


def test_a_file_that_fails_to_import_raises_and_is_not_cached(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    for _ in range(2):
        with pytest.raises(GraphNotFoundError) as caught:
            load_target(f"{broken}:graph")
        message = str(caught.value)
        assert str(broken) in message and "'graph'" in message
        assert "RuntimeError: boom" in message


def test_the_default_resolver_caches_by_reference(graph_file: Path) -> None:
    resolve = import_resolver()
    assert resolve(f"{graph_file}:graph") is resolve(f"{graph_file}:graph")
    fresh = import_resolver(cache=False)
    assert fresh(f"{graph_file}:builder") is not fresh(f"{graph_file}:builder")


def test_a_syntax_error_names_the_file_the_attribute_and_the_cause(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "typo.py"
    broken.write_text("graph = (\n")
    with pytest.raises(GraphNotFoundError) as caught:
        load_graph(f"{broken}:graph")
    message = str(caught.value)
    assert f"graph file {broken}" in message and "'graph'" in message
    assert "SyntaxError" in message
    assert isinstance(caught.value.__cause__, SyntaxError)


def test_plain_functions_are_refused_where_a_graph_is_needed(graph_file: Path) -> None:
    with pytest.raises(GraphNotFoundError, match="needs arguments"):
        load_graph(f"{graph_file}:handler")


def _modules_from(path: Path) -> list[str]:
    return [
        name
        for name, module in list(sys.modules.items())
        if getattr(module, "__file__", None) == str(path)
    ]


def test_the_cli_and_the_worker_get_the_same_debate_graph_from_one_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    debate = ROOT / "graphs" / "debate.py"
    # the CLI (`dialogllm run`), the CLI's worker, and `python -m dialogllm.queue`
    cli = resolve_graph("graphs/debate.py:graph").graph
    cli_worker = resolve_graph(f"{debate}:graph").graph
    queue_worker = import_resolver()("graphs/debate.py:graph")
    by_name = import_resolver()("debate")
    assert cli is cli_worker is queue_worker is by_name
    assert cli is GraphRegistry().resolve("debate").graph
    assert len(_modules_from(debate)) == 1


def test_a_file_imported_as_a_module_is_not_executed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "once_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "graphs.py").write_text(
        GRAPH_FILE + "\nimport os\nos.environ['ONCE_PKG_RUNS'] += 'x'\n"
    )
    monkeypatch.setenv("ONCE_PKG_RUNS", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        by_module = load_target("once_pkg.graphs:graph")
        by_file = load_target(f"{package / 'graphs.py'}:graph")
        assert by_module is by_file
        assert os.environ["ONCE_PKG_RUNS"] == "x"
    finally:
        sys.modules.pop("once_pkg.graphs", None)
        sys.modules.pop("once_pkg", None)


def test_langgraph_json_dependencies_and_env_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "lib").mkdir(parents=True)
    (project / "lib" / "loader_dep_helper.py").write_text("GREETING = 'hi'\n")
    (project / "agent.py").write_text(
        GRAPH_FILE.replace("not_callable = 3", "")
        + "\nimport os\nfrom loader_dep_helper import GREETING\n"
        "SEEN = (GREETING, os.environ['LOADER_FROM_FILE'], "
        "os.environ['LOADER_ALREADY_SET'])\n"
    )
    (project / ".env").write_text(
        "LOADER_FROM_FILE=from-dotenv\nLOADER_ALREADY_SET=from-dotenv\n"
    )
    (project / "langgraph.json").write_text(
        json.dumps(
            {
                "dependencies": ["./lib", "some-pypi-package"],
                "graphs": {"agent": "./agent.py:graph"},
                "env": ".env",
            }
        )
    )
    monkeypatch.setenv("LOADER_ALREADY_SET", "from-shell")
    monkeypatch.delenv("LOADER_FROM_FILE", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(project)
    try:
        graph = import_resolver()("agent")
        assert isinstance(graph, Pregel)
        assert graph is load_graph(f"{project / 'agent.py'}:graph")
        module = sys.modules[
            next(iter(_modules_from((project / "agent.py").resolve())))
        ]
        assert module.SEEN == ("hi", "from-dotenv", "from-shell")
        assert str(project / "lib") in sys.path
    finally:
        sys.modules.pop("loader_dep_helper", None)


def test_langgraph_json_env_may_be_a_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "g.py").write_text(GRAPH_FILE)
    (tmp_path / "langgraph.json").write_text(
        json.dumps(
            {
                "graphs": {"g": {"path": "./g.py:graph"}},
                "env": {"LOADER_MAPPED": "mapped", "LOADER_KEPT": "theirs"},
            }
        )
    )
    monkeypatch.delenv("LOADER_MAPPED", raising=False)
    monkeypatch.setenv("LOADER_KEPT", "mine")
    configs = [tmp_path / "langgraph.json"]
    assert isinstance(load_target("g", configs=configs), Pregel)
    assert os.environ["LOADER_MAPPED"] == "mapped"
    assert os.environ["LOADER_KEPT"] == "mine"
    monkeypatch.delenv("LOADER_MAPPED")


def test_a_missing_env_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "g.py").write_text(GRAPH_FILE)
    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"g": "./g.py:graph"}, "env": ".nope"}))
    with pytest.raises(GraphNotFoundError, match=r"env file .*\.nope does not exist"):
        load_target("g", configs=[config])
