"""Request bodies of LangGraph's API, as ``langgraph-sdk`` sends them.

Fields the SDK sends that this server does not act on (``feedback_keys``,
``langsmith_tracer``, ``checkpoint_during``) are accepted and ignored, as
LangGraph's own server ignores what it does not use; a field of the wrong type is a
422 naming it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssistantCreate",
    "AssistantPatch",
    "AssistantSearch",
    "HistoryRequest",
    "RunCreate",
    "StateUpdate",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
]

StreamModeName = Literal[
    "values",
    "updates",
    "messages",
    "messages-tuple",
    "custom",
    "events",
    "debug",
    "tasks",
    "checkpoints",
]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ThreadCreate(_Body):
    """``POST /threads``."""

    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: Any = None


class ThreadPatch(_Body):
    """``PATCH /threads/{thread_id}``."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: Any = None


class ThreadSearch(_Body):
    """``POST /threads/search`` and ``/threads/count``."""

    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] | None = None
    sort_order: Literal["asc", "desc"] | None = None
    select: list[str] | None = None


class StateUpdate(_Body):
    """``POST /threads/{thread_id}/state``."""

    values: dict[str, Any] | list[Any] | None = None
    as_node: str | None = None
    checkpoint_id: str | None = None
    checkpoint: dict[str, Any] | None = None


class HistoryRequest(_Body):
    """``POST /threads/{thread_id}/history``."""

    limit: int = Field(default=10, ge=1, le=1000)
    before: str | dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class RunCreate(_Body):
    """``POST /threads/{thread_id}/runs`` (and ``/stream``, ``/wait``, stateless
    ``/runs…``)."""

    assistant_id: str
    input: Any = None
    command: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    stream_mode: StreamModeName | list[StreamModeName] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] | None = None
    on_completion: Literal["delete", "keep"] | None = None
    after_seconds: float | None = Field(default=None, ge=0)
    durability: Literal["sync", "async", "exit"] | None = None
    webhook: str | None = None

    def modes(self) -> list[str]:
        """The requested stream modes as a list."""
        return (
            [self.stream_mode]
            if isinstance(self.stream_mode, str)
            else list(self.stream_mode)
        )


class AssistantCreate(_Body):
    """``POST /assistants``."""

    graph_id: str
    assistant_id: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(_Body):
    """``PATCH /assistants/{assistant_id}``: a new version."""

    graph_id: str | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    name: str | None = None
    description: str | None = None


class AssistantSearch(_Body):
    """``POST /assistants/search`` and ``/assistants/count``."""

    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: (
        Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] | None
    ) = None
    sort_order: Literal["asc", "desc"] | None = None
