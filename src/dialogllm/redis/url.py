"""Where Redis is: one answer for every entry point.

The rule, in order: the URL a caller passes; else the URL of the component that is
running this code (:func:`using`: a ``Worker`` or ``DialogueRunner`` given a URL
makes everything it runs, LLM metrics and rate limits included, use that URL); else
``DIALOGLLM_REDIS_URL``; else the embedded Redis of the data directory, started on
first use (:mod:`dialogllm.redis.embedded`). Only the last step ever starts a server
or creates ``./.dialogllm/``.

>>> resolve_url("redis://cache:6379/0")
'redis://cache:6379/0'
>>> with using("redis://other:6379/1"):
...     resolve_url()
'redis://other:6379/1'
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from dialogllm.config import Settings, get_settings
from dialogllm.redis.embedded import EmbeddedRedis

__all__ = [
    "RedisTarget",
    "configured_target",
    "current_target",
    "resolve_url",
    "using",
]


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A Redis a component was pointed at: its URL and whether it is a Cluster."""

    url: str
    cluster: bool = False


_current: ContextVar[RedisTarget | None] = ContextVar(
    "dialogllm_redis_target", default=None
)


@contextmanager
def using(url: str, *, cluster: bool = False) -> Iterator[RedisTarget]:
    """Make ``url`` the Redis of the code run inside the block (and of the tasks it
    starts), for every client built without an explicit URL."""
    target = RedisTarget(url, cluster)
    token = _current.set(target)
    try:
        yield target
    finally:
        _current.reset(token)


def configured_target(settings: Settings | None = None) -> RedisTarget | None:
    """The Redis that code without an explicit URL talks to, or ``None`` for the
    embedded default (nothing is started here)."""
    target = _current.get()
    if target is not None:
        return target
    settings = settings or get_settings()
    if settings.redis_url:
        return RedisTarget(settings.redis_url, settings.redis_cluster)
    return None


def current_target(settings: Settings | None = None) -> RedisTarget:
    """The Redis that code without an explicit URL talks to (see the module rule);
    starts the embedded Redis when that is the answer."""
    settings = settings or get_settings()
    target = configured_target(settings)
    if target is not None:
        return target
    return RedisTarget(EmbeddedRedis(settings.data_dir).ensure_running())


def resolve_url(url: str | None = None, *, settings: Settings | None = None) -> str:
    """``url`` when given, else :func:`current_target`'s URL."""
    return url or current_target(settings).url
