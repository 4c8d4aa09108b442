"""docs/api.md is generated from the packages' ``__all__`` and must stay in sync."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_page_matches_the_public_names() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_api_docs", ROOT / "scripts" / "gen_api_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actual = (ROOT / "docs" / "api.md").read_text()
    assert actual == module.render(), "run: python scripts/gen_api_docs.py"
    for name in ("AsyncRedisSaver", "DialogueRunner", "Queue", "ask", "Persona"):
        assert f"### `{name}" in actual or f"### `async {name}" in actual
