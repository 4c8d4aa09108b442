"""Where Redis is and how to talk to it, in one package.

======================  =============================================================
module                  owns
======================  =============================================================
``redis.url``           which Redis: an explicit URL, the running component's
                        (:func:`using`), ``DIALOGLLM_REDIS_URL``, else the embedded one
``redis.clients``       the one client factory (async/sync, Cluster or not, retries
                        with jittered backoff, health checks, keepalive, TLS/ACL)
``redis.errors``        the one mapping from redis-py exceptions to the project's
``redis.requests``      typed requests (script calls, commands, scans, batches) and the
                        one sender of them for the checkpointer and the store
``redis.loop_client``   an asyncio client per event loop, built lazily
``redis.hashes``        reading many hashes in one round trip
``redis.embedded``      the embedded Redis server of the data directory
======================  =============================================================

>>> client = async_client("redis://127.0.0.1:6379/0", decode=True)  # doctest: +SKIP
>>> with translate_redis_errors("redis://127.0.0.1:6379/0", "pinging"):
...     await client.ping()                                          # doctest: +SKIP
"""

from dialogllm.redis.clients import (
    RETRIES,
    AsyncClient,
    SyncClient,
    async_client,
    decodes_responses,
    describe,
    is_cluster,
    sync_client,
)
from dialogllm.redis.embedded import EmbeddedRedis, EmbeddedRedisStatus
from dialogllm.redis.errors import (
    OUTAGE_ERRORS,
    REDIS_FAILURES,
    is_outage,
    map_redis_error,
    translate_redis_errors,
)
from dialogllm.redis.hashes import read_hashes
from dialogllm.redis.loop_client import ClientFactory, LoopClient
from dialogllm.redis.url import (
    RedisTarget,
    configured_target,
    current_target,
    resolve_url,
    using,
)

__all__ = [
    "OUTAGE_ERRORS",
    "REDIS_FAILURES",
    "RETRIES",
    "AsyncClient",
    "ClientFactory",
    "EmbeddedRedis",
    "EmbeddedRedisStatus",
    "LoopClient",
    "RedisTarget",
    "SyncClient",
    "async_client",
    "configured_target",
    "current_target",
    "decodes_responses",
    "describe",
    "is_cluster",
    "is_outage",
    "map_redis_error",
    "read_hashes",
    "resolve_url",
    "sync_client",
    "translate_redis_errors",
    "using",
]
