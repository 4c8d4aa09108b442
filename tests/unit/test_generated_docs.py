"""The generated reference pages (configuration, CLI, Python API) must match the code
they are generated from: run the named script when a test here fails."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(script: str, page: str) -> str:
    """The committed page, after asserting it equals what ``script`` renders now."""
    spec = importlib.util.spec_from_file_location(script, ROOT / "scripts" / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actual = (ROOT / "docs" / page).read_text()
    assert actual == module.render(), f"run: python scripts/{script}"
    return actual


def test_configuration_page_matches_the_settings() -> None:
    page = _check("gen_config_docs.py", "configuration.md")
    assert "`DIALOGLLM_REDIS_URL`" in page and "`DIALOGLLM_LLM_API_KEY`" in page


def test_cli_page_matches_the_commands() -> None:
    page = _check("gen_cli_docs.py", "cli.md")
    for command in ("run", "submit", "worker", "status", "dlq retry", "doctor"):
        assert f"## `dialogllm {command}`" in page


def test_api_page_matches_the_public_names() -> None:
    page = _check("gen_api_docs.py", "api.md")
    for name in ("AsyncRedisSaver", "DialogueRunner", "Queue", "ask", "Persona"):
        assert f"### `{name}" in page or f"### `async {name}" in page
