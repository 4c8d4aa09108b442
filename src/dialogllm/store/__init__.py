"""Long-term memory: LangGraph's ``BaseStore`` on plain Redis.

``AsyncRedisStore`` (async first) and ``RedisStore`` (its sync twin) keep what a graph
remembers across threads (a person's facts, preferences, notes) under namespaces of
any depth, with TTLs, filters and, when an embeddings function is configured,
semantic search: exact in the client on any Redis, by RediSearch's KNN where the
server has it (:mod:`dialogllm.store.vector_index`). Works on Redis 6.2+ (the
embedded default), Valkey and Redis Cluster; needs no modules. The key schema is
in :mod:`dialogllm.store.keys`; the rule a reader must not break: every key of a
top-level namespace carries its hash tag.

>>> from dialogllm.store import AsyncRedisStore
>>> async with AsyncRedisStore.from_conn_string("redis://127.0.0.1:6379/0") as store:
...     graph = builder.compile(checkpointer=saver, store=store)   # doctest: +SKIP
"""

from __future__ import annotations

from dialogllm.errors import (
    SemanticSearchNotConfiguredError,
    StoreError,
    StoreSearchTooLargeError,
    StoreValueError,
)
from dialogllm.store.aio import AsyncRedisStore
from dialogllm.store.base import (
    DEFAULT_MAX_SEARCH_CANDIDATES,
    configured_store_options,
    resolve_embeddings,
    store_options,
)
from dialogllm.store.sync import RedisStore

__all__ = [
    "DEFAULT_MAX_SEARCH_CANDIDATES",
    "AsyncRedisStore",
    "RedisStore",
    "SemanticSearchNotConfiguredError",
    "StoreError",
    "StoreSearchTooLargeError",
    "StoreValueError",
    "configured_store_options",
    "resolve_embeddings",
    "store_options",
]
