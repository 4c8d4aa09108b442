"""Write docs/configuration.md from the settings classes (the single source).

``python scripts/gen_config_docs.py`` rewrites the page; the test suite fails when the
committed page and the settings disagree (``tests/unit/test_generated_docs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from dialogllm.config import Settings
from dialogllm.core.guards import GuardSettings
from dialogllm.llm.settings import LLMSettings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"

SECTIONS: list[tuple[str, type[BaseSettings], str]] = [
    (
        "Process-wide (`dialogllm.config.Settings`)",
        Settings,
        "Where Redis is, the key prefix, local state and logging.",
    ),
    (
        "LLM layer (`dialogllm.llm.LLMSettings`)",
        LLMSettings,
        "Which model serves each role, how calls are bounded, retried and limited, "
        "how the local model samples, and how replies are repaired.",
    ),
    (
        "Dialogue guards (`dialogllm.core.GuardSettings`)",
        GuardSettings,
        "What a turn or a typed decision may not be, and how often it is asked "
        "again (see docs/dialogues.md, Guards).",
    ),
]

HEADER = """# Configuration reference

Every setting is an environment variable; a `.env` file is not read. Values are
validated when first used: a bad value raises `ConfigError` naming the variable.
Secrets (`DIALOGLLM_LLM_API_KEY`, passwords inside `DIALOGLLM_REDIS_URL`) never appear
in logs, errors or reprs.

This page is generated from the settings classes by `scripts/gen_config_docs.py`.
"""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "(computed)"
    value: Any = field.default
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "unset"
    return f"`{value}`"


def _type(field: FieldInfo) -> str:
    text = str(field.annotation)
    for module in ("typing.", "pathlib.", "pydantic.types.", "dialogllm.llm.settings."):
        text = text.replace(module, "")
    for noise in ("<class '", "'>"):
        text = text.replace(noise, "")
    return text.replace("|", "or").replace("  ", " ")


def render() -> str:
    """The page's full text."""
    parts = [HEADER]
    for title, cls, blurb in SECTIONS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        parts.append(f"\n## {title}\n\n{blurb}\n")
        parts.append(
            "| variable | type | default | meaning |\n| --- | --- | --- | --- |"
        )
        for name, field in cls.model_fields.items():
            var = f"{prefix}{name}".upper()
            meaning = " ".join((field.description or "").split()).replace("|", "\\|")
            parts.append(
                f"| `{var}` | {_type(field)} | {_default(field)} | {meaning} |"
            )
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
