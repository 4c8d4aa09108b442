"""The Redis checkpointer: LangGraph's ``BaseCheckpointSaver`` on plain Redis.

``AsyncRedisSaver`` (async first) and ``RedisSaver`` (its sync twin) store every step
of a dialogue so it can be inspected, forked, interrupted and resumed, also after a
crash on another machine. Works on Redis 6.2+, Valkey and Redis Cluster; needs no
modules. The key schema is in :mod:`dialogllm.checkpoint.keys`; the rule a reader must
not break: every key of a thread carries the thread's hash tag.

>>> from dialogllm.checkpoint import AsyncRedisSaver
>>> async with AsyncRedisSaver.from_conn_string("redis://127.0.0.1:6379/0") as saver:
...     graph = builder.compile(checkpointer=saver)             # doctest: +SKIP
"""

from __future__ import annotations

from dialogllm.checkpoint.aio import AsyncRedisSaver
from dialogllm.checkpoint.sync import RedisSaver
from dialogllm.leases import (
    FENCE_CONFIG_KEY,
    FencingToken,
    fencing_token_from_config,
    with_fencing_token,
)

__all__ = [
    "FENCE_CONFIG_KEY",
    "AsyncRedisSaver",
    "FencingToken",
    "RedisSaver",
    "fencing_token_from_config",
    "with_fencing_token",
]
