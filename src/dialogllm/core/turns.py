"""Turn-taking policies: who speaks next.

A policy is a function of the dialogue state returning the next speaker's name.
:class:`RoundRobin` cycles through a fixed list (or the personas in state);
:class:`DirectorChooses` reads ``state["next_speaker"]`` written by
:func:`~dialogllm.core.nodes.director_choice_node`. Policies are pure: the same state
always gives the same speaker, so a resumed dialogue continues with the right person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dialogllm.models import Persona

__all__ = ["DirectorChooses", "RoundRobin"]


def _names(state: Mapping[str, Any], fixed: Sequence[str]) -> list[str]:
    if fixed:
        return list(fixed)
    names = []
    for p in state.get("personas") or ():
        names.append(p.name if isinstance(p, Persona) else str(p["name"]))
    if not names:
        raise ValueError("no speakers: pass names or put personas in the state")
    return names


class RoundRobin:
    """Each speaker in turn, continuing after whoever spoke last.

    >>> RoundRobin(["Ada", "Bo"])({"transcript": []})
    'Ada'
    """

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.names = tuple(names)

    def __call__(self, state: Mapping[str, Any]) -> str:
        names = _names(state, self.names)
        for entry in reversed(state.get("transcript") or ()):
            if entry.is_turn and entry.speaker in names:
                return names[(names.index(entry.speaker) + 1) % len(names)]
        return names[0]

    def __repr__(self) -> str:
        return f"RoundRobin({list(self.names)!r})"


class DirectorChooses:
    """The speaker a director chose (``state["next_speaker"]``); round-robin when
    there is no choice yet.

    >>> DirectorChooses(["Ada", "Bo"])({"next_speaker": "Bo"})
    'Bo'
    """

    def __init__(self, names: Sequence[str] = ()) -> None:
        self.fallback = RoundRobin(names)
        self.names = tuple(names)

    def __call__(self, state: Mapping[str, Any]) -> str:
        chosen = state.get("next_speaker")
        if chosen and chosen in _names(state, self.names):
            return str(chosen)
        return self.fallback(state)
