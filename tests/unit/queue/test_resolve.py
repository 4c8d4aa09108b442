"""Resolving graph references by import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.pregel import Pregel

from dialogllm.errors import GraphNotFoundError
from dialogllm.queue import import_resolver, load_target

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
        ("no-colon", "must look like"),
        (":attr", "must look like"),
        ("missing/file.py:graph", "does not exist"),
        ("no_such_module_abc:graph", "importing"),
        ("json:nothing_here", "has no attribute"),
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
        with pytest.raises(GraphNotFoundError, match="boom"):
            load_target(f"{broken}:graph")


def test_the_default_resolver_caches_by_reference(graph_file: Path) -> None:
    resolve = import_resolver()
    assert resolve(f"{graph_file}:graph") is resolve(f"{graph_file}:graph")
    fresh = import_resolver(cache=False)
    assert fresh(f"{graph_file}:builder") is not fresh(f"{graph_file}:builder")
