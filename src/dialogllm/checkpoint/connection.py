"""How the savers talk to Redis: client checks and error mapping.

Redis errors never leak out of a saver as ``redis`` exceptions: a connection problem
becomes :class:`~dialogllm.errors.RedisUnavailableError` naming the URL (password
masked), a refused fenced write becomes :class:`~dialogllm.errors.FencedWriteError`.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import (
    ClusterError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from dialogllm.errors import (
    CheckpointError,
    CorruptCheckpointError,
    FencedWriteError,
    InvalidCheckpointConfigError,
    RedisUnavailableError,
)
from dialogllm.logging import mask_url, redact_text

__all__ = ["check_binary_client", "map_redis_error", "url_of"]


def _connection_kwargs(client: Any) -> dict[str, Any]:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        return kwargs
    nodes = getattr(client, "nodes_manager", None)
    defaults = getattr(nodes, "connection_kwargs", None)
    return defaults if isinstance(defaults, dict) else {}


def check_binary_client(client: Any) -> None:
    """Refuse a client that decodes responses: blobs are binary."""
    if _connection_kwargs(client).get("decode_responses"):
        raise InvalidCheckpointConfigError(
            "the Redis client must be created with decode_responses=False: "
            "checkpoint values are stored as raw bytes"
        )


def url_of(client: Any) -> str:
    """A printable, password-free description of where ``client`` connects."""
    kw = _connection_kwargs(client)
    if "path" in kw:
        return f"unix://{kw['path']}"
    host = kw.get("host", "?")
    port = kw.get("port", "?")
    db = kw.get("db", 0)
    user = kw.get("username")
    auth = f"{user}:***@" if user else ("***@" if kw.get("password") else "")
    return mask_url(f"redis://{auth}{host}:{port}/{db}")


def map_redis_error(exc: RedisError, url: str) -> Exception:
    """The typed DialogueLLM error for a Redis error raised during a saver call."""
    text = redact_text(str(exc))
    # a Cluster that is failing over or resharding (CLUSTERDOWN, TRYAGAIN) is
    # temporarily unavailable, like a broken connection: retry, do not fail the run
    transient = RedisConnectionError | RedisTimeoutError | ClusterError | TryAgainError
    if isinstance(exc, transient):
        return RedisUnavailableError(
            f"Redis at {url} is unreachable or the connection broke mid-call "
            f"({type(exc).__name__}: {text}); nothing was half-written, retry once "
            "Redis is back"
        )
    if isinstance(exc, ResponseError) and "DIALOGLLM_FENCED" in text:
        detail = text.split("DIALOGLLM_FENCED", 1)[1].strip()
        return FencedWriteError(
            f"write refused: {detail}; this worker lost the thread's lease and must "
            "stop writing to it"
        )
    if isinstance(exc, ResponseError) and "DIALOGLLM_CORRUPT" in text:
        return CorruptCheckpointError(
            f"stored checkpoint data at {url} is corrupt ({text}); the thread needs "
            "repair or deletion"
        )
    return CheckpointError(f"Redis at {url} refused a checkpointer call: {text}")
