"""Dialogue guards: what a turn or a typed decision must not be, and what to do.

This module owns the guards' settings (:class:`GuardSettings`, environment prefix
``DIALOGLLM_GUARD_``) and their checks, on by default:

* **echo / loop / junk** (:func:`turn_problems`): a turn that echoes an earlier
  turn, loops or is junk (the definitions of :mod:`dialogllm.readability`, the
  quality benchmark's) is asked again with the repeated text named as what not
  to say and stronger repetition penalties (:attr:`GuardSettings.reask_sampling`), up to
  ``reask_budget`` times; then the turn is kept with a flag on its entry;
* **off side**: a node may add its own check (a debate side arguing the other side),
  asked again ``side_budget`` times;
* **grounded**: :func:`grounded` tells whether a typed note quotes or points at a
  turn; :func:`junk_problems` rejects placeholder and junk text;
* **persona end**: ``persona_end_min_turns`` (unset: the requested turns) is how
  soon a persona may end a dialogue.

The nodes of :mod:`dialogllm.core.nodes` run the re-ask loops and count every re-ask
in the LLM metrics (``dialogllm_llm_guard_reasks_total``). The rule: a guard never
drops a turn or fails a dialogue; once its budget is spent it keeps the best reply
and says so in ``TranscriptEntry.flags``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Final

from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogllm.config import load_settings
from dialogllm.models import TranscriptEntry
from dialogllm.readability import (
    echoed_text,
    is_junk,
    looped_phrase,
    strip_special_tokens,
    trigrams,
    words,
)

__all__ = [
    "GuardSettings",
    "Problem",
    "Sentence",
    "clean_sentence",
    "get_guard_settings",
    "grounded",
    "junk_problems",
    "turn_problems",
    "with_avoidance",
]


#: How many times a guard may ask again (0 switches the re-ask off).
ReaskBudget = Annotated[int, Field(ge=0, le=10)]

#: The repetition controls of a re-ask, by default (stronger than a turn's own).
REASK_SAMPLING: Final = {
    "repeat_penalty": 1.3,
    "presence_penalty": 0.8,
    "frequency_penalty": 0.8,
    "dry_multiplier": 1.5,
}


class GuardSettings(BaseSettings):
    """Settings of the dialogue guards (``DIALOGLLM_GUARD_<NAME>``).

    >>> GuardSettings().reask_budget
    2
    """

    model_config = SettingsConfigDict(
        env_prefix="DIALOGLLM_GUARD_",
        extra="ignore",
        frozen=True,
        use_attribute_docstrings=True,  # each field's docstring is its description
    )

    echo: bool = True
    """Ask again a turn that echoes an earlier turn."""
    loop: bool = True
    """Ask again a turn that repeats its own phrase."""
    junk: bool = True
    """Ask again a turn that is junk (digits, placeholders, no words)."""
    reask_budget: ReaskBudget = 2
    """Re-asks of an echoing or looping turn."""
    side_budget: ReaskBudget = 1
    """Re-asks of a turn a node's own check refuses (debate sides)."""
    decision_budget: ReaskBudget = 1
    """Re-asks of a typed decision (cast, verdict, analysis) that is empty, junk or
    not grounded in the transcript, before its defaults."""
    reask_sampling: dict[str, float] = Field(
        default_factory=lambda: dict(REASK_SAMPLING)
    )
    """Repetition controls of a re-ask (JSON; llama.cpp's own only reach the local
    model)."""
    cast_check: bool = True
    """Check a director's cast: exact size, distinct first names, roles tied to the
    topic (asked again, then defaults)."""
    director_min_rounds: int = Field(default=2, ge=0)
    """Rounds (every persona spoke once) before a director's review may conclude a
    directed dialogue early."""
    persona_end_min_turns: int | None = Field(default=None, ge=0)
    """Turns before a persona may end a directed dialogue (unset: the requested
    turns; the director may still conclude)."""


@lru_cache(maxsize=1)
def _cached() -> GuardSettings:
    return load_settings(GuardSettings, "guard settings")


def get_guard_settings(*, reload: bool = False) -> GuardSettings:
    """The guard settings, read from the environment on first use.

    >>> get_guard_settings().echo
    True
    """
    if reload:
        _cached.cache_clear()
    return _cached()


