"""Fencing tokens: a queue worker's proof that it still holds a thread's lease.

A lease gives one worker the right to write a thread's checkpoints. It is a Redis HASH
(:func:`dialogllm.checkpoint.keys.thread_lease`) with the fields ``id`` (random, one
per acquisition) and ``fence`` (taken from the thread's counter, so it only grows),
set with a TTL and renewed by the holder's heartbeat. The holder passes the matching
:class:`FencingToken` with every checkpoint write; the saver checks it inside the same
Lua call as the write and refuses a write whose token no longer matches the lease with
:class:`~dialogllm.errors.FencedWriteError`, changing nothing.

The rule a reader must not break: a write that carries a token is applied only if the
lease key holds exactly that ``id`` and ``fence`` at the moment of the write.

>>> token = FencingToken(lease_id="9f1c...", fence=7)
>>> config = with_fencing_token({"configurable": {"thread_id": "t-1"}}, token)
>>> fencing_token_from_config(config) == token
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

__all__ = [
    "FENCE_CONFIG_KEY",
    "FencingToken",
    "fencing_token_from_config",
    "with_fencing_token",
]

#: Key of ``config["configurable"]`` that carries the token. It is not a plain
#: string, so LangGraph does not copy it into checkpoint metadata.
FENCE_CONFIG_KEY = "dialogllm_fence"


@dataclass(frozen=True, slots=True)
class FencingToken:
    """The lease a write claims to hold: its ``lease_id`` and ``fence`` number."""

    lease_id: str
    fence: int

    def __post_init__(self) -> None:
        if not self.lease_id:
            raise ValueError("lease_id must not be empty")
        if self.fence < 0:
            raise ValueError("fence must be >= 0")


def with_fencing_token(config: RunnableConfig, token: FencingToken) -> RunnableConfig:
    """Return a copy of ``config`` whose writes carry ``token``."""
    configurable = dict(config.get("configurable") or {})
    configurable[FENCE_CONFIG_KEY] = token
    return {**config, "configurable": configurable}


def fencing_token_from_config(config: Mapping[str, Any]) -> FencingToken | None:
    """The token in ``config`` (a :class:`FencingToken` or a dict of its fields)."""
    value = (config.get("configurable") or {}).get(FENCE_CONFIG_KEY)
    if value is None or isinstance(value, FencingToken):
        return value
    if isinstance(value, Mapping):
        return FencingToken(lease_id=str(value["lease_id"]), fence=int(value["fence"]))
    raise TypeError(f"{FENCE_CONFIG_KEY} must be a FencingToken, got {type(value)}")
