"""docs/configuration.md is generated from the settings and must stay in sync."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_configuration_page_matches_the_settings() -> None:
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", ROOT / "scripts" / "gen_config_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render()
    actual = (ROOT / "docs" / "configuration.md").read_text()
    assert actual == expected, "run: python scripts/gen_config_docs.py"
    assert "`DIALOGLLM_REDIS_URL`" in actual and "`DIALOGLLM_LLM_API_KEY`" in actual
