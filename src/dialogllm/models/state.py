"""The dialogue state: what a dialogue graph's nodes read and write.

:class:`DialogueState` is a ``TypedDict`` for ``StateGraph``; extend it by subclassing.
Its ``transcript`` lives in a LangGraph ``DeltaChannel`` reduced by
:func:`~dialogllm.models.transcript.append_entries`: nodes return only the *new*
entries (``{"transcript": [entry]}``), and each checkpoint stores only those. The rule:
never return the whole transcript from a node, it would be appended again.
"""

from __future__ import annotations

import operator
from typing import Annotated

from langgraph.channels.delta import DeltaChannel
from typing_extensions import TypedDict

from dialogllm.models.persona import Persona
from dialogllm.models.transcript import TranscriptEntry, append_entries

__all__ = ["DialogueState", "TranscriptChannel"]

TranscriptChannel = Annotated[list[TranscriptEntry], DeltaChannel(append_entries)]
"""The annotation of a transcript field: a list of entries in a ``DeltaChannel``."""


class DialogueState(TypedDict, total=False):
    """State shared by the dialogue building blocks.

    - ``transcript``: the entries so far (append-only, see the module docstring);
    - ``topic`` / ``scenario``: what the dialogue is about, shown in prompts;
    - ``personas``: participants whose turns are taken from state (dynamic casts);
    - ``next_speaker``: name set by a turn-taking policy;
    - ``concluded``: set true by a director or judge to end the dialogue;
    - ``stop_reason``: why the dialogue ended, written by the closing node;
    - ``spent_tokens``: tokens of model calls that wrote no transcript entry (the
      director's choice of speaker), added up; :class:`~dialogllm.core.TokenBudget`
      counts them with the entries' own. A counter: a value written to it (by a
      node, or a state update over the API) is added, not set. A graph whose state
      lacks it loses these tokens from the count (LangGraph drops the key).

    >>> from langgraph.graph import StateGraph
    >>> class MyState(DialogueState):
    ...     mood: str
    >>> builder = StateGraph(MyState)
    """

    transcript: TranscriptChannel
    topic: str
    scenario: str
    personas: list[Persona]
    next_speaker: str | None
    concluded: bool
    stop_reason: str | None
    spent_tokens: Annotated[int, operator.add]
