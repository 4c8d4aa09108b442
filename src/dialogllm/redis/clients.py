"""Redis clients: the one factory every layer uses.

:func:`async_client` and :func:`sync_client` build pooled clients to a URL
(``redis://``, ``rediss://`` with TLS, ``unix://``; an ACL user and password go in the
URL: ``rediss://app:secret@cache:6380/0``), or Redis Cluster clients, with one policy:

* retries: a command whose connection broke, timed out or met a Cluster failing over
  is resent after exponential backoff with jitter (50 ms doubling, capped at 2 s,
  :data:`RETRIES` times: about 6 s of patience), so a Redis restart costs a pause,
  not an error; every script the project sends is safe to resend;
* health checks on connections idle for 30 s, TCP keepalive on TCP connections (never
  on a ``unix://`` socket, which has no such option);
* ``decode_responses`` as the caller needs: the checkpointer stores raw bytes, the
  queue reads text.

``url=None`` means :func:`dialogllm.redis.url.current_target` (which may start the
embedded Redis); ``cluster=None`` means "as that target says" for the default URL and
``DIALOGLLM_REDIS_CLUSTER`` for an explicit one.

>>> client = async_client("rediss://app:secret@cache:6380/0", decode=True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, Unpack

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from dialogllm.config import get_settings
from dialogllm.logging import mask_url
from dialogllm.redis.url import current_target

__all__ = [
    "RETRIES",
    "AsyncClient",
    "ClientOptions",
    "SyncClient",
    "async_client",
    "connection_kwargs",
    "decodes_responses",
    "describe",
    "is_cluster",
    "sync_client",
]

AsyncClient = aredis.Redis | AsyncRedisCluster
"""What :func:`async_client` returns."""
SyncClient = redis.Redis | RedisCluster
"""What :func:`sync_client` returns."""

C = TypeVar("C")
K = TypeVar("K")

RETRIES = 6
"""How often a command is resent after a broken connection (with backoff)."""
_BACKOFF_BASE_S = 0.05
_BACKOFF_CAP_S = 2.0
_HEALTH_CHECK_S = 30
_RETRY_ON = [RedisConnectionError, RedisTimeoutError]


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=_BACKOFF_BASE_S, cap=_BACKOFF_CAP_S)


def _target(url: str | None, cluster: bool | None) -> tuple[str, bool]:
    if url is None:
        target = current_target()
        return target.url, target.cluster if cluster is None else cluster
    return url, get_settings().redis_cluster if cluster is None else cluster


def _options(url: str, decode: bool, extra: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": decode,
        "retry_on_error": _RETRY_ON,
        "health_check_interval": _HEALTH_CHECK_S,
    }
    if not url.startswith("unix://"):
        options["socket_keepalive"] = True
    options.update(extra)
    return options


class ClientOptions(TypedDict, total=False):
    """What a caller sets on a client; the rest is this module's policy."""

    decode: bool
    """``decode_responses`` (default ``False``: replies are bytes)."""
    cluster: bool | None
    """A Redis Cluster client (default: as the target says, see the module)."""
    retries: int
    """Resends after a broken connection (default :data:`RETRIES`)."""
    socket_timeout: float
    """Seconds a command may take (redis-py's; default: no limit)."""
    socket_connect_timeout: float
    """Seconds connecting may take (redis-py's)."""


def _build(
    url: str | None,
    options: ClientOptions,
    retry_type: Callable[[ExponentialWithJitterBackoff, int], Any],
    single: Callable[..., C],
    clustered: Callable[..., K],
) -> C | K:
    """A client of either flavour with the one policy: ``retry_type``, ``single``
    and ``clustered`` are redis-py's sync or asyncio ``Retry`` and ``from_url``."""
    extra: dict[str, Any] = dict(options)
    decode = bool(extra.pop("decode", False))
    target, cluster = _target(url, extra.pop("cluster", None))
    retry = retry_type(_backoff(), int(extra.pop("retries", RETRIES)))
    if cluster:
        return clustered(target, decode_responses=decode, retry=retry, **extra)
    return single(target, retry=retry, **_options(target, decode, extra))


def async_client(
    url: str | None = None, **options: Unpack[ClientOptions]
) -> AsyncClient:
    """A pooled asyncio client (see the module docstring for the policy).

    >>> client = async_client("redis://127.0.0.1:6379/0", decode=True, retries=0)
    """
    clients = (aredis.Redis.from_url, AsyncRedisCluster.from_url)
    return _build(url, options, AsyncRetry, *clients)


def sync_client(url: str | None = None, **options: Unpack[ClientOptions]) -> SyncClient:
    """A pooled blocking client, same policy as :func:`async_client`."""
    return _build(url, options, Retry, redis.Redis.from_url, RedisCluster.from_url)


def is_cluster(client: object) -> bool:
    """Whether ``client`` talks to a Redis Cluster (sync or async)."""
    return isinstance(client, AsyncRedisCluster | RedisCluster)


def connection_kwargs(client: object) -> dict[str, Any]:
    """The connection settings ``client`` was built with (Cluster: its defaults)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if isinstance(kwargs, dict):
        return kwargs
    nodes = getattr(client, "nodes_manager", None)
    defaults = getattr(nodes, "connection_kwargs", None)
    return defaults if isinstance(defaults, dict) else {}


def decodes_responses(client: object) -> bool:
    """Whether ``client`` was created with ``decode_responses=True``."""
    if is_cluster(client):
        return bool(client.get_encoder().decode_responses)  # type: ignore[attr-defined]
    return bool(connection_kwargs(client).get("decode_responses"))


def describe(client: object) -> str:
    """A printable, password-free URL of where ``client`` connects."""
    kw = connection_kwargs(client)
    if "path" in kw:
        return f"unix://{kw['path']}"
    host = kw.get("host", "?")
    port = kw.get("port", "?")
    db = kw.get("db", 0)
    user = kw.get("username")
    auth = f"{user}:***@" if user else ("***@" if kw.get("password") else "")
    return mask_url(f"redis://{auth}{host}:{port}/{db}")
