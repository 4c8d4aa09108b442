"""Termination conditions of a dialogue, composable with ``&`` and ``|``.

A condition looks at the dialogue state and returns why the dialogue should stop (a
short reason) or ``None`` to go on. ``MaxTurns(6) | PersonaEnded()`` stops at whichever
comes first; ``TokenBudget(4000) & JudgeDecided()`` only when both hold. Conditions are
pure functions of the state, so a resumed or forked dialogue stops at the same place.
The one exception is :class:`TimeBudget`, which reads the clock (measured from the
first entry of the transcript).

>>> stop = MaxTurns(2) | PersonaEnded()
>>> stop.check({"transcript": []}) is None
True
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dialogllm.models import TranscriptEntry

__all__ = [
    "AllOf",
    "AnyOf",
    "Condition",
    "JudgeDecided",
    "MaxTurns",
    "PersonaEnded",
    "TimeBudget",
    "TokenBudget",
    "stop_or",
]


def _entries(state: Mapping[str, Any]) -> Sequence[TranscriptEntry]:
    return state.get("transcript") or ()


class Condition(ABC):
    """A reason to stop a dialogue; combine with ``&`` (all) and ``|`` (any)."""

    @abstractmethod
    def check(self, state: Mapping[str, Any]) -> str | None:
        """Why the dialogue should stop now, or ``None`` to continue."""

    def __call__(self, state: Mapping[str, Any]) -> str | None:
        return self.check(state)

    def __and__(self, other: Condition) -> AllOf:
        return AllOf(self, other)

    def __or__(self, other: Condition) -> AnyOf:
        return AnyOf(self, other)


class AllOf(Condition):
    """Stop when every condition holds; the reasons are joined with ``and``.

    >>> (MaxTurns(0) & MaxTurns(0)).check({})
    'reached 0 turns and reached 0 turns'
    """

    def __init__(self, *conditions: Condition) -> None:
        self.conditions: tuple[Condition, ...] = tuple(
            c for cond in conditions for c in _flatten(cond, AllOf)
        )

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        reasons = []
        for cond in self.conditions:
            reason = cond.check(state)
            if reason is None:
                return None
            reasons.append(reason)
        return " and ".join(reasons) if reasons else None

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.conditions))


class AnyOf(Condition):
    """Stop when any condition holds; the first reason (in order) wins.

    >>> (MaxTurns(5) | MaxTurns(0)).check({})
    'reached 0 turns'
    """

    def __init__(self, *conditions: Condition) -> None:
        self.conditions: tuple[Condition, ...] = tuple(
            c for cond in conditions for c in _flatten(cond, AnyOf)
        )

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        for cond in self.conditions:
            reason = cond.check(state)
            if reason is not None:
                return reason
        return None

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.conditions)) + ")"


def _flatten(cond: Condition, kind: type[AllOf] | type[AnyOf]) -> tuple[Condition, ...]:
    if isinstance(cond, kind):
        return cond.conditions
    return (cond,)


class MaxTurns(Condition):
    """Stop after ``n`` turns (entries said by personas or people); ``n`` may be a
    function of the state (e.g. ``lambda s: 2 * s["rounds"]``).

    >>> MaxTurns(1).check({"transcript": [TranscriptEntry(speaker="A", text="x")]})
    'reached 1 turns'
    """

    def __init__(self, n: int | Callable[[Mapping[str, Any]], int]) -> None:
        if isinstance(n, int) and n < 0:
            raise ValueError("MaxTurns needs n >= 0")
        self.n = n

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        limit = self.n(state) if callable(self.n) else self.n
        turns = sum(1 for e in _entries(state) if e.is_turn)
        return f"reached {limit} turns" if turns >= limit else None

    def __repr__(self) -> str:
        return f"MaxTurns({self.n})"


class PersonaEnded(Condition):
    """Stop when the last turn asked to end (a reply with ``end: true``), once at
    least ``min_turns`` turns were said (an int, or a function of the state: small
    models set the end flag on their first line). The reason names the speaker of
    that last turn.

    >>> e = TranscriptEntry(speaker="A", text="Bye.", ends_dialogue=True)
    >>> PersonaEnded().check({"transcript": [e]})
    'A ended the dialogue'
    >>> PersonaEnded(min_turns=2).check({"transcript": [e]}) is None
    True
    """

    def __init__(self, min_turns: int | Callable[[Mapping[str, Any]], int] = 0) -> None:
        self.min_turns = min_turns

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        turns = [e for e in _entries(state) if e.is_turn]
        least = self.min_turns(state) if callable(self.min_turns) else self.min_turns
        if turns and turns[-1].ends_dialogue and len(turns) >= least:
            return f"{turns[-1].speaker} ended the dialogue"
        return None

    def __repr__(self) -> str:
        return (
            f"PersonaEnded(min_turns={self.min_turns})"
            if self.min_turns
            else ("PersonaEnded()")
        )


class JudgeDecided(Condition):
    """Stop when a director or judge set ``state[key]`` (default ``concluded``) true.

    >>> JudgeDecided().check({"concluded": True})
    'the judge decided to conclude'
    """

    def __init__(self, key: str = "concluded") -> None:
        self.key = key

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        return "the judge decided to conclude" if state.get(self.key) else None

    def __repr__(self) -> str:
        return f"JudgeDecided({self.key!r})"


class TokenBudget(Condition):
    """Stop once the dialogue spent ``max_tokens`` tokens or more: its transcript
    entries' tokens, plus ``spent_tokens`` (calls that wrote no entry, such as the
    director's choice of speaker).

    >>> e = TranscriptEntry(speaker="A", text="x", completion_tokens=9)
    >>> TokenBudget(8).check({"transcript": [e]})
    'spent 9 of 8 tokens'
    """

    def __init__(self, max_tokens: int) -> None:
        if max_tokens <= 0:
            raise ValueError("TokenBudget needs max_tokens > 0")
        self.max_tokens = max_tokens

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        spent = sum(e.tokens for e in _entries(state))
        spent += int(state.get("spent_tokens") or 0)
        if spent >= self.max_tokens:
            return f"spent {spent} of {self.max_tokens} tokens"
        return None

    def __repr__(self) -> str:
        return f"TokenBudget({self.max_tokens})"


class TimeBudget(Condition):
    """Stop once ``seconds`` of wall time passed since the first transcript entry.

    A dialogue paused for a person counts the pause too; use :class:`MaxTurns` for
    dialogues that may wait days.

    >>> TimeBudget(60).check({"transcript": []}) is None
    True
    """

    def __init__(
        self, seconds: float, *, clock: Callable[[], float] = time.time
    ) -> None:
        if seconds <= 0:
            raise ValueError("TimeBudget needs seconds > 0")
        self.seconds = seconds
        self.clock = clock

    def check(self, state: Mapping[str, Any]) -> str | None:
        """The reason to stop, or ``None`` (see the class docstring)."""
        entries = _entries(state)
        if not entries:
            return None
        elapsed = self.clock() - entries[0].started_at.timestamp()
        if elapsed >= self.seconds:
            return f"ran {elapsed:.1f}s of a {self.seconds:g}s budget"
        return None

    def __repr__(self) -> str:
        return f"TimeBudget({self.seconds:g})"


def stop_or(
    until: Condition | Callable[[Mapping[str, Any]], str | None],
    next_node: str | Callable[[Any], str],
    *,
    end: str,
) -> Callable[[Any], str]:
    """A conditional-edge function: go to ``end`` when ``until`` fires, else to
    ``next_node`` (a node name, or a function of the state returning one).

    >>> route = stop_or(MaxTurns(4), "speak", end="conclude")
    >>> route({"transcript": []})
    'speak'
    """

    def route(state: Any) -> str:
        if until(state) is not None:
            return end
        return next_node(state) if callable(next_node) else next_node

    return route
