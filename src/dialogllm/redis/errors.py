"""One mapping from redis-py's exceptions to the project's errors.

The checkpointer, the queue, the LLM rate limiter and the CLI all use
:func:`map_redis_error`, so one Redis failure is one project error (and one CLI exit
code) wherever it happens:

==================================================  ==========================
redis-py                                            DialogueLLM
==================================================  ==========================
``ConnectionError``, ``TimeoutError``, ``BusyLoadingError``,
``ClusterDownError`` (CLUSTERDOWN), ``TryAgainError``,
``ReadOnlyError`` (a replica mid-failover), ``MasterDownError``,
``MovedError``/``AskError`` (a slot moving), ``ClusterError`` /
``RedisClusterException`` (no node answers, redirections
exhausted)                                          ``RedisUnavailableError``
``AuthenticationError``, ``NoPermissionError``      ``RedisAuthError``
``ResponseError`` with ``DIALOGLLM_FENCED``         ``FencedWriteError``
``ResponseError`` with ``DIALOGLLM_CORRUPT``        ``CorruptCheckpointError``
any other ``ResponseError`` (WRONGTYPE, OOM, ...)   ``RedisCommandError``
==================================================  ==========================

Messages name the URL with its password masked and never contain a secret.

>>> from redis.exceptions import ConnectionError
>>> type(map_redis_error(ConnectionError("refused"), "redis://h:1/0", "enqueueing"))
<class 'dialogllm.errors.RedisUnavailableError'>
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from redis.exceptions import (
    AskError,
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    ClusterError,
    MasterDownError,
    NoPermissionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialogllm.errors import (
    CorruptCheckpointError,
    DialogueLLMError,
    FencedWriteError,
    RedisAuthError,
    RedisCommandError,
    RedisUnavailableError,
)
from dialogllm.logging import mask_url, redact_text

__all__ = [
    "OUTAGE_ERRORS",
    "REDIS_FAILURES",
    "is_outage",
    "map_redis_error",
    "translate_redis_errors",
]

#: redis-py errors that mean "Redis is (temporarily) not serving": retry after a
#: backoff. ``ClusterDownError`` is a ``ClusterError``; ``BusyLoadingError`` a
#: ``ConnectionError``; ``RedisClusterException`` is not a ``RedisError``.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,
    TryAgainError,
    ReadOnlyError,
    MasterDownError,
    AskError,  # MovedError too: a slot moving while a Cluster reshards
    RedisClusterException,
    ConnectionError,
    OSError,
)

#: Any failure of a Redis call: refused commands and unreachable servers alike.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, *OUTAGE_ERRORS)

_AUTH_ERRORS = (AuthenticationError, AuthenticationWrongNumberOfArgsError)
_USER = re.compile(r"^[a-z]+://(?P<user>[^:@/]+)(:[^@]*)?@")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis is temporarily not serving (not a refusal, not
    a wrong password)."""
    if isinstance(exc, _AUTH_ERRORS):
        return False
    return isinstance(exc, OUTAGE_ERRORS)


def _user(url: str) -> str:
    match = _USER.match(url)
    return match.group("user") if match else "default"


def map_redis_error(
    exc: BaseException, url: str, what: str = "a call"
) -> DialogueLLMError:
    """The project's error for a redis-py error raised while doing ``what``.

    ``url`` may hold a password: it is masked before it is put in the message.
    """
    text = redact_text(str(exc))
    where = mask_url(url)
    kind = type(exc).__name__
    if isinstance(exc, _AUTH_ERRORS):
        return RedisAuthError(
            f"Redis at {where}: authentication failed for user {_user(url)!r} while "
            f"{what} ({text}); check the user and password in the URL"
        )
    if isinstance(exc, NoPermissionError):
        return RedisAuthError(
            f"Redis at {where}: user {_user(url)!r} has no permission for {what} "
            f"({text}); grant the user the keys and commands it needs (see the ACL "
            "section of docs/operations.md)"
        )
    if is_outage(exc):
        hint = (
            " (a MOVED/ASK reply to a plain client: if this is a Redis Cluster, set "
            "DIALOGLLM_REDIS_CLUSTER=true)"
            if isinstance(exc, AskError)
            else ""
        )
        return RedisUnavailableError(
            f"Redis at {where} is unreachable or not serving while {what} "
            f"({kind}: {text}){hint}; nothing was half-written, retry once Redis is "
            "back"
        )
    if isinstance(exc, ResponseError) and "DIALOGLLM_FENCED" in text:
        detail = text.split("DIALOGLLM_FENCED", 1)[1].strip()
        return FencedWriteError(
            f"write refused: {detail}; this worker lost the thread's lease and must "
            "stop writing to it"
        )
    if isinstance(exc, ResponseError) and "DIALOGLLM_CORRUPT" in text:
        return CorruptCheckpointError(
            f"stored data at {where} is corrupt ({text}); the thread needs repair or "
            "deletion"
        )
    return RedisCommandError(f"Redis at {where} refused {what}: {kind}: {text}")


@contextmanager
def translate_redis_errors(url: str, what: str) -> Iterator[None]:
    """Raise the project's error instead of any redis-py error from the block.

    >>> with translate_redis_errors("redis://h:1/0", "enqueueing"):  # doctest: +SKIP
    ...     await client.ping()
    """
    try:
        yield
    except REDIS_FAILURES as exc:
        raise map_redis_error(exc, url, what) from exc
