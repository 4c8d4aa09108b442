"""Reading many hashes at once: one ``HGETALL`` per key, sent together.

Records the project keeps as Redis hashes (threads, crons, metric minutes) are often
read by the dozen; one pipeline without ``MULTI`` reads them in one round trip (on a
Cluster, redis-py sends each node its keys).

>>> await read_hashes(client, ["app:th:{t-1}", "app:th:{gone}"])  # doctest: +SKIP
[{'created': '1764806400000', ...}, {}]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dialogllm.redis.clients import AsyncClient

__all__ = ["read_hashes"]


async def read_hashes(client: AsyncClient, keys: Sequence[str]) -> list[dict[Any, Any]]:
    """The fields of each hash of ``keys``, in order (``{}`` where there is none);
    one round trip, none for no keys. Field names and values are ``str`` on a client
    that decodes responses, else ``bytes``."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    replies: list[dict[Any, Any]] = await pipe.execute()
    return replies
