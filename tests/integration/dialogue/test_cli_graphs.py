"""``dialogllm graphs``: one user graph whose input schema cannot be built (a
``typing.TypedDict`` state on Python 3.11) is reported, and the others still list."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DIALOGLLM = str(Path(sys.executable).with_name("dialogllm"))

GRAPH = """
from {module} import TypedDict
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    topic: str


builder = StateGraph(State)
builder.add_node("n", lambda state: {{}})
builder.add_edge(START, "n")
builder.add_edge("n", END)
graph = builder.compile()
"""


def test_one_bad_graph_does_not_hide_the_others(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(GRAPH.format(module="typing_extensions"))
    (tmp_path / "bad.py").write_text(GRAPH.format(module="typing"))
    (tmp_path / "langgraph.json").write_text(
        json.dumps({"graphs": {"bad": "./bad.py:graph", "good": "./good.py:graph"}})
    )
    text = subprocess.run(
        [DIALOGLLM, "graphs"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert text.returncode == 0, text.stderr
    assert "Traceback" not in text.stdout + text.stderr
    assert "good  ./good.py:graph\n    topic: string" in text.stdout
    assert "debate" in text.stdout  # the shipped graphs are still listed
    if sys.version_info < (3, 12):
        assert "bad  ./bad.py:graph\n    cannot load: PydanticUserError" in text.stdout

    listed = subprocess.run(
        [DIALOGLLM, "graphs", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    by_name = {g["name"]: g for g in json.loads(listed.stdout)}
    assert by_name["good"]["input_schema"]["properties"]["topic"]["type"] == "string"
    if sys.version_info < (3, 12):
        assert "TypedDict" in by_name["bad"]["input_schema"]["error"]
