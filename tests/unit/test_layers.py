"""The layer rule of docs/architecture.md: a module imports only from its own layer or
the layers below it (imports inside functions count too; ``TYPE_CHECKING`` imports
do not, they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "dialogllm"

#: Top to bottom, as in the architecture page's table.
LAYERS: list[set[str]] = [
    {"cli"},
    {"server"},
    {"core"},
    {"queue"},
    {"store"},
    {"loader"},
    {"checkpoint"},
    {"leases"},
    {"llm"},
    {"models"},
    {"redis"},
    {"serde"},
    {"backoff", "readability", "loop_bridge", "event_loop"},
    {"config", "logging", "errors"},
]


def _layer(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"dialogllm.{top} is in no layer: add it to LAYERS")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_imports_point_down_the_layers_only() -> None:
    upward: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[0] in ("__init__", "__main__", "py"):
            continue
        own = _layer(parts[0])
        for line, module in _imports(path):
            names = module.split(".")
            if names[0] != "dialogllm" or len(names) < 2:
                continue
            if _layer(names[1]) < own:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert upward == []
