"""docs/cli.md is generated from the command's help and must stay in sync."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_page_matches_the_commands() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_cli_docs", ROOT / "scripts" / "gen_cli_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actual = (ROOT / "docs" / "cli.md").read_text()
    assert actual == module.render(), "run: python scripts/gen_cli_docs.py"
    for command in ("run", "submit", "worker", "status", "dlq retry", "doctor"):
        assert f"## `dialogllm {command}`" in actual
