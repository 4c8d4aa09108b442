"""The commands README.md and docs/cli.md show a reader, parsed out of the pages.

The tests in this folder run each of them and check its output against what the page
says; a test asserts that every command parsed here has such a check, so a command
added to the docs without a test fails the suite.

README.md: every line of a ``bash`` block and every ``$ `` line of a ``text`` block
(a trailing ``# comment`` dropped; ``# or: status --check`` is a command too), and
every inline code span that starts with ``scripts/``, ``dialogllm`` or
``.venv/bin/dialogllm``. docs/cli.md: every ``Example:`` of a command's help (and the
``cron/probe:`` alternative). ``.venv/bin/dialogllm`` is written ``dialogllm``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
_INLINE = re.compile(r"`((?:scripts/|dialogllm |\.venv/bin/dialogllm )[^`]+)`")
_OR = re.compile(r"#\s*or:\s*(.+)$")


def _normal(command: str) -> str:
    command = " ".join(command.split())
    return re.sub(r"^\.venv/bin/dialogllm\b", "dialogllm", command)


def readme_commands(text: str | None = None) -> list[str]:
    """The README's commands, in the order it shows them, each once."""
    text = (ROOT / "README.md").read_text() if text is None else text
    found: list[str] = []
    prose = _FENCE.sub("", text)
    for lang, body in _FENCE.findall(text):
        if lang not in ("bash", "text", "sh", "console"):
            continue
        for line in body.splitlines():
            if lang == "text":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            command, _, comment = line.partition("#")
            if command.strip():
                found.append(_normal(command))
            alternative = _OR.search("#" + comment) if comment else None
            if alternative:  # "# or: status --check (cron)"
                words = re.sub(r"\(.*?\)", "", alternative.group(1)).strip()
                found.append(_normal(f"dialogllm {words}"))
    found += [_normal(m) for m in _INLINE.findall(prose)]
    return list(dict.fromkeys(found))


def cli_doc_commands(text: str | None = None) -> list[str]:
    """docs/cli.md's examples, in the order it shows them, each once."""
    text = (ROOT / "docs" / "cli.md").read_text() if text is None else text
    found: list[str] = []
    for example in re.findall(r"Example: (.+)$", text, re.M):
        main, _, probe = example.partition("(cron/probe:")
        found.append(_normal(main))
        if probe:
            found.append(_normal(probe.rstrip(") ")))
    return list(dict.fromkeys(found))


def readme_excerpt(text: str | None = None) -> list[str]:
    """The output the README shows under its first ``$ `` command, line by line."""
    text = (ROOT / "README.md").read_text() if text is None else text
    for lang, body in _FENCE.findall(text):
        lines = body.splitlines()
        if lang == "text" and lines and lines[0].startswith("$ "):
            return lines[1:]
    raise AssertionError("README.md shows no command output")
