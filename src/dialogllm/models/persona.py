"""Personas: who speaks in a dialogue, and how.

A :class:`Persona` is plain data (no I/O): a name, a role, goals and a style that the
prompt builders in :mod:`dialogllm.core` turn into text. The one rule: ``name`` is what
appears before the colon in a transcript, so it is short, single-line and unique within
a dialogue.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Persona"]


class Persona(BaseModel):
    """One participant of a dialogue.

    ``model`` optionally names the LLM role or model to use for this persona (passed
    to :func:`dialogllm.llm.get_chat_model` as ``role``); ``None`` uses the default.

    >>> p = Persona(name="Ada", role="mathematician", goals=["explain engines"])
    >>> p.describe()
    'Ada, mathematician. Goals: explain engines.'
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=40, description="Speaker label.")
    role: str = Field(default="", max_length=200, description="Who they are.")
    goals: tuple[str, ...] = Field(default=(), max_length=8)
    style: str = Field(default="", max_length=200, description="How they speak.")
    model: str | None = Field(
        default=None, max_length=100, description="LLM role/model override."
    )

    @field_validator("name")
    @classmethod
    def _single_line(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n:"):
            raise ValueError("must be one line without ':'")
        return value

    def describe(self) -> str:
        """One line describing the persona, as prompts show it."""
        parts = [self.name + (f", {self.role}" if self.role else "") + "."]
        if self.goals:
            parts.append("Goals: " + "; ".join(self.goals) + ".")
        if self.style:
            parts.append(f"Style: {self.style}.")
        return " ".join(parts)
