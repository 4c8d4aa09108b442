"""DialogueLLM: dialogues between LLMs and people as LangGraph state machines.

Every dialogue step is checkpointed in Redis (:mod:`dialogllm.checkpoint`), so any
dialogue can be inspected, forked, interrupted for a person and resumed, also after a
crash on another machine.
"""

from __future__ import annotations

from dialogllm.errors import DialogueLLMError

__all__ = ["DialogueLLMError", "__version__"]

__version__ = "0.1.0"
