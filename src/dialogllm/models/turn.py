"""Typed replies: the schemas an LLM answers with in a dialogue.

:class:`Turn` is the default reply of a persona; :class:`SpeakerChoice` is what a
director answers when it picks the next speaker. Keep reply schemas small: a small
local model fills a few short fields reliably, not a deep tree.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HumanRequest", "SpeakerChoice", "Turn"]

Intent = Literal["statement", "question", "answer", "agree", "disagree", "close"]


class Turn(BaseModel):
    """The default reply schema of a persona.

    ``end`` set to true asks to end the dialogue (see
    :class:`dialogllm.core.PersonaEnded`).

    >>> Turn(message="Hello there.").intent
    'statement'
    """

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    message: str = Field(min_length=1, max_length=2000, description="What is said.")
    intent: Intent = Field(default="statement", description="Kind of utterance.")
    end: bool = Field(default=False, description="True to end the conversation.")


class SpeakerChoice(BaseModel):
    """A director's choice of who speaks next.

    >>> SpeakerChoice(next_speaker="Ada").next_speaker
    'Ada'
    """

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)

    next_speaker: str = Field(min_length=1, max_length=40)


class HumanRequest(BaseModel):
    """What a human participant node surfaces with ``interrupt()``.

    The runner checks a resume value with :meth:`check_answer` before anything is
    written, so a wrong answer type is refused instead of breaking the thread.

    >>> req = HumanRequest(speaker="Candidate", prompt="Why Redis?", asked_by="Host")
    >>> req.check_answer("  Because streams.  ")
    'Because streams.'
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["human_turn"] = "human_turn"
    speaker: str = Field(min_length=1, max_length=40)
    prompt: str = ""
    asked_by: str | None = None
    choices: tuple[str, ...] = ()
    max_chars: int = Field(default=2000, gt=0)

    def check_answer(self, value: object) -> str:
        """Return the answer as clean text, or raise ``ValueError`` saying why not."""
        if not isinstance(value, str):
            raise ValueError(
                f"{self.speaker}'s answer must be text, got {type(value).__name__}"
            )
        text = value.strip()
        if not text:
            raise ValueError(f"{self.speaker}'s answer is empty")
        if len(text) > self.max_chars:
            raise ValueError(
                f"{self.speaker}'s answer has {len(text)} characters "
                f"(at most {self.max_chars})"
            )
        if self.choices and text not in self.choices:
            raise ValueError(f"answer must be one of: {', '.join(self.choices)}")
        return text
