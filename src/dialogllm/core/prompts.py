"""Prompts of the dialogue building blocks: a transcript for the model to continue.

The local default model is a small *base* model: it continues documents, it does not
follow chat instructions. So every prompt here is a document — a scene (system
message) and a transcript ending with the next speaker's cue (``"Ada:"``) — which a
strong chat model reads just as well. The rule: a prompt never grows without bound;
only the last ``window`` turns are shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from dialogllm.models import Persona, TranscriptEntry

__all__ = ["DEFAULT_WINDOW", "dialogue_prompt", "scene_text", "transcript_text"]

DEFAULT_WINDOW = 8
"""How many of the latest turns a prompt shows."""


def scene_text(state: Mapping[str, Any], participants: Sequence[Persona]) -> str:
    """The scene: scenario (or topic) and who takes part, one line each.

    >>> scene_text({"topic": "tea"}, [Persona(name="Ada", role="host")])
    'A conversation about tea.\\n\\nParticipants:\\n- Ada, host.'
    """
    scenario = str(state.get("scenario") or "").strip()
    topic = str(state.get("topic") or "").strip()
    head = scenario or (f"A conversation about {topic}." if topic else "A dialogue.")
    lines = [head]
    if participants:
        lines += ["", "Participants:", *(f"- {p.describe()}" for p in participants)]
    return "\n".join(lines)


def transcript_text(
    entries: Sequence[TranscriptEntry], *, window: int = DEFAULT_WINDOW
) -> str:
    """The last ``window`` turns as ``Speaker: text`` lines.

    >>> transcript_text([TranscriptEntry(speaker="Ada", text="Hello.")])
    'Ada: Hello.'
    """
    turns = [e for e in entries if e.is_turn]
    shown = turns[-window:] if window > 0 else []
    return "\n".join(f"{e.speaker}: {' '.join(e.text.split())}" for e in shown)


def dialogue_prompt(
    speaker: Persona,
    state: Mapping[str, Any],
    participants: Sequence[Persona],
    *,
    instructions: str | None = None,
    window: int = DEFAULT_WINDOW,
) -> list[BaseMessage]:
    """Messages asking ``speaker`` for their next line.

    The system message holds the scene and the speaker's persona; the human message
    is the transcript so far ending with ``"<speaker>:"``.

    >>> msgs = dialogue_prompt(Persona(name="Bo"), {"topic": "tea"}, [])
    >>> msgs[-1].content.splitlines()[-1]
    'Bo:'
    """
    guide = instructions or (
        f"{speaker.name} speaks next: one to three short sentences, in character, "
        "answering what was just said."
    )
    system = f"{scene_text(state, participants)}\n\n{speaker.describe()}\n{guide}"
    lines = transcript_text(state.get("transcript") or [], window=window)
    body = "Transcript:\n" + (lines + "\n" if lines else "") + f"{speaker.name}:"
    return [SystemMessage(content=system), HumanMessage(content=body)]
