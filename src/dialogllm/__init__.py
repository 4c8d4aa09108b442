"""DialogueLLM: dialogues between LLMs and people as LangGraph state machines.

Every dialogue step is checkpointed in Redis (:mod:`dialogllm.checkpoint`), so any
dialogue can be inspected, forked, interrupted for a person and resumed, also after a
crash on another machine.

``__version__`` is read from the installed package's metadata, whose one source is
``pyproject.toml``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from dialogllm.errors import DialogueLLMError

__all__ = ["DialogueLLMError", "__version__"]

try:
    __version__ = version("dialogllm")
except PackageNotFoundError:  # pragma: no cover - run from a checkout, not installed
    __version__ = "0+unknown"
