"""The package's own metadata: one version, from pyproject.toml."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import dialogllm

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_comes_from_the_package_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert dialogllm.__version__ == version("dialogllm") == project["version"]
