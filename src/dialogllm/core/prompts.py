"""Prompts of the dialogue building blocks: a transcript for the model to continue.

The local default model is a small *base* model: it continues documents, it does not
follow chat instructions. So every prompt here is a document — a scene (system
message) and a transcript ending with the next speaker's cue (``"Ada:"``) — which a
strong chat model reads just as well. The rule: a prompt never grows without bound;
only the last ``window`` turns are shown.

Persona nodes add a stage direction between the transcript and the cue
(:func:`turn_direction`): who speaks, their role or side and goals, whom they answer.
It tells a chat model what is asked, and it keeps the previous line from sitting
right above the cue, where copying it is the likeliest continuation for a base model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from dialogllm.models import Persona, TranscriptEntry

__all__ = [
    "DEFAULT_GUIDE",
    "DEFAULT_WINDOW",
    "dialogue_prompt",
    "scene_text",
    "transcript_text",
    "turn_direction",
]

DEFAULT_WINDOW = 8
"""How many of the latest turns a prompt shows."""


def scene_text(state: Mapping[str, Any], participants: Sequence[Persona]) -> str:
    """The scene, written as the opening of a transcript: what it is about (the
    scenario, else the topic, else the motion of a debate), then who takes part.

    >>> print(scene_text({"topic": "tea"}, [Persona(name="Ada", role="host")]))
    The following is the transcript of a conversation about tea.
    <BLANKLINE>
    Participants:
    - Ada, host.
    """
    scenario = str(state.get("scenario") or "").strip()
    topic = str(state.get("topic") or "").strip()
    motion = str(state.get("motion") or "").strip()
    opening = "The following is the transcript of a"
    if scenario:
        head = f"{opening} conversation. {scenario}"
    elif topic:
        head = f"{opening} conversation about {topic.rstrip('.')}."
    elif motion:
        head = f'{opening} debate on the motion "{motion}".'
    else:
        head = f"{opening} conversation."
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


DEFAULT_GUIDE = "Each speaker answers the others in one to three short sentences."
"""The line closing the scene when a node gives no ``instructions``."""


def turn_direction(speaker: Persona, state: Mapping[str, Any]) -> str:
    """A stage direction for ``speaker``'s next turn: who they are (role, goals),
    and whom they answer (the last turn's speaker), or that they open.

    >>> ada = Persona(name="Ada", role="a mathematician", goals=("explain engines",))
    >>> turn_direction(ada, {})
    '(Ada, a mathematician who wants to explain engines, opens the conversation.)'
    >>> bo = Persona(name="Bo", role="a baker")
    >>> turns = [TranscriptEntry(speaker="Ada", text="Engines weave algebra.")]
    >>> turn_direction(bo, {"transcript": turns})
    '(Bo, a baker, answers Ada with a new point, in a sentence or two.)'
    """
    who = speaker.name
    role = speaker.role.strip().rstrip(".")
    if role:
        who += f", {role}"
    if speaker.goals:
        who += (" who wants to " if role else ", who wants to ") + " and ".join(
            g.strip().rstrip(".") for g in speaker.goals
        )
    turns = [e for e in state.get("transcript") or () if e.is_turn]
    last = next((e for e in reversed(turns) if e.speaker != speaker.name), None)
    if last is None:
        return f"({who}, opens the conversation.)"
    return f"({who}, answers {last.speaker} with a new point, in a sentence or two.)"


def dialogue_prompt(
    speaker: Persona,
    state: Mapping[str, Any],
    participants: Sequence[Persona],
    *,
    instructions: str | None = None,
    window: int = DEFAULT_WINDOW,
    direction: str | None = None,
) -> list[BaseMessage]:
    """Messages asking ``speaker`` for their next line.

    The system message opens the transcript (scene, participants, how they speak);
    the human message is the transcript so far ending with ``"<speaker>:"``. Both
    read as one document a base model continues (the local model's template joins
    them), and as a clear request to a chat model. ``direction`` (a stage direction,
    e.g. :func:`turn_direction`) goes on the line before the cue.

    >>> msgs = dialogue_prompt(Persona(name="Bo"), {"topic": "tea"}, [])
    >>> msgs[-1].content
    'Bo:'
    """
    cast = list(participants)
    if all(p.name != speaker.name for p in cast):
        cast.append(speaker)
    system = f"{scene_text(state, cast)}\n\n{instructions or DEFAULT_GUIDE}"
    lines = transcript_text(state.get("transcript") or [], window=window)
    if direction:
        lines = (lines + "\n" if lines else "") + direction
    body = (lines + "\n" if lines else "") + f"{speaker.name}:"
    return [SystemMessage(content=system), HumanMessage(content=body)]
