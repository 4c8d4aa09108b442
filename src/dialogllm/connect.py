"""Where Redis is, and clients to it: one place for every layer.

``redis_url()`` returns ``DIALOGLLM_REDIS_URL`` when it is set, else starts (once) the
embedded Redis of the data directory (:mod:`dialogllm.embedded_redis`) and returns its
``unix://`` URL. ``async_client()``/``sync_client()`` build binary-safe clients with
connection pooling, health checks and reconnect-with-backoff retries, for plain Redis,
``rediss://`` (TLS) and ACL users (``redis://user:password@host``), or Redis Cluster
with ``DIALOGLLM_REDIS_CLUSTER=true``.

>>> client = async_client()                  # doctest: +SKIP
>>> await client.ping()
True
"""

from __future__ import annotations

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from dialogllm.config import Settings, get_settings
from dialogllm.embedded_redis import EmbeddedRedis

__all__ = ["async_client", "redis_url", "sync_client"]

_RETRY_ON = [RedisConnectionError, RedisTimeoutError]


def redis_url(settings: Settings | None = None) -> str:
    """The Redis URL to use: the configured one, else the embedded server's."""
    settings = settings or get_settings()
    if settings.redis_url:
        return settings.redis_url
    return EmbeddedRedis(settings.data_dir).ensure_running()


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=0.05, cap=2.0)


def async_client(
    url: str | None = None, *, settings: Settings | None = None, retries: int = 5
) -> aredis.Redis | AsyncRedisCluster:
    """An asyncio client (binary-safe, pooled, retrying with backoff)."""
    settings = settings or get_settings()
    url = url or redis_url(settings)
    if settings.redis_cluster:
        return AsyncRedisCluster.from_url(
            url, decode_responses=False, retry=AsyncRetry(_backoff(), retries)
        )
    return aredis.Redis.from_url(
        url,
        decode_responses=False,
        retry=AsyncRetry(_backoff(), retries),
        retry_on_error=_RETRY_ON,
        health_check_interval=30,
    )


def sync_client(
    url: str | None = None, *, settings: Settings | None = None, retries: int = 5
) -> redis.Redis | RedisCluster:
    """A blocking client (binary-safe, pooled, retrying with backoff)."""
    settings = settings or get_settings()
    url = url or redis_url(settings)
    if settings.redis_cluster:
        return RedisCluster.from_url(
            url, decode_responses=False, retry=Retry(_backoff(), retries)
        )
    return redis.Redis.from_url(
        url,
        decode_responses=False,
        retry=Retry(_backoff(), retries),
        retry_on_error=_RETRY_ON,
        health_check_interval=30,
    )
