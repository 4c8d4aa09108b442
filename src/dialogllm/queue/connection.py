"""How the queue connects to Redis: pooled clients with retry, and error mapping.

Clients come from a URL (``redis://``, ``rediss://`` with TLS, ``unix://``; an ACL user
and password go in the URL: ``rediss://app:secret@host:6380/0``), or are Redis Cluster
clients when ``cluster`` is true (default: the ``DIALOGLLM_REDIS_CLUSTER`` setting).
Each client keeps a connection pool and retries a command whose connection broke with
exponential backoff, so a Redis restart costs a pause, not an error. Every queue
script is safe to resend: a retried ``enqueue`` carries the run id it was first sent
with.

The rule a reader must not break: ``redis`` exceptions never leave the queue's public
API; they become :class:`~dialogllm.errors.RedisUnavailableError` or
:class:`~dialogllm.errors.QueueError` naming the URL with its password masked.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from dialogllm.config import get_settings
from dialogllm.errors import QueueError, RedisUnavailableError
from dialogllm.logging import mask_url, redact_text

__all__ = [
    "CONNECTION_ERRORS",
    "REDIS_FAILURES",
    "async_client",
    "decodes_responses",
    "is_cluster",
    "map_error",
    "sync_client",
]

#: Errors that mean "Redis is (temporarily) unreachable": retry after a backoff.
CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    RedisClusterException,  # a cluster client that reaches no node; not a RedisError
    ConnectionError,
    OSError,
)

#: Any failure of a Redis call: refused commands and unreachable servers alike.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, *CONNECTION_ERRORS)

_RETRIES = 6  # ~0.05 + 0.1 + ... capped at 2 s: about 6 s of patience per command


def _options(decode: bool, **extra: Any) -> dict[str, Any]:
    return {
        "decode_responses": decode,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
        "socket_keepalive": True,
        **extra,
    }


def _cluster(cluster: bool | None) -> bool:
    return get_settings().redis_cluster if cluster is None else cluster


def async_client(
    url: str, *, decode: bool = True, cluster: bool | None = None, **extra: Any
) -> Any:
    """A pooled async client to ``url`` that retries broken connections: a
    ``redis.asyncio.Redis``, or a ``RedisCluster`` when ``cluster``.

    >>> client = async_client("rediss://app:secret@cache:6380/0")
    """
    retry = AsyncRetry(ExponentialBackoff(cap=2.0, base=0.05), _RETRIES)
    if _cluster(cluster):
        return AsyncRedisCluster.from_url(
            url, decode_responses=decode, retry=retry, **extra
        )
    return aredis.Redis.from_url(url, retry=retry, **_options(decode, **extra))


def sync_client(
    url: str, *, decode: bool = True, cluster: bool | None = None, **extra: Any
) -> Any:
    """A pooled sync client to ``url`` (the heartbeat thread's), same retry policy."""
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), _RETRIES)
    if _cluster(cluster):
        return RedisCluster.from_url(url, decode_responses=decode, retry=retry, **extra)
    return redis.Redis.from_url(url, retry=retry, **_options(decode, **extra))


def is_cluster(client: Any) -> bool:
    """Whether ``client`` talks to a Redis Cluster (sync or async)."""
    return isinstance(client, AsyncRedisCluster | RedisCluster)


def decodes_responses(client: Any) -> bool:
    """Whether ``client`` was created with ``decode_responses=True``."""
    if is_cluster(client):
        return bool(client.get_encoder().decode_responses)
    return bool(client.connection_pool.connection_kwargs.get("decode_responses"))


def map_error(
    exc: RedisError | RedisClusterException, url: str, what: str
) -> Exception:
    """The typed DialogueLLM error for a Redis error raised while doing ``what``."""
    text = redact_text(str(exc))
    where = mask_url(url)
    if isinstance(
        exc, RedisConnectionError | RedisTimeoutError | RedisClusterException
    ):
        return RedisUnavailableError(
            f"Redis at {where} is unreachable while {what} "
            f"({type(exc).__name__}: {text}); nothing was half-written, retry once "
            "Redis is back"
        )
    return QueueError(f"Redis at {where} refused {what}: {text}")