@dataclass(frozen=True)
class Problem:
    """What a guard found: its name (``echo``, ``loop``, ``off_side``, ...), the text
    the model must not say again (may be empty), and a note for the re-ask."""

    guard: str
    avoid: str
    note: str


def turn_problems(
    text: str, earlier: Sequence[str], settings: GuardSettings
) -> list[Problem]:
    """The echo and loop problems of a turn ``text`` said after ``earlier`` turns.

    >>> s = GuardSettings()
    >>> [p.guard for p in turn_problems("Cars must go.", ["Cars must go now."], s)]
    ['echo']
    """
    found: list[Problem] = []
    if settings.echo:
        copied = echoed_text(text, earlier)
        if copied is not None:
            found.append(Problem("echo", copied, "it repeats an earlier line"))
    if settings.junk and is_junk(text):
        found.append(Problem("junk", text, "it is not a sentence"))
    if settings.loop:
        phrase = looped_phrase(text)
        if phrase is not None:
            found.append(Problem("loop", phrase, "it says the same words over"))
    return found


def with_avoidance(
    messages: Sequence[BaseMessage], speaker: str, problems: Sequence[Problem]
) -> list[BaseMessage]:
    """``messages`` with a stage direction before ``speaker``'s cue naming what not
    to say (the last message, when it ends with the cue; else a message of its own).

    >>> msgs = with_avoidance(
    ...     [HumanMessage("Ada: Tea.\\nBo:")], "Bo", [Problem("echo", "Tea.", "")]
    ... )
    >>> print(msgs[-1].content)
    Ada: Tea.
    (Bo does not repeat "Tea." and says something new, in other words.)
    Bo:
    """
    quoted = [" ".join(p.avoid.split())[:200] for p in problems if p.avoid.strip()]
    notes = [p.note for p in problems if not p.avoid.strip() and p.note]
    parts = [f'does not repeat "{q}"' for q in quoted] + notes
    direction = f"({speaker} {' and '.join(parts) or 'tries again'}"
    direction += " and says something new, in other words.)" if quoted else ".)"
    out = list(messages)
    cue = f"{speaker}:"
    last = out[-1] if out else None
    if isinstance(last, HumanMessage) and str(last.content).endswith(cue):
        body = str(last.content)[: -len(cue)]
        out[-1] = HumanMessage(content=f"{body}{direction}\n{cue}")
    else:
        out.append(HumanMessage(content=f"{direction}\n{cue}"))
    return out


_TURN_REF = re.compile(r"\bturn\s*#?\s*(\d+)\b", re.I)


def grounded(note: str, turns: Sequence[TranscriptEntry]) -> bool:
    """Whether ``note`` quotes a turn (shares a word trigram with it), names one of
    its speakers, or points at it (``turn 3``, counting turns from 1).

    >>> t = [TranscriptEntry(speaker="Ana", text="Trains are faster than buses.")]
    >>> grounded("Ana says trains win", t), grounded("trains are faster", t)
    (True, True)
    >>> grounded("A fair point overall", t)
    False
    """
    mine = set(trigrams(note))
    if any(mine & set(trigrams(t.text)) for t in turns):
        return True
    own = set(words(note))
    if any(set(words(t.speaker)) <= own for t in turns if words(t.speaker)):
        return True
    return any(1 <= int(m.group(1)) <= len(turns) for m in _TURN_REF.finditer(note))


def junk_problems(texts: Sequence[str]) -> list[str]:
    """A problem line for each junk text (placeholders such as ``reason_116``,
    digits only, special tokens, no words).

    >>> junk_problems(["reason_116", "Trains win."])
    ['"reason_116" is not a sentence']
    """
    return [f'"{t[:60]}" is not a sentence' for t in texts if is_junk(t)]


def clean_sentence(text: str) -> str:
    """``text`` without special tokens; raises ``ValueError`` (a validation error in
    a schema) when what is left is junk: a placeholder such as ``reason_116``,
    digits only, or no word.

    >>> clean_sentence("<eos>Trains win.")
    'Trains win.'
    """
    cleaned = strip_special_tokens(text)
    if is_junk(cleaned):
        raise ValueError(
            f"{cleaned[:40]!r} is not a sentence: write words about the dialogue"
        )
    return cleaned


Sentence = Annotated[str, AfterValidator(clean_sentence)]
"""A schema field holding prose: special tokens stripped, junk refused (so the
model is asked again with the reason)."""
