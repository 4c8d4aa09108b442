"""Pydantic data of dialogues: personas, typed replies, transcripts, dialogue state.

No I/O here: everything is plain validated data that the LLM layer, the checkpointer
and the core build on. Every model exports a JSON schema
(``Model.model_json_schema()``).

>>> from dialogllm.models import Persona, Turn
>>> Turn(message="Shall we begin?", intent="question").end
False
"""

from __future__ import annotations

from dialogllm.models.persona import Persona
from dialogllm.models.state import DialogueState, TranscriptChannel
from dialogllm.models.transcript import (
    EntryKind,
    Transcript,
    TranscriptEntry,
    append_entries,
)
from dialogllm.models.turn import HumanRequest, SpeakerChoice, Turn

__all__ = [
    "DialogueState",
    "EntryKind",
    "HumanRequest",
    "Persona",
    "SpeakerChoice",
    "Transcript",
    "TranscriptChannel",
    "TranscriptEntry",
    "Turn",
    "append_entries",
]
