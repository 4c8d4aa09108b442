"""Transcripts: the ordered record of who said what in a dialogue.

A :class:`TranscriptEntry` is one utterance (speaker, text, the typed reply it came
from, tokens, latency, timestamps). In a graph's state the transcript is a list of
entries kept in a LangGraph ``DeltaChannel`` whose reducer is :func:`append_entries`,
so a checkpoint stores each new turn once instead of the whole list again. The rule a
reader must not break: :func:`append_entries` is deterministic and batching-invariant
(``f(f(s, xs), ys) == f(s, xs + ys)``) — LangGraph replays stored writes in batches of
any size.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EntryKind", "Transcript", "TranscriptEntry", "append_entries"]

EntryKind = Literal["persona", "human", "director", "judge", "analyst", "system"]
_TURN_KINDS: frozenset[str] = frozenset({"persona", "human"})


def _now() -> datetime:
    return datetime.now(UTC)


class TranscriptEntry(BaseModel):
    """One utterance of a dialogue.

        ``index`` is the entry's position in the transcript; :func:`append_entries` sets
        it, so a node leaves it at ``-1``. ``reply`` holds the validated typed reply (as
        JSON data) the text came from, ``reply_schema`` its class name. ``flags`` name
    what a dialogue guard found wrong and kept (or repaired), ``reasks`` how often it
    asked again.

        >>> e = TranscriptEntry(speaker="Ada", text="Engines can weave algebra.")
        >>> e.is_turn, e.tokens
        (True, 0)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    index: int = -1
    speaker: str = Field(min_length=1, max_length=80)
    kind: EntryKind = "persona"
    text: str
    reply: dict[str, Any] | None = None
    reply_schema: str | None = None
    ends_dialogue: bool = False
    flags: tuple[str, ...] = Field(
        default=(),
        description=(
            "Defects a guard found and could not fix within its budget (echo, loop, "
            "off_side, ungrounded, ...), or repairs it made (defaults)."
        ),
    )
    reasks: int = Field(default=0, ge=0, description="Times a guard asked again.")
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    latency_s: float = Field(default=0.0, ge=0)
    model: str | None = None
    started_at: datetime = Field(default_factory=_now)
    ended_at: datetime = Field(default_factory=_now)

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens spent on this entry."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def is_turn(self) -> bool:
        """True for what participants said (personas, people), not for a director's
        or judge's notes."""
        return self.kind in _TURN_KINDS


def append_entries(
    state: Sequence[TranscriptEntry] | None,
    writes: Sequence[TranscriptEntry | Sequence[TranscriptEntry] | None],
) -> list[TranscriptEntry]:
    """The transcript channel's reducer: append the entries of every write in order.

    Each write is one entry, a list of entries, or ``None``. Entries get their
    ``index`` (position in the transcript). Batching-invariant, as ``DeltaChannel``
    requires:

    >>> a = TranscriptEntry(speaker="A", text="1")
    >>> b = TranscriptEntry(speaker="B", text="2")
    >>> [e.index for e in append_entries(append_entries([], [a]), [[b]])]
    [0, 1]
    >>> append_entries(append_entries([], [a]), [[b]]) == append_entries([], [a, [b]])
    True
    """
    out = list(state or ())
    for write in writes:
        if write is None:
            continue
        batch: Iterable[TranscriptEntry] = (
            (write,) if isinstance(write, TranscriptEntry) else write
        )
        for entry in batch:
            if not isinstance(entry, TranscriptEntry):
                entry = TranscriptEntry.model_validate(entry)
            if entry.index != len(out):
                entry = entry.model_copy(update={"index": len(out)})
            out.append(entry)
    return out


class Transcript(BaseModel):
    """A finished (or paused) dialogue's transcript, ready to export.

    >>> entry = TranscriptEntry(speaker="A", text="Hi")
    >>> t = Transcript(thread_id="t-1", entries=[entry])
    >>> print(t.to_markdown().splitlines()[-1])
    **A:** Hi
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    thread_id: str | None = None
    graph: str | None = None
    title: str | None = None
    entries: tuple[TranscriptEntry, ...] = ()

    @property
    def turns(self) -> tuple[TranscriptEntry, ...]:
        """The entries participants said (see :attr:`TranscriptEntry.is_turn`)."""
        return tuple(e for e in self.entries if e.is_turn)

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speakers in order of first appearance."""
        return tuple(dict.fromkeys(e.speaker for e in self.entries))

    @property
    def total_tokens(self) -> int:
        """Tokens spent on every entry."""
        return sum(e.tokens for e in self.entries)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The transcript as JSON (every field, timestamps in ISO 8601)."""
        return self.model_dump_json(indent=indent)

    def to_markdown(self) -> str:
        """The transcript as Markdown: a heading, then ``**Speaker:** text`` lines.

        Non-turn entries (director, judge, analyst) are shown in italics.
        """
        title = self.title or (f"Dialogue {self.thread_id}" if self.thread_id else "")
        lines = [f"# {_md_escape(title or 'Dialogue')}", ""]
        meta = [f"{k}: `{v}`" for k, v in (("graph", self.graph),) if v]
        if meta:
            lines += [*meta, ""]
        for entry in self.entries:
            text = _md_escape(entry.text).replace("\n", "  \n")
            who = _md_escape(entry.speaker)
            if entry.is_turn:
                lines.append(f"**{who}:** {text}")
            else:
                lines.append(f"*{who} ({entry.kind}):* {text}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    @classmethod
    def from_json(cls, data: str | bytes) -> Transcript:
        """Parse what :meth:`to_json` wrote."""
        return cls.model_validate(json.loads(data))


def _md_escape(text: str) -> str:
    for ch in ("\\", "*", "_", "`", "#", "<", ">"):
        text = text.replace(ch, "\\" + ch)
    return text
